//! The in-process agents compiled into this build, and the registry built from config.
use std::sync::Arc;

use tern_agent_api::registry::{AgentHandle, AgentRegistry};

use crate::config::AgentsConfig;
use crate::error::GatewayError;

type Constructor = fn() -> AgentHandle;

/// `(name, constructor)` for every agent whose cargo feature is enabled.
#[allow(clippy::vec_init_then_push)] // each push is feature-gated
pub fn compiled_in() -> Vec<(&'static str, Constructor)> {
    #[allow(unused_mut)]
    let mut v: Vec<(&'static str, Constructor)> = Vec::new();
    #[cfg(feature = "agent-echo")]
    v.push(("echo", || AgentHandle::Async(tern_agent_echo::agent())));
    #[cfg(feature = "agent-sleep")]
    v.push(("sleep", || AgentHandle::Async(tern_agent_sleep::agent())));
    #[cfg(feature = "agent-webhook")]
    v.push(("webhook", || AgentHandle::Sync(tern_agent_webhook::agent())));
    #[cfg(feature = "agent-duckdb")]
    v.push(("duckdb", || AgentHandle::Async(tern_agent_duckdb::agent())));
    #[cfg(feature = "agent-shell")]
    v.push(("shell", || AgentHandle::Async(tern_agent_shell::agent())));
    v
}

/// Builds the registry of the agents `config` enables (all compiled-in ones by default).
pub fn build_registry(config: &AgentsConfig) -> Result<Arc<AgentRegistry>, GatewayError> {
    let available = compiled_in();
    let names: Vec<String> = match &config.enabled {
        Some(names) => names.clone(),
        None => available.iter().map(|(n, _)| n.to_string()).collect(),
    };
    let mut registry = AgentRegistry::new();
    for name in names {
        let (_, make) = available.iter().find(|(n, _)| *n == name).ok_or_else(|| GatewayError::UnknownAgent {
            name: name.clone(),
            available: available.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })?;
        registry
            .register(make())
            .map_err(|e| GatewayError::Registration { name: name.clone(), message: e.to_string() })?;
    }
    Ok(Arc::new(registry))
}
