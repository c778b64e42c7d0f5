//! The `echo` agent (task type `echo`, version 0, async): returns its inputs as its
//! outputs. It exists to measure the protocol path itself (throughput benchmarks, interop
//! tests), so its hot path does no disk I/O and takes no lock: the inputs travel inside the
//! `resource_meta` handle and come back out of it on `get`.
//!
//! # Template conventions
//!
//! - No `custom`, no `container`: only the inputs matter.
//! - Outputs are the inputs, name for name. When the template declares outputs
//!   (`interface.outputs`), the inputs must match them, checked at create so a mismatch
//!   fails fast; a template without declared outputs echoes anything.
//! - `resource_meta` is `{"v":1,"inputs":"<base64 of the protobuf LiteralMap>"}`, so it
//!   is as large as the inputs: fine for benchmarks, not a pattern for real agents.
//! - `get` always reports SUCCEEDED; `delete` has nothing to cancel, but like `get` it
//!   refuses a handle this agent cannot have produced (`INVALID_ARGUMENT`, TERN-A003).
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use prost::Message;
use serde::{Deserialize, Serialize};
use tern_agent_api::error::codes as api_codes;
use tern_agent_api::prelude::*;

pub const TASK_TYPE: &str = "echo";

/// Stable error codes of this agent (documented in `docs/errors.md`).
pub mod codes {
    /// The inputs do not match the outputs the template declares.
    pub const INTERFACE_MISMATCH: &str = "TERN-K001";
}

#[derive(Serialize, Deserialize)]
struct EchoHandle {
    /// Base64 of the protobuf-encoded inputs `LiteralMap`.
    inputs: String,
}

#[derive(Debug, Default)]
pub struct EchoAgent;

pub mod config;
pub use config::{EchoConfig, EchoFactory};

/// The echo agent, ready to register.
pub fn agent() -> Arc<dyn AsyncAgent> {
    Arc::new(EchoAgent)
}

fn bad_handle(why: impl std::fmt::Display) -> AgentError {
    AgentError::invalid_argument(
        api_codes::BAD_RESOURCE_META,
        format!("echo resource_meta holds no valid inputs ({why}); it must come from this agent's CreateTask"),
    )
}

impl EchoAgent {
    fn inputs_of(meta: &ResourceMeta) -> Result<core::LiteralMap, AgentError> {
        let handle: EchoHandle = meta.decode()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(handle.inputs).map_err(bad_handle)?;
        core::LiteralMap::decode(bytes.as_slice()).map_err(bad_handle)
    }
}

#[async_trait]
impl AsyncAgent for EchoAgent {
    fn name(&self) -> &str {
        TASK_TYPE
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    async fn create(&self, _ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let interface = task.template.interface.as_ref();
        if interface.is_some_and(|i| i.outputs.is_some()) {
            check_outputs(interface, &task.inputs)
                .map_err(|e| AgentError::invalid_argument(codes::INTERFACE_MISMATCH, format!("echo: {}", e.message)))?;
        }
        let inputs = base64::engine::general_purpose::STANDARD.encode(task.inputs.encode_to_vec());
        ResourceMeta::encode(&EchoHandle { inputs })
    }

    async fn get(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        Ok(TaskStatus::succeeded(Some(Self::inputs_of(meta)?)))
    }

    /// Nothing to cancel; a garbled handle is still refused, so a caller's corrupt record
    /// is noticed rather than reported cancelled.
    async fn delete(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        Self::inputs_of(meta).map(|_| ())
    }
}
