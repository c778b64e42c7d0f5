//! The Tern gateway: serves Flyte's agent protocol (plus gRPC health and reflection)
//! for the agents it hosts in-process.
//!
//! Which agents are compiled in is decided by cargo features (`agent-duckdb`, …), which
//! are enabled at run time by `tern.toml` ([`GatewayConfig`]).
pub mod agents;
pub mod config;
pub mod error;
pub mod serve;

pub use config::GatewayConfig;
pub use error::GatewayError;
pub use serve::{serve, ServeHandle};

use std::sync::Arc;

use tern_agent_api::context::AgentServices;
use tern_agent_api::datastore::LocalDataStore;
use tern_agent_api::dispatch::InProcessClient;
use tern_agent_api::secrets::StaticSecrets;

/// The shared services (data store, secrets, HTTP client) agents get, from config.
pub fn services(config: &GatewayConfig) -> AgentServices {
    let mut secrets = StaticSecrets::from_env_prefix(&config.secrets.env_prefix);
    if let Some(dir) = &config.secrets.dir {
        secrets = secrets.with_dir(dir);
    }
    AgentServices::new(LocalDataStore::shared(&config.data_store.root), Arc::new(secrets))
}

/// The in-process client over every agent `config` enables: what `tern serve` serves and
/// what the embedded engine calls directly.
pub fn in_process_client(config: &GatewayConfig) -> Result<InProcessClient, GatewayError> {
    let registry = agents::build_registry(&config.agents)?;
    Ok(InProcessClient::new(registry, services(config)))
}
