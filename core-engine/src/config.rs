//! Engine configuration, as types.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::datastore::{DataStore, LocalDataStore};

use crate::router::AgentRouter;

/// How GetTask is polled for an async task: exponential backoff from `initial`, times
/// `factor`, capped at `max`. The first GetTask is sent right after CreateTask.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    pub initial: Duration,
    pub factor: u32,
    pub max: Duration,
    /// Consecutive failed GetTask calls (retryable errors) tolerated before the attempt
    /// fails; a transient blip should not cost a retry and a duplicate job.
    pub max_get_failures: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self { initial: Duration::from_millis(50), factor: 2, max: Duration::from_secs(5), max_get_failures: 3 }
    }
}

impl PollConfig {
    pub(crate) fn next(&self, current: Duration) -> Duration {
        current.saturating_mul(self.factor.max(1)).min(self.max)
    }
}

/// Everything [`crate::Engine::open`] needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Holds `tern.db` (created if missing).
    pub state_dir: PathBuf,
    /// Where node inputs/outputs are written.
    pub data_store: Arc<dyn DataStore>,
    /// URI prefix in `data_store` for execution data: node attempts write under
    /// `<data_root>/<execution id>/<node id>/<attempt>`.
    pub data_root: String,
    pub router: AgentRouter,
    /// Nodes running at once (at least 1).
    pub max_parallel: usize,
    pub poll: PollConfig,
}

impl EngineConfig {
    /// Defaults: data in a local directory `<state_dir>/data`, 8 parallel nodes,
    /// default polling.
    pub fn new(state_dir: impl Into<PathBuf>, router: AgentRouter) -> Self {
        let state_dir = state_dir.into();
        let store = LocalDataStore::new(state_dir.join("data"));
        let data_root = store.canonical_uri("");
        Self { state_dir, data_store: Arc::new(store), data_root, router, max_parallel: 8, poll: PollConfig::default() }
    }
}
