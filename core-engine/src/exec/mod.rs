//! The executor: runs a compiled workflow's nodes through the agent router.
//!
//! - `scheduler`: which nodes may start (dependencies, parallelism, stop on failure);
//! - `node`: one node's attempts and retries;
//! - `cache`: task output caching around a node's attempts (lookup, serialize, store);
//! - `attempt`: one attempt (intent → CreateTask → resource_meta → GetTask…, or
//!   ExecuteTaskSync), its limits; `poll` (GetTask through outages), `job` (giving a job
//!   up: attach, DeleteTask), `outputs`;
//! - `signal`: what the driver tells running nodes (cancel, abort, halt).
mod attempt;
mod cache;
pub mod events;
mod identity;
pub mod inputs;
mod job;
pub(crate) mod node;
mod node_inputs;
mod outputs;
mod poll;
mod render;
pub(crate) mod scheduler;
pub(crate) mod signal;

use std::sync::Arc;

use tern_agent_api::datastore::DataStore;
use tokio::sync::watch;

use crate::config::{PollConfig, RetryConfig};
use crate::router::AgentRouter;
use crate::store::StateStore;

pub use cache::{CacheKey, CachePolicy};
pub(crate) use events::Events;
pub(crate) use identity::TaskExecutionIntent;

/// Namespace sent in `task_execution_metadata`, as propeller sends `<project>-<domain>`.
pub const NAMESPACE: &str = "tern-development";

/// What every node of one execution shares.
pub(crate) struct RunCtx {
    pub store: StateStore,
    pub data: Arc<dyn DataStore>,
    pub data_root: String,
    pub router: AgentRouter,
    pub poll: PollConfig,
    pub retry: RetryConfig,
    pub execution_id: String,
    pub events: Events,
    /// What the driver tells running nodes (see [`signal::RunSignal`]).
    pub signal: watch::Receiver<signal::RunSignal>,
}

/// How a node's first attempt in this run begins.
#[derive(Debug, Clone)]
pub(crate) enum NodeStart {
    /// A new attempt with a new intent.
    Fresh { attempt: u32 },
    /// Recovery: an intent was written but no resource_meta; re-issue the create (or sync
    /// execute) with the same `task_execution_id`, which the agent deduplicates, to the
    /// agent recorded with the attempt (`endpoint`).
    Recreate { attempt: u32, intent: TaskExecutionIntent, endpoint: String },
    /// Recovery: the agent accepted the task; resume polling its handle at that agent.
    Resume { attempt: u32, intent: TaskExecutionIntent, meta: Vec<u8>, endpoint: String },
}

impl NodeStart {
    pub fn attempt(&self) -> u32 {
        match self {
            Self::Fresh { attempt } | Self::Recreate { attempt, .. } | Self::Resume { attempt, .. } => *attempt,
        }
    }
}
