//! Error codes of the Databricks agent (`TERN-X0xx`, documented in `docs/errors.md`), and
//! their classification. Only system errors are retryable.
use std::time::Duration;

use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be submitted: no `custom`, no `databricksConf`, no compute
/// (`new_cluster`, `existing_cluster_id`, `environment_key`, `environments`), a field of
/// the wrong type, `tasks` in `databricksConf`, container args with unrendered
/// `{{.…}}` variables. User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-X001";
/// No workspace: the template names no `databricksInstance` and the section sets no
/// `host` (`DATABRICKS_HOST`). User error (the gateway's configuration), permanent.
pub const NO_WORKSPACE: &str = "TERN-X002";
/// The template's `databricksInstance` (or a handle's instance) is not a workspace this
/// gateway may reach: not its `host`, not in `instances`, and `allow_template_instances`
/// is off. Nothing is sent (`PERMISSION_DENIED` on create, `NOT_FOUND` for a handle).
/// User error, permanent.
pub const INSTANCE_NOT_ALLOWED: &str = "TERN-X003";
/// No usable credentials: the auth method the template asks for (`databricksAuthType`) is
/// not configured, is `oidc_federation` (not supported), or the section has neither
/// `token` nor `client_id` + `client_secret`. User error, permanent.
pub const AUTH_NOT_CONFIGURED: &str = "TERN-X004";
/// Databricks refused the credentials or the caller's rights: HTTP 401/403 from the Jobs
/// API, or the OAuth token endpoint refused the client. User error, permanent.
pub const PERMISSION_DENIED: &str = "TERN-X005";
/// The Jobs API rejected the request (HTTP 400/409/other 4xx, or 501 when the workspace
/// does not serve the configured `api_version`): its `error_code` and message. User error,
/// permanent.
pub const REQUEST_REJECTED: &str = "TERN-X006";
/// The run does not exist at the workspace (HTTP 404 on `runs/get`): deleted, or the
/// handle names another workspace. User error, permanent.
pub const RUN_NOT_FOUND: &str = "TERN-X007";
/// The workspace (or its token endpoint) could not be reached or answered with a server
/// error: connection refused, DNS, TLS, timeout, HTTP 5xx, HTTP 429 (throttled), or a
/// body that is not the Jobs API's JSON. System error, retryable.
pub const UNAVAILABLE: &str = "TERN-X008";
/// The run ended without success because of the task: `FAILED`, `TIMEDOUT`, `SKIPPED`,
/// `EXCLUDED`, `UPSTREAM_FAILED`, `DISABLED`, or a `status.termination_details.code` of
/// type `CLIENT_ERROR` (`RUN_EXECUTION_ERROR`, `LIBRARY_INSTALLATION_ERROR`, …). User
/// error, permanent.
pub const RUN_FAILED: &str = "TERN-X009";
/// The run failed because of the Databricks platform or the cloud: life-cycle
/// `INTERNAL_ERROR`, termination codes `INTERNAL_ERROR`, `DRIVER_ERROR`, `CLUSTER_ERROR`,
/// `CLOUD_FAILURE`, … System error, retryable.
pub const PLATFORM_FAILURE: &str = "TERN-X010";
/// The run was not started because a limit was reached: result state
/// `MAXIMUM_CONCURRENT_RUNS_REACHED`, termination codes `WORKSPACE_RUN_LIMIT_EXCEEDED`,
/// `MAX_CONCURRENT_RUNS_EXCEEDED`, `CLUSTER_REQUEST_LIMIT_EXCEEDED`, … System error,
/// retryable.
pub const LIMIT_REACHED: &str = "TERN-X011";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn auth_not_configured(message: impl Into<String>) -> AgentError {
    AgentError::new(AUTH_NOT_CONFIGURED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn denied(message: impl Into<String>) -> AgentError {
    AgentError::permission_denied(PERMISSION_DENIED, message)
}

pub(crate) fn rejected(message: impl Into<String>) -> AgentError {
    AgentError::new(REQUEST_REJECTED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> AgentError {
    let mut e = AgentError::unavailable(UNAVAILABLE, message);
    e.retry_after = retry_after;
    e
}
