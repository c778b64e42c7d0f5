//! Builds the agent clients a command talks to: this process's gateway (its agents and
//! the routes of `--config`: the embedded default), a remote gateway, and per-task-type
//! connector routes.
use std::collections::HashMap;
use std::sync::Arc;

use tern_agent_api::client::AgentClient;
use tern_agent_api::context::AgentServices;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::secrets::SecretRef;
use tern_core_engine::{config::default_data_dir, StateLocation};
use tern_gateway::{Gateway, GatewayConfig, Mode};

use super::state;
use crate::cli::TargetArgs;

pub struct Targets {
    pub default: Arc<dyn AgentClient>,
    pub routes: HashMap<String, Arc<dyn AgentClient>>,
    /// Services of the in-process agents (also the engine's data store).
    pub services: AgentServices,
    /// Where the engine records executions.
    pub state: StateLocation,
}

/// The configuration (`--config`, the environment) with the command line's overrides, and
/// the state location. Without a config file, node data goes next to the state:
/// `<state dir>/data` (SQLite), or `.tern/data` (PostgreSQL; `[data_store] root` or
/// `TERN_DATA_STORE__ROOT` sets it).
pub fn gateway_config(target: &TargetArgs) -> Result<(GatewayConfig, StateLocation), String> {
    let mut config = GatewayConfig::load(target.config.as_deref(), tern_gateway::config::env::from_process())
        .map_err(|e| e.to_string())?;
    let state = state::location(target.state.as_deref(), &config)?;
    let root_overridden = config.origin.overrides.iter().any(|o| o.dotted() == "data_store.root");
    if target.config.is_none() && !root_overridden {
        config.data_store.root = default_data_dir(&state);
    }
    if let Some(ca) = &target.ca_cert {
        config.client.ca_cert = Some(ca.clone());
    }
    if let Some(token) = &target.token {
        config.client.token = Some(token.parse::<SecretRef>().map_err(|e| format!("[TERN-C004] --token: {e}"))?);
    }
    Ok((config, state))
}

/// A client for one remote agent server, with `[client]`'s TLS material and token.
fn remote(config: &GatewayConfig, services: &AgentServices, endpoint: &str) -> Result<Arc<dyn AgentClient>, String> {
    let options = config.client.options(services.secrets.as_ref(), ClientTimeouts::default()).map_err(|e| e.to_string())?;
    Ok(Arc::new(GrpcAgentClient::connect_lazy_with(endpoint, options).map_err(|e| e.to_string())?))
}

pub fn build(target: &TargetArgs) -> Result<Targets, String> {
    let (config, state) = gateway_config(target)?;
    let gateway = Gateway::build(&config, Mode::Embedded, Default::default()).map_err(|e| e.to_string())?;
    let services = gateway.router.local().services().clone();
    let default: Arc<dyn AgentClient> = match &target.gateway {
        Some(url) => remote(&config, &services, url)?,
        None => gateway.router.clone(),
    };
    let mut routes: HashMap<String, Arc<dyn AgentClient>> = HashMap::new();
    for spec in &target.connectors {
        let (task_type, endpoint) = spec
            .split_once('=')
            .filter(|(t, e)| !t.is_empty() && !e.is_empty())
            .ok_or_else(|| format!("[TERN-C003] --connector expects TASK_TYPE=HOST:PORT, got {spec:?}"))?;
        routes.insert(task_type.to_owned(), remote(&config, &services, endpoint)?);
    }
    Ok(Targets { default, routes, services, state })
}
