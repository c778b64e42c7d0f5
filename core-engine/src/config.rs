//! Engine configuration, as types.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::datastore::{DataStore, LocalDataStore};

use crate::router::AgentRouter;
use crate::store::StateLocation;

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
    /// Where executions are recorded: a directory holding `tern.db` (SQLite, created if
    /// missing) or a PostgreSQL database.
    pub state: StateLocation,
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
    /// SQLite state in `state_dir`. Defaults: data in a local directory `<state_dir>/data`,
    /// 8 parallel nodes, default polling.
    pub fn new(state_dir: impl Into<PathBuf>, router: AgentRouter) -> Self {
        Self::at(StateLocation::Sqlite(state_dir.into()), router)
    }

    /// State at `state`; data in [`default_data_dir`] of it.
    pub fn at(state: StateLocation, router: AgentRouter) -> Self {
        let store = LocalDataStore::new(default_data_dir(&state));
        let data_root = store.canonical_uri("");
        Self { state, data_store: Arc::new(store), data_root, router, max_parallel: 8, poll: PollConfig::default() }
    }
}

/// Where node inputs and outputs go when nothing else is configured: `<state dir>/data`
/// next to a SQLite state, `.tern/data` (relative to the working directory) with a
/// PostgreSQL state, the same place the default state directory would put them.
pub fn default_data_dir(state: &StateLocation) -> PathBuf {
    match state.local_dir() {
        Some(dir) => dir.join("data"),
        None => PathBuf::from(".tern").join("data"),
    }
}
