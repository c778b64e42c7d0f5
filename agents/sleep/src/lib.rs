//! The `sleep` agent (task type `sleep`, version 0, async): a task that runs for a given
//! time and then succeeds. Used to test polling, cancellation, idempotent submission and
//! the engine's concurrency without any backend.
//!
//! # Template conventions
//!
//! - One input, `duration`: a Flyte duration (`datetime.timedelta`), or an integer or
//!   float number of seconds. Missing, negative or of another kind → `INVALID_ARGUMENT`
//!   at create, naming the input and what it got.
//! - No outputs; no `custom`.
//! - `resource_meta` is `{"v":1,"key":…,"until_unix_ms":…}`: `get` needs nothing else but
//!   the cancellation marks of the state directory, so any replica sharing it answers.
//! - Idempotent, durably: a create carrying an execution identity (hence an idempotency
//!   key) returns byte-for-byte the handle of the first create with that key, also after a
//!   restart of the gateway (or of an embedded `tern run`): every job started is recorded in
//!   `state_dir` ([`records`]), until `keep_records` after it ended.
//! - `get`: RUNNING until the time is up, then SUCCEEDED. `delete` before then
//!   cancels: later `get`s report ABORTED, across restarts too. Deleting a finished sleep
//!   changes nothing.
//! - The records count submissions: one file per job started, none per attach (see
//!   [`records`] for the layout; `scripts/chaos.py` counts them).
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::prelude::AsyncAgent;

pub mod agent;
pub mod config;
pub mod duration;
pub mod records;

pub use agent::{SleepAgent, TASK_TYPE};
pub use config::{SleepConfig, SleepFactory};

/// Stable error codes of this agent (documented in `docs/errors.md`).
pub mod codes {
    /// The `duration` input is missing, negative, not finite or of another kind.
    pub const BAD_DURATION: &str = "TERN-K002";
    /// The state directory cannot be created, written or read.
    pub const STATE_DIR: &str = "TERN-K003";
}

/// The sleep agent keeping its records under `state_dir`, ready to register.
pub fn agent(state_dir: &Path) -> Arc<dyn AsyncAgent> {
    Arc::new(SleepAgent::new(state_dir, agent::KEEP_RECORDS))
}
