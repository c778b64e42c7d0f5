//! Error codes of the GPU agent (`TERN-U0xx`, documented in `docs/errors.md`). User errors
//! are permanent; system errors retryable.
use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be run: no container command, container args with unrendered
/// `{{.…}}` variables, a GPU quantity that is not a whole number, a GPU limit below its
/// request, no `output_prefix`, or no GPU asked for at all. User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-U001";
/// The task asks for GPUs and this host has none: NVML cannot be loaded (no NVIDIA driver)
/// or lists no device. The message names what was asked and why there is none. User error,
/// permanent (the task must go to a GPU host).
pub const NO_GPU: &str = "TERN-U002";
/// The task asks for more GPUs (of its accelerator type or partition) than this host has
/// at all, so it could never run here. The message names what was asked and what exists.
/// Refused at create; a queued job finds it when the host's devices changed across a
/// gateway restart (state `UNSATISFIABLE`). User error, permanent.
pub const TOO_FEW_GPUS: &str = "TERN-U003";
/// The task's command exited with a non-zero code (or flytekit reported the task's error):
/// state `EXITED_N`. User error, permanent (retryable when flytekit says RECOVERABLE).
pub const TASK_FAILED: &str = "TERN-U004";
/// The job's supervisor process is gone without an exit record (killed from outside, or
/// the host restarted): state `LOST`; its devices are free again. System error, retryable.
pub const JOB_LOST: &str = "TERN-U005";
/// The state directory (job records, device assignments, logs) cannot be created, written
/// or read. System error, retryable.
pub const STATE_DIR: &str = "TERN-U006";
/// The handle names a job this gateway has no record of (another gateway's, or records
/// removed). User error, permanent (`NOT_FOUND`).
pub const JOB_NOT_FOUND: &str = "TERN-U007";
/// The job's supervisor could not be started (`/bin/sh` missing, no processes left, a
/// configured secret that cannot be read): state `SPAWN_FAILED`. System error, retryable.
pub const SPAWN_FAILED: &str = "TERN-U008";
/// The command exited 0, but the outputs the task interface declares were not written to
/// `<output_prefix>/outputs.pb`, or that file is not a `LiteralMap`. User error, permanent.
pub const NO_OUTPUTS: &str = "TERN-U009";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn state_dir(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(STATE_DIR, message)
}

/// A request this host can never satisfy (`NO_GPU`, `TOO_FEW_GPUS`).
pub(crate) fn unsatisfiable(code: &'static str, message: impl Into<String>) -> AgentError {
    AgentError::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}
