//! Opens the engine over the agents a command targets.
use std::sync::Arc;

use tern_agent_api::datastore::DataStore;
use tern_core_engine::{AgentRouter, Engine, EngineConfig};

use super::target;
use crate::cli::{StateArgs, TargetArgs};

pub async fn open(args: &TargetArgs, max_parallel: usize) -> Result<Engine, String> {
    open_with_store(args, max_parallel).await.map(|(engine, _)| engine)
}

/// [`open`], with the data store the engine writes execution data to (where offloaded
/// outputs are).
pub async fn open_with_store(
    args: &TargetArgs,
    max_parallel: usize,
) -> Result<(Engine, Arc<dyn DataStore>), String> {
    let targets = target::build(args)?;
    let mut router = AgentRouter::new(targets.default);
    for (task_type, client) in targets.routes {
        router = router.with_route(task_type, client);
    }
    let mut config = EngineConfig::at(targets.state, router);
    config.data_store = targets.services.data_store.clone();
    config.data_root = config.data_store.canonical_uri("");
    config.max_parallel = max_parallel.max(1);
    let store = config.data_store.clone();
    let engine = Engine::open(config).await.map_err(|e| e.to_string())?;
    Ok((engine, store))
}

/// Only the state store matters (listing, showing): the in-process agents suffice.
pub async fn open_state(state: &StateArgs) -> Result<Engine, String> {
    let args = TargetArgs {
        gateway: None,
        connectors: Vec::new(),
        config: state.config.clone(),
        state: state.state.clone(),
        ca_cert: None,
        token: None,
    };
    open(&args, 1).await
}

