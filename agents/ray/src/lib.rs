//! The `ray` agent (async; task type `ray`, version 0): runs flytekitplugins-ray 1.16.31's
//! tasks as jobs of an **existing** Ray cluster through the Ray Jobs REST API of its
//! dashboard (`[agents.ray] address`, or `RAY_ADDRESS`) — idempotent, with every job state
//! mapped, and no credential in `resource_meta`.
//!
//! flytekit's own backend for these tasks is propeller's KubeRay plugin, which creates a
//! `RayJob` (and its cluster) on Kubernetes; this agent submits the same container command
//! to a cluster that already runs. [`template`] has what is read from the template and what
//! is ignored (the cluster spec).
//!
//! # Behaviour
//!
//! - **Create** posts `/api/jobs/` with `submission_id = "tern-" + <idempotency key>`, the
//!   entrypoint (the container's rendered command and args), the `runtime_env` and Tern's
//!   metadata. Ray refuses a submission id it already has: the agent then reads that job
//!   and attaches to it (a repeated create of the same attempt — a propeller retry after a
//!   lost answer, a restarted gateway, another replica — never starts a second job). The
//!   handle is `{"submission_id","outputs","v":1}`.
//! - **Get** reads `/api/jobs/{id}` and classifies `status`/`error_type` through
//!   [`JOB_STATES`]; the dashboard's job page is the `Ray Dashboard` log link. Outputs are
//!   written by the task itself (`pyflyte-execute … --output-prefix …`).
//! - **Delete** posts `/api/jobs/{id}/stop` (the job ends `STOPPED` → `ABORTED`); an unknown
//!   or finished job is fine (idempotent). The job's record is kept at the cluster.
//! - **Logs** serve `/api/jobs/{id}/logs` ([`logs`]).
//! - Errors have codes `TERN-R001`…`TERN-R009` ([`codes`]); only system errors retry.
use std::sync::Arc;

use tern_agent_api::prelude::{AgentError, AgentServices, AsyncAgent};

pub mod agent;
pub mod client;
pub mod codes;
pub mod config;
pub mod logs;
pub mod states;
pub mod template;

pub use agent::{Handle, RayAgent};
pub use config::{RayConfig, RayFactory};
pub use states::JOB_STATES;

/// The agent with `config`, ready to register.
pub fn agent_with(config: RayConfig, services: &AgentServices) -> Result<Arc<dyn AsyncAgent>, AgentError> {
    config
        .check()
        .map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.ray] {m}")))?;
    Ok(Arc::new(RayAgent::new(config, services)?))
}
