//! Error codes of the Spark agent (`TERN-Z0xx`, documented in `docs/errors.md`), and their
//! classification. User errors are permanent; only system errors are retryable.
use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be submitted: no `custom` (the `SparkJob`), no container, no
/// `mainApplicationFile`, an `R` application, a `JAVA`/`SCALA` one without `mainClass`, a
/// field of the wrong type, container args with unrendered `{{.…}}` variables. User error,
/// permanent.
pub const BAD_TEMPLATE: &str = "TERN-Z001";
/// The standalone master refused the submission (`success: false`, an `ErrorResponse`, HTTP
/// 400/404/405/415), e.g. a malformed request or a Spark version it does not serve. User error,
/// permanent.
pub const SUBMISSION_REJECTED: &str = "TERN-Z002";
/// The standalone master's REST server could not be reached or answered with a server error
/// (connection refused, timeout, HTTP 5xx, a body that is not its JSON). System error,
/// retryable.
pub const UNAVAILABLE: &str = "TERN-Z003";
/// The driver ended without success because of the application: `FAILED` (a non-zero exit of
/// the driver), or in local mode a non-zero exit of `spark-submit`. User error, permanent.
pub const DRIVER_FAILED: &str = "TERN-Z004";
/// Spark could not run the driver: `ERROR` (the worker failed to launch it, e.g. an
/// unreadable application file or a worker-side failure). System error, retryable (bounded by
/// the task's retries).
pub const DRIVER_ERROR: &str = "TERN-Z005";
/// The driver is lost: the master reports `UNKNOWN` or no longer knows the submission (a
/// restarted master without recovery), or in local mode the `spark-submit` process is gone
/// without having recorded its exit. System error, retryable.
pub const DRIVER_LOST: &str = "TERN-Z006";
/// The master's REST server refused the credentials (HTTP 401/403, e.g. its JWS filter) or the
/// configured `token` reference cannot be read. User error (the gateway's configuration),
/// permanent.
pub const PERMISSION_DENIED: &str = "TERN-Z007";
/// Local mode could not start `spark-submit` (not found, not executable) or prepare its job
/// directory. User error (the gateway's configuration), permanent.
pub const LAUNCH_FAILED: &str = "TERN-Z008";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn rejected(message: impl Into<String>) -> AgentError {
    AgentError::new(SUBMISSION_REJECTED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn unavailable(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(UNAVAILABLE, message)
}

pub(crate) fn denied(message: impl Into<String>) -> AgentError {
    AgentError::permission_denied(PERMISSION_DENIED, message)
}

pub(crate) fn launch_failed(message: impl Into<String>) -> AgentError {
    AgentError::new(LAUNCH_FAILED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}
