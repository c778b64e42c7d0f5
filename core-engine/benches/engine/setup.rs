//! The engine under test: default persistence (SQLite `tern.db` and the local data store
//! under the state dir), the in-process echo and sleep agents, explicit parallelism.
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_core_engine::{AgentRouter, Engine, EngineConfig};

/// The sleep agent keeps its durable job records under `<state_dir>/sleep` (as `tern run`
/// does under its state dir); `_sleep_capacity` is kept for the callers' signature.
pub async fn open(state_dir: &Path, max_parallel: usize, _sleep_capacity: usize) -> Engine {
    let mut registry = AgentRegistry::new();
    let sleep =
        Arc::new(tern_agent_sleep::SleepAgent::new(&state_dir.join("sleep"), std::time::Duration::from_secs(3600)));
    if let Err(e) = registry.register_async(tern_agent_echo::agent()).and_then(|()| registry.register_async(sleep)) {
        crate::fail(format!("cannot register the agents: {e}"));
    }
    // Agents share the engine's data directory, as in `tern run` (embedded mode).
    let client = InProcessClient::new(Arc::new(registry), AgentServices::local(state_dir.join("data")));
    let mut config = EngineConfig::new(state_dir, AgentRouter::new(Arc::new(client)));
    config.max_parallel = max_parallel;
    Engine::open(config).await.unwrap_or_else(|e| crate::fail(format!("cannot open the engine: {e}")))
}
