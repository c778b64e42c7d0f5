//! Tern's agent API: Flyte's v1 agent protocol (wire-compatible with flyteidl 1.16.8),
//! the traits an agent implements, a registry, a tonic server adapter and clients.
//!
//! An agent whose backend reports states maps them through a [`states::StateTable`]. Every
//! agent runs the conformance kit, `testkit` (cargo feature `testkit`), in its tests.
//!
//! ```
//! use std::sync::Arc;
//! use tern_agent_api::prelude::*;
//!
//! struct Noop;
//!
//! #[async_trait::async_trait]
//! impl SyncAgent for Noop {
//!     fn name(&self) -> &str { "noop" }
//!     fn task_categories(&self) -> Vec<TaskCategory> { vec![TaskCategory::new("noop", 0)] }
//!     async fn execute(&self, _ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
//!         Ok(TaskStatus::succeeded(None))
//!     }
//! }
//!
//! let mut registry = AgentRegistry::new();
//! registry.register_sync(Arc::new(Noop)).unwrap();
//! assert_eq!(registry.agents()[0].name, "noop");
//! ```
pub mod admission;
pub mod agent;
pub mod call;
pub mod category;
pub mod client;
pub mod codec;
pub mod command_result;
pub mod context;
pub mod datastore;
pub mod dispatch;
pub mod error;
pub mod factory;
pub mod grpc_client;
pub mod http;
pub mod idempotency;
pub mod job_dir;
pub mod job_outputs;
pub mod local_jobs;
pub mod local_process;
pub mod metrics;
pub mod outputs;
pub mod panic;
pub mod plugin;
pub mod registry;
pub mod resource_meta;
pub mod secrets;
pub mod server;
pub mod states;
pub mod status;
pub mod submission_record;
#[cfg(feature = "testkit")]
pub mod testkit;

/// Generated protobuf types and gRPC stubs.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    pub mod flyteidl {
        pub mod core {
            tonic::include_proto!("flyteidl.core");
        }
        pub mod admin {
            tonic::include_proto!("flyteidl.admin");
        }
        pub mod service {
            tonic::include_proto!("flyteidl.service");
        }
    }

    /// Encoded `FileDescriptorSet` of every Tern `.proto` (for reflection and the
    /// wire-compatibility test).
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flyteidl_descriptor.bin"));
}

pub use proto::flyteidl::{admin, core};

/// The names most agents need.
pub mod prelude {
    pub use crate::admission::{Admission, OnFull};
    pub use crate::agent::{AsyncAgent, LogPage, MetricsQuery, SyncAgent, TaskRequest};
    pub use crate::category::TaskCategory;
    pub use crate::client::AgentClient;
    pub use crate::context::{AgentServices, TaskContext};
    pub use crate::datastore::{join_uri, DataStore, LocalDataStore};
    pub use crate::dispatch::InProcessClient;
    pub use crate::error::{codes, AgentError, ErrorOrigin, Retry};
    pub use crate::factory::{AdmissionScope, AgentFactory, AgentInit, Exposure, StandardEnv};
    pub use crate::idempotency::IdempotencyKey;
    pub use crate::local_jobs::LocalJobs;
    pub use crate::outputs::check_outputs;
    pub use crate::registry::AgentHandle;
    pub use crate::registry::AgentRegistry;
    pub use crate::resource_meta::ResourceMeta;
    pub use crate::secrets::{Secret, SecretRef};
    pub use crate::states::{BackendState, StateTable};
    pub use crate::status::{Phase, TaskStatus};
    pub use crate::submission_record::SubmissionRecord;
    pub use crate::{admin, core};
}
