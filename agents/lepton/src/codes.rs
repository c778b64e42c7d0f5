//! Error codes of the Lepton agent (`TERN-L0xx`, documented in `docs/errors.md`), and their
//! classification. Only system errors are retryable.
use std::time::Duration;

use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be deployed: no `custom`, `custom` not what
/// flytekitplugins-dgxc-lepton writes (a field of the wrong type, no `image` for a
/// deployment, no `endpoint_name` for a deletion), a port out of range, a name that
/// sanitizes to nothing. User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-L001";
/// No workspace or no token: `[agents.lepton]` sets no `workspace_id` (`LEPTON_WORKSPACE_ID`)
/// or no `token` (`LEPTON_TOKEN`). User error (the gateway's configuration), permanent.
pub const NOT_CONFIGURED: &str = "TERN-L002";
/// Lepton refused the token or the caller's rights: HTTP 401/403. User error, permanent.
pub const PERMISSION_DENIED: &str = "TERN-L003";
/// Lepton rejected the request (HTTP 400/409/422/other 4xx): its `code` and `message`. User
/// error, permanent.
pub const REQUEST_REJECTED: &str = "TERN-L004";
/// The endpoint name is taken by a deployment this task did not create (it carries no
/// `tern-task-key` label of this task). Nothing is changed. User error, permanent.
pub const NAME_TAKEN: &str = "TERN-L005";
/// A Lepton call answered 404 where something must exist: creating in a workspace that is
/// not there (a wrong `workspace_id`), or the log API. (A deployment handle whose
/// deployment is gone is not an error: ABORTED for a deployment task, SUCCEEDED for a
/// deletion task.) User error, permanent.
pub const ENDPOINT_GONE: &str = "TERN-L006";
/// Lepton could not be reached or answered with a server error: connection refused, DNS,
/// TLS, timeout, HTTP 5xx, HTTP 429, or a body that is not Lepton's JSON. System error,
/// retryable.
pub const UNAVAILABLE: &str = "TERN-L007";
/// The endpoint did not become `Ready` within its readiness timeout (the template's
/// `endpoint_readiness_timeout`, else the section's `readiness_timeout`). The deployment is
/// left as it is (delete it with a deletion task). User error, permanent.
pub const NOT_READY_IN_TIME: &str = "TERN-L008";
/// The deployment will not become ready: it is being deleted, stopping or stopped (scaled
/// to zero) while the task waits for it. User error, permanent.
pub const ENDPOINT_ENDED: &str = "TERN-L009";
/// Lepton reports the deployment's state as unknown (`UNK`). System error, retryable.
pub const STATE_UNKNOWN: &str = "TERN-L010";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn not_configured(message: impl Into<String>) -> AgentError {
    AgentError::new(NOT_CONFIGURED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn denied(message: impl Into<String>) -> AgentError {
    AgentError::permission_denied(PERMISSION_DENIED, message)
}

pub(crate) fn rejected(code: &'static str, message: impl Into<String>) -> AgentError {
    AgentError::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> AgentError {
    let mut e = AgentError::unavailable(UNAVAILABLE, message);
    e.retry_after = retry_after;
    e
}
