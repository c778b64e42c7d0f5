//! The executor: runs a compiled workflow's nodes through the agent router.
//!
//! - `scheduler`: which nodes may start (dependencies, parallelism, stop on failure);
//! - `node`: one node's attempts and retries;
//! - `cache`: task output caching around a node's attempts (lookup, serialize, store);
//! - `attempt`: one attempt (intent → CreateTask → resource_meta → GetTask…, or
//!   ExecuteTaskSync), its timeout and its outputs.
mod attempt;
mod cache;
pub mod events;
mod identity;
pub mod inputs;
mod node;
mod render;
pub(crate) mod scheduler;

use std::sync::Arc;

use tern_agent_api::datastore::DataStore;
use tokio::sync::watch;

use crate::config::PollConfig;
use crate::router::AgentRouter;
use crate::store::StateStore;

pub use cache::{CacheKey, CachePolicy};
pub(crate) use events::Events;
pub(crate) use identity::TaskExecutionIntent;

/// Namespace sent in `task_execution_metadata`, as propeller sends `<project>-<domain>`.
pub const NAMESPACE: &str = "tern-development";

/// What every node of one execution shares.
pub(crate) struct RunCtx {
    pub store: StateStore,
    pub data: Arc<dyn DataStore>,
    pub data_root: String,
    pub router: AgentRouter,
    pub poll: PollConfig,
    pub execution_id: String,
    pub events: Events,
    /// Flips to `true` when a node failed: running nodes cancel, no new ones start.
    pub cancel: watch::Receiver<bool>,
}

/// How a node's first attempt in this run begins.
#[derive(Debug, Clone)]
pub(crate) enum NodeStart {
    /// A new attempt with a new intent.
    Fresh { attempt: u32 },
    /// Recovery: an intent was written but no resource_meta; re-issue the create (or sync
    /// execute) with the same `task_execution_id`, which the agent deduplicates.
    Recreate { attempt: u32, intent: TaskExecutionIntent },
    /// Recovery: the agent accepted the task; resume polling its handle.
    Resume { attempt: u32, intent: TaskExecutionIntent, meta: Vec<u8> },
}

impl NodeStart {
    pub fn attempt(&self) -> u32 {
        match self {
            Self::Fresh { attempt } | Self::Recreate { attempt, .. } | Self::Resume { attempt, .. } => *attempt,
        }
    }
}
