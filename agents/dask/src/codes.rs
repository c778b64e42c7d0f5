//! Error codes of the Dask agent (`TERN-Y0xx`, documented in `docs/errors.md`), and their
//! classification. User errors are permanent; system errors retryable.
use tern_agent_api::prelude::AgentError;

/// The task template cannot be run: no container command, a `custom` (DaskJob) field of
/// the wrong type, a resource quantity that is not a Kubernetes quantity, container args
/// with unrendered `{{.…}}` variables, no `output_prefix`. User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-Y001";
/// The DaskJob asks for more local workers than `max_workers` allows (a local cluster runs
/// on the gateway's host). User error, permanent.
pub const TOO_LARGE: &str = "TERN-Y002";
/// The task's command exited with a non-zero code (or was killed by a signal other than
/// the agent's): state `EXITED_N`, with the code and the end of its stderr. User error,
/// permanent.
pub const TASK_FAILED: &str = "TERN-Y003";
/// The ephemeral local cluster did not come up: the scheduler or the workers exited or
/// did not register within `cluster_start_timeout` (e.g. `distributed` missing from
/// `python`): state `CLUSTER_FAILED`, with the end of their logs. System error, retryable.
pub const CLUSTER_FAILED: &str = "TERN-Y004";
/// The job's supervisor process is gone without an exit record (killed from outside, or
/// the machine rebooted, while the gateway was down or not): state `LOST`. System error,
/// retryable.
pub const JOB_LOST: &str = "TERN-Y005";
/// The state directory (job records, logs) cannot be created, written or read. System
/// error, retryable.
pub const STATE_DIR: &str = "TERN-Y006";
/// The handle names a job this gateway has no record of (another gateway's, or records
/// removed). User error, permanent (`NOT_FOUND`).
pub const JOB_NOT_FOUND: &str = "TERN-Y007";
/// The job's supervisor process could not be started (`/bin/sh` missing, no processes
/// left): state `SPAWN_FAILED`. System error, retryable.
pub const SPAWN_FAILED: &str = "TERN-Y008";
/// The command exited 0, but the outputs the task interface declares were not written
/// to `<output_prefix>/outputs.pb`, or that file is not a `LiteralMap`. User error,
/// permanent.
pub const NO_OUTPUTS: &str = "TERN-Y009";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn state_dir(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(STATE_DIR, message)
}
