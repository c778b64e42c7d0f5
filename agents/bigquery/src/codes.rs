//! Error codes of the BigQuery agent (`TERN-J0xx`), and how BigQuery's own error reasons map to
//! them. BigQuery names every error with a `reason` (REST reference, "Error messages"), both in an
//! HTTP error body (`error.errors[].reason`) and in a finished job's `status.errorResult.reason`;
//! [`reason_class`] is the one place that decides who must act and whether retrying can help.
use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be run: no SQL, no project (and no `default_project`), a custom key of
/// the wrong type, an unknown `materialize` value. User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-J001";
/// An input cannot be a BigQuery query parameter (a map, struct, file, dataframe, duration, a list
/// of lists, a value out of range). User error, permanent.
pub const BAD_INPUT: &str = "TERN-J002";
/// BigQuery rejected the query or the job configuration (`invalidQuery`, `invalid`): bad SQL, a
/// parameter of the wrong type. User error, permanent.
pub const INVALID_QUERY: &str = "TERN-J003";
/// A table, dataset or project the query names does not exist (`notFound`). User error, permanent.
pub const NOT_FOUND: &str = "TERN-J004";
/// Not allowed: `accessDenied`, `billingNotEnabled`, `blocked`, `policyViolation`, `invalidUser`,
/// HTTP 401 (credentials refused). User error, permanent.
pub const ACCESS_DENIED: &str = "TERN-J005";
/// The query hit one of BigQuery's limits or is not supported: `resourcesExceeded`,
/// `responseTooLarge`, `billingTierLimitExceeded`, `timeout`, `notImplemented`, `duplicate`.
/// User error, permanent.
pub const QUERY_LIMIT: &str = "TERN-J006";
/// BigQuery failed on its side: `backendError`, `internalError`, `jobBackendError`,
/// `jobInternalError`, `tableUnavailable`, `resourceInUse`, HTTP 5xx. System error, retryable.
pub const BACKEND: &str = "TERN-J007";
/// Throttled: `rateLimitExceeded`, `quotaExceeded`, HTTP 429. System error, retryable.
pub const THROTTLED: &str = "TERN-J008";
/// The request did not complete: connection refused, DNS, TLS, timeout, an undecodable answer.
/// System error, retryable.
pub const TRANSPORT: &str = "TERN-J009";
/// Credentials cannot be used: the service-account JSON is missing, not JSON, not a service
/// account; or the token endpoint refused it. User error, permanent (a token endpoint that cannot be
/// reached is `TERN-J009`).
pub const CREDENTIALS: &str = "TERN-J010";
/// The job in the handle does not exist in BigQuery (another project or location, or expired after
/// six months). User error, permanent (`NOT_FOUND` from GetTask).
pub const JOB_NOT_FOUND: &str = "TERN-J011";
/// The query's result cannot be written as Parquet: a column type with no Arrow form, more rows
/// than `max_materialized_rows`, a value BigQuery sent that does not parse as its column's type.
/// User error, permanent.
pub const MATERIALIZE: &str = "TERN-J012";
/// The task declares the output `results` but the job produced no result table (a DDL/DML
/// statement or a script). User error, permanent.
pub const NO_RESULT_TABLE: &str = "TERN-J013";

/// Code, origin and retry class of one BigQuery error reason; `None` for a reason this agent does
/// not know.
pub fn reason_class(reason: &str) -> Option<(&'static str, ErrorOrigin, Retry)> {
    use ErrorOrigin::{System, User};
    use Retry::{Permanent, Retryable};
    Some(match reason {
        "invalidQuery" | "invalid" => (INVALID_QUERY, User, Permanent),
        "notFound" => (NOT_FOUND, User, Permanent),
        "accessDenied" | "billingNotEnabled" | "blocked" | "policyViolation" | "invalidUser" => {
            (ACCESS_DENIED, User, Permanent)
        }
        "resourcesExceeded" | "responseTooLarge" | "billingTierLimitExceeded" | "timeout" | "notImplemented"
        | "duplicate" => (QUERY_LIMIT, User, Permanent),
        "backendError" | "internalError" | "jobBackendError" | "jobInternalError" | "tableUnavailable"
        | "resourceInUse" => (BACKEND, System, Retryable),
        "rateLimitExceeded" | "quotaExceeded" => (THROTTLED, System, Retryable),
        _ => return None,
    })
}

/// An error from BigQuery with its reason: classified by [`reason_class`], else by the HTTP status
/// (`0` when there was none: a job's `errorResult`).
pub fn from_reason(reason: &str, http_status: u16, message: impl Into<String>) -> AgentError {
    let message = message.into();
    if let Some((code, origin, retry)) = reason_class(reason) {
        return AgentError::new(code, message, origin, retry, class_of(origin, retry, code));
    }
    match http_status {
        401 => AgentError::new(CREDENTIALS, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::PermissionDenied),
        403 => AgentError::new(ACCESS_DENIED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::PermissionDenied),
        404 => AgentError::new(NOT_FOUND, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition),
        408 | 500..=599 => AgentError::unavailable(BACKEND, message),
        429 => AgentError::new(THROTTLED, message, ErrorOrigin::System, Retry::Retryable, ErrorClass::ResourceExhausted),
        400..=499 => AgentError::user(INVALID_QUERY, message),
        _ => AgentError::unavailable(BACKEND, message),
    }
}

fn class_of(origin: ErrorOrigin, retry: Retry, code: &str) -> ErrorClass {
    match (origin, retry) {
        (ErrorOrigin::System, Retry::Retryable) if code == THROTTLED => ErrorClass::ResourceExhausted,
        (ErrorOrigin::System, _) => ErrorClass::Unavailable,
        (ErrorOrigin::User, _) if code == ACCESS_DENIED => ErrorClass::PermissionDenied,
        (ErrorOrigin::User, _) => ErrorClass::FailedPrecondition,
    }
}

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn bad_input(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_INPUT, message)
}

pub(crate) fn transport(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(TRANSPORT, message)
}

pub(crate) fn credentials(message: impl Into<String>) -> AgentError {
    AgentError::user(CREDENTIALS, message)
}

pub(crate) fn materialize(message: impl Into<String>) -> AgentError {
    AgentError::user(MATERIALIZE, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_reasons_are_permanent_system_reasons_retryable() {
        for (reason, code) in [
            ("invalidQuery", INVALID_QUERY),
            ("notFound", NOT_FOUND),
            ("accessDenied", ACCESS_DENIED),
            ("resourcesExceeded", QUERY_LIMIT),
        ] {
            let e = from_reason(reason, 400, "m");
            assert_eq!((e.code.as_ref(), e.origin, e.retry), (code, ErrorOrigin::User, Retry::Permanent), "{reason}");
        }
        for (reason, code) in [("backendError", BACKEND), ("internalError", BACKEND), ("rateLimitExceeded", THROTTLED)] {
            let e = from_reason(reason, 0, "m");
            assert_eq!((e.code.as_ref(), e.origin, e.retry), (code, ErrorOrigin::System, Retry::Retryable), "{reason}");
        }
    }

    #[test]
    fn unknown_reasons_fall_back_to_the_http_status() {
        assert_eq!(from_reason("brandNew", 503, "m").code, BACKEND);
        assert!(from_reason("brandNew", 503, "m").is_retryable());
        assert_eq!(from_reason("", 429, "m").code, THROTTLED);
        assert_eq!(from_reason("", 401, "m").code, CREDENTIALS);
        assert!(!from_reason("", 401, "m").is_retryable());
        assert_eq!(from_reason("", 400, "m").code, INVALID_QUERY);
        assert_eq!(from_reason("", 403, "m").class, ErrorClass::PermissionDenied);
    }
}
