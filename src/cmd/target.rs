//! Builds the agent clients a command talks to: this process's gateway (its agents and
//! the routes of `--config`: the embedded default), a remote gateway, and per-task-type
//! connector routes.
use std::collections::HashMap;
use std::sync::Arc;

use tern_agent_api::client::AgentClient;
use tern_agent_api::context::AgentServices;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::secrets::SecretRef;
use tern_gateway::{Gateway, GatewayConfig, Mode};

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
    if let Some(ca) = &target.ca_cert {
        config.client.ca_cert = Some(ca.clone());
    }
    if let Some(token) = &target.token {
        config.client.token = Some(token.parse::<SecretRef>().map_err(|e| format!("[TERN-C004] --token: {e}"))?);
    }
    Ok(config)
}

/// A client for one remote agent server, with `[client]`'s TLS material and token.
fn remote(config: &GatewayConfig, services: &AgentServices, endpoint: &str) -> Result<Arc<dyn AgentClient>, String> {
    let options = config.client.options(services.secrets.as_ref(), ClientTimeouts::default()).map_err(|e| e.to_string())?;
    Ok(Arc::new(GrpcAgentClient::connect_lazy_with(endpoint, options).map_err(|e| e.to_string())?))
}

pub fn build(target: &TargetArgs) -> Result<Targets, String> {
    let config = gateway_config(target)?;
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
    Ok(Targets { default, routes, services })
}
