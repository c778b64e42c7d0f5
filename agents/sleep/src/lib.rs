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
//! - `resource_meta` is `{"v":1,"key":…,"until_unix_ms":…}`: `get` needs nothing else, so
//!   any replica can answer it (cancellations, though, are remembered per process).
//! - Idempotent: a create carrying an execution identity (hence an idempotency key)
//!   returns byte-for-byte the handle of the first create with that key (the last
//!   65 536 keys are remembered).
//! - `get`: RUNNING until the time is up, then SUCCEEDED. `delete` before then
//!   cancels: later `get`s report ABORTED. Deleting a finished sleep changes nothing.
use std::sync::Arc;

use tern_agent_api::prelude::AsyncAgent;

pub mod agent;
pub mod bounded;
pub mod config;
pub mod duration;

pub use agent::{SleepAgent, TASK_TYPE};
pub use config::{SleepConfig, SleepFactory};

/// Stable error codes of this agent (documented in `docs/errors.md`).
pub mod codes {
    /// The `duration` input is missing, negative, not finite or of another kind.
    pub const BAD_DURATION: &str = "TERN-K002";
}

/// The sleep agent, ready to register.
pub fn agent() -> Arc<dyn AsyncAgent> {
    Arc::new(SleepAgent::default())
}
