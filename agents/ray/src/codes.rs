//! Error codes of the Ray agent (`TERN-R0xx`, documented in `docs/errors.md`), and their
//! classification. User errors are permanent; only system errors are retryable.
use std::time::Duration;

use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be submitted: no container (or an empty command and args),
/// container args with unrendered `{{.…}}` propeller variables, a `custom` field of the
/// wrong type, a `runtimeEnv` that is not base64 JSON, a `runtimeEnvYaml` that is not a
/// YAML mapping, a `working_dir`/`py_modules` entry that is a local path (the gateway
/// cannot upload it; give a remote URI). User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-R001";
/// No Ray cluster: the section sets no `address` and `RAY_ADDRESS` is unset. User error
/// (the gateway's configuration), permanent.
pub const NO_ADDRESS: &str = "TERN-R002";
/// The Ray dashboard refused the credentials (HTTP 401/403): a secured dashboard needs
/// `token` or `headers` in `[agents.ray]`. User error, permanent.
pub const PERMISSION_DENIED: &str = "TERN-R003";
/// The Ray Jobs API rejected the submission or a call (HTTP 400 or another 4xx, or the HTTP
/// 500 with which Ray's dashboard wraps its job agent's 4xx; e.g. an invalid `runtime_env`, an
/// entrypoint resource Ray does not accept), with Ray's message. User error, permanent.
pub const REQUEST_REJECTED: &str = "TERN-R004";
/// The job does not exist at the Ray cluster (HTTP 404): deleted, the cluster was
/// restarted (Ray keeps jobs in the head's GCS), or a handle of another cluster. User
/// error, permanent.
pub const JOB_NOT_FOUND: &str = "TERN-R005";
/// The Ray dashboard could not be reached or answered with a server error: connection
/// refused, DNS, TLS, timeout, HTTP 5xx, HTTP 429, or a body that is not the Jobs API's
/// JSON. System error, retryable.
pub const UNAVAILABLE: &str = "TERN-R006";
/// The job failed because of the task: its entrypoint exited non-zero
/// (`JOB_ENTRYPOINT_COMMAND_ERROR`) or could not start, its `runtime_env` could not be set
/// up (a missing pip package, an unreachable `working_dir`), its entrypoint resources can
/// never be scheduled, or an interface with outputs ended without `outputs.pb`. User
/// error, permanent.
pub const JOB_FAILED: &str = "TERN-R007";
/// The job failed because of the Ray cluster: its supervisor actor died, failed to start
/// or timed out starting (a lost node, an overloaded head). System error, retryable.
pub const CLUSTER_FAILURE: &str = "TERN-R008";
/// A submission id Tern derived from the task's idempotency key is already taken at the
/// cluster by a job with another entrypoint (not one this gateway submitted for the same
/// attempt): nothing is started. User error, permanent.
pub const SUBMISSION_ID_TAKEN: &str = "TERN-R009";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn no_address(message: impl Into<String>) -> AgentError {
    AgentError::new(NO_ADDRESS, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn denied(message: impl Into<String>) -> AgentError {
    AgentError::permission_denied(PERMISSION_DENIED, message)
}

pub(crate) fn rejected(message: impl Into<String>) -> AgentError {
    AgentError::new(REQUEST_REJECTED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn taken(message: impl Into<String>) -> AgentError {
    AgentError::new(SUBMISSION_ID_TAKEN, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> AgentError {
    let mut e = AgentError::unavailable(UNAVAILABLE, message);
    e.retry_after = retry_after;
    e
}
