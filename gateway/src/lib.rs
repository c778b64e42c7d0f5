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
use tern_agent_api::dispatch::InProcessClient;
use tern_agent_api::secrets::StaticSecrets;
use tern_type_transformers::store::DataStores;

/// The shared services (data store, secrets, HTTP client) agents get, from config. The data
/// store routes by URI: local paths and `file://` to `[data_store].root`, `s3://` to S3
/// (connected on first use), so propeller's `s3://` output prefixes work.
pub fn services(config: &GatewayConfig) -> AgentServices {
    let mut secrets = StaticSecrets::from_env_prefix(&config.secrets.env_prefix);
    if let Some(dir) = &config.secrets.dir {
        secrets = secrets.with_dir(dir);
    }
    let store = DataStores::new(&config.data_store.root).with_s3(config.data_store.s3());
    AgentServices::new(Arc::new(store), Arc::new(secrets))
}

/// The in-process client over every agent `config` enables: what `tern serve` serves and
/// what the embedded engine calls directly.
pub fn in_process_client(config: &GatewayConfig) -> Result<InProcessClient, GatewayError> {
    let registry = agents::build_registry(&config.agents)?;
    Ok(InProcessClient::new(registry, services(config)))
}
