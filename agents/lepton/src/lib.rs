//! The `lepton` agent (async; task types `lepton_endpoint_deployment_task` and
//! `lepton_endpoint_deletion_task`, version 0): deploys and deletes DGX Cloud Lepton
//! endpoints as flytekitplugins-dgxc-lepton 1.16.31's connectors do, through Lepton's
//! workspace REST API (the shapes of the open-source `leptonai` SDK, see [`client`]) —
//! idempotent, with every deployment state mapped, and the token by reference only.
//!
//! - **Create** (deployment): builds the `LeptonDeployment` from the template's `custom`
//!   ([`template`]); the name is the template's `endpoint_name` (sanitized as flytekit
//!   does) or `tern-` + the idempotency key. An existing deployment of that name carrying
//!   this attempt's (or this task's) label is attached to, never created twice.
//! - **Get**: `GET /deployments/{name}` through [`DEPLOYMENT_STATES`]; `Ready` is SUCCEEDED
//!   with output `o0` = the external endpoint URL; not ready within the readiness timeout
//!   is FAILED (`TERN-L008`).
//! - **Create** (deletion): `DELETE /deployments/{name}` (404 is fine); **Get** succeeds
//!   once the deployment is gone, output `o0` = `Successfully deleted endpoint: <name>`.
//! - **Delete** (cancel) of a deployment task deletes the deployment; idempotent.
//! - **Logs**: Lepton's log API for the deployment.
use std::sync::Arc;

use tern_agent_api::prelude::{AgentError, AgentServices, AsyncAgent};

pub mod agent;
pub mod client;
pub mod codes;
pub mod config;
pub mod states;
pub mod template;

pub use agent::{Handle, LeptonAgent};
pub use config::{LeptonConfig, LeptonFactory};
pub use states::DEPLOYMENT_STATES;

/// The agent with `config`, ready to register.
pub fn agent_with(config: LeptonConfig, services: &AgentServices) -> Result<Arc<dyn AsyncAgent>, AgentError> {
    config
        .check()
        .map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.lepton] {m}")))?;
    Ok(Arc::new(LeptonAgent::new(config, &services.clone())?))
}
