//! Builds the agent clients a command talks to: in-process agents (the embedded
//! default), a remote gateway, and per-task-type connector routes.
use std::collections::HashMap;
use std::sync::Arc;

use tern_agent_api::client::AgentClient;
use tern_agent_api::context::AgentServices;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_gateway::{GatewayConfig, Mode};

use crate::cli::TargetArgs;

pub struct Targets {
    pub default: Arc<dyn AgentClient>,
    pub routes: HashMap<String, Arc<dyn AgentClient>>,
    /// Services of the in-process agents (also the engine's data store).
    pub services: AgentServices,
}

pub fn gateway_config(target: &TargetArgs) -> Result<GatewayConfig, String> {
    let mut config = GatewayConfig::load(target.config.as_deref(), tern_gateway::config::env::from_process())
        .map_err(|e| e.to_string())?;
    if target.config.is_none() {
        config.data_store.root = target.state_dir.join("data");
    }
    Ok(config)
}

pub fn build(target: &TargetArgs) -> Result<Targets, String> {
    let config = gateway_config(target)?;
    let (local, _) = tern_gateway::in_process_client(&config, Mode::Embedded).map_err(|e| e.to_string())?;
    let services = local.services().clone();
    let default: Arc<dyn AgentClient> = match &target.gateway {
        Some(url) => Arc::new(GrpcAgentClient::connect_lazy(url, ClientTimeouts::default()).map_err(|e| e.to_string())?),
        None => Arc::new(local),
    };
    let mut routes: HashMap<String, Arc<dyn AgentClient>> = HashMap::new();
    for spec in &target.connectors {
        let (task_type, endpoint) = spec
            .split_once('=')
            .filter(|(t, e)| !t.is_empty() && !e.is_empty())
            .ok_or_else(|| format!("[TERN-C003] --connector expects TASK_TYPE=HOST:PORT, got {spec:?}"))?;
        let client = GrpcAgentClient::connect_lazy(endpoint, ClientTimeouts::default()).map_err(|e| e.to_string())?;
        routes.insert(task_type.to_owned(), Arc::new(client));
    }
    Ok(Targets { default, routes, services })
}
