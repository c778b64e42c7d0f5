//! Typed, classified agent errors and their single mapping to gRPC and to task phases.
//!
//! Every error carries a stable code (documented in `docs/errors.md`), an origin
//! (user vs system) and a retry class (retryable vs permanent). From those three facts
//! the gRPC status code, the `Resource.phase` and the `AgentError` message of the wire
//! are derived in one place, so the answer never depends on which code path failed.
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::proto::flyteidl::{admin, core};

/// Who caused the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorOrigin {
    /// The task's author or caller: bad SQL, a missing input, a malformed request.
    User,
    /// The platform: a backend outage, an I/O failure, a bug.
    System,
}

/// Whether trying again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    Retryable,
    Permanent,
}

/// Finer class used only to pick the most precise gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    NotFound,
    InvalidArgument,
    Unimplemented,
    Unavailable,
    DeadlineExceeded,
    ResourceExhausted,
    FailedPrecondition,
    PermissionDenied,
    Internal,
}

/// Stable error codes of the protocol layer. Agents define their own next to their code.
pub mod codes {
    pub const MALFORMED_PROTOBUF: &str = "TERN-P001";
    pub const AGENT_NOT_FOUND: &str = "TERN-A001";
    pub const INVALID_REQUEST: &str = "TERN-A002";
    pub const BAD_RESOURCE_META: &str = "TERN-A003";
    pub const UNIMPLEMENTED: &str = "TERN-A004";
    pub const DUPLICATE_AGENT: &str = "TERN-A005";
    pub const OUTPUT_MISMATCH: &str = "TERN-A006";
    pub const WRONG_EXECUTION_MODE: &str = "TERN-A007";
    pub const TRANSPORT: &str = "TERN-A008";
    pub const REMOTE: &str = "TERN-A009";
    pub const DEADLINE_EXCEEDED: &str = "TERN-A010";
    pub const BAD_INPUT: &str = "TERN-A011";
    pub const INTERNAL: &str = "TERN-A012";
    pub const DATA_NOT_FOUND: &str = "TERN-D001";
    pub const DATA_IO: &str = "TERN-D002";
    pub const DATA_UNSUPPORTED_URI: &str = "TERN-D003";
    pub const DATA_OUTSIDE_ROOTS: &str = "TERN-D004";
    pub const RESOURCE_EXHAUSTED: &str = "TERN-A013";
    pub const BAD_AGENT_CONFIG: &str = "TERN-A014";
    /// The agents' HTTP client cannot be built (its TLS backend refused the settings).
    pub const HTTP_CLIENT: &str = "TERN-A015";
    pub const SECRET_MISSING: &str = "TERN-S001";
    /// A backend reported a state its agent's [`StateTable`](crate::states::StateTable) does not know.
    pub const UNKNOWN_BACKEND_STATE: &str = "TERN-B001";
    /// A backend reported a failure state (the table's default code for one).
    pub const BACKEND_FAILED: &str = "TERN-B002";
}

const CODE_HEADER: &str = "tern-error-code";
/// Longest message sent in a gRPC status (HTTP/2 peers limit header lists to ~16 KiB).
const MAX_STATUS_MESSAGE: usize = 4096;
const ORIGIN_HEADER: &str = "tern-error-origin";
const RETRY_HEADER: &str = "tern-error-retry";
/// Milliseconds after which a refused call may be tried again (also sent as gRPC's
/// standard `google.rpc.RetryInfo` detail).
pub const RETRY_AFTER_HEADER: &str = "tern-retry-after-ms";

/// The one error type of the agent protocol.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct AgentError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub origin: ErrorOrigin,
    pub retry: Retry,
    pub class: ErrorClass,
    /// For refusals under load: when trying again is expected to succeed.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl AgentError {
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        origin: ErrorOrigin,
        retry: Retry,
        class: ErrorClass,
    ) -> Self {
        Self { code: code.into(), message: message.into(), origin, retry, class, retry_after: None }
    }

    /// The task failed because of what the user wrote (bad SQL, bad command): permanent.
    pub fn user(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
    }

    /// The request itself is malformed or inconsistent: permanent user error.
    pub fn invalid_argument(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::InvalidArgument)
    }

    /// Something named by the caller does not exist.
    pub fn not_found(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::NotFound)
    }

    /// The caller may not do this (a path outside the allowed roots, a task type or
    /// project its token does not cover): permanent user error.
    pub fn permission_denied(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::PermissionDenied)
    }

    /// A transient platform failure: retrying may succeed.
    pub fn unavailable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, ErrorOrigin::System, Retry::Retryable, ErrorClass::Unavailable)
    }

    /// A platform failure that retrying will not fix.
    pub fn internal(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, ErrorOrigin::System, Retry::Permanent, ErrorClass::Internal)
    }

    /// The agent does not offer this optional capability.
    pub fn unimplemented(what: impl fmt::Display) -> Self {
        Self::new(
            codes::UNIMPLEMENTED,
            format!("{what} is not supported by this agent"),
            ErrorOrigin::System,
            Retry::Permanent,
            ErrorClass::Unimplemented,
        )
    }

    /// A limit (concurrency, rate, quota) refused the call; trying again later may succeed.
    pub fn resource_exhausted(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        let mut e = Self::new(
            codes::RESOURCE_EXHAUSTED,
            message,
            ErrorOrigin::System,
            Retry::Retryable,
            ErrorClass::ResourceExhausted,
        );
        e.retry_after = retry_after;
        e
    }

    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(
            codes::DEADLINE_EXCEEDED,
            message,
            ErrorOrigin::System,
            Retry::Retryable,
            ErrorClass::DeadlineExceeded,
        )
    }

    /// Same error, with context prepended to the message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.retry == Retry::Retryable
    }

    /// The gRPC status code this error maps to.
    pub fn grpc_code(&self) -> Code {
        match self.class {
            ErrorClass::NotFound => Code::NotFound,
            ErrorClass::InvalidArgument => Code::InvalidArgument,
            ErrorClass::Unimplemented => Code::Unimplemented,
            ErrorClass::Unavailable => Code::Unavailable,
            ErrorClass::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorClass::ResourceExhausted => Code::ResourceExhausted,
            ErrorClass::FailedPrecondition => Code::FailedPrecondition,
            ErrorClass::PermissionDenied => Code::PermissionDenied,
            ErrorClass::Internal => Code::Internal,
        }
    }

    /// The terminal task phase a failure with this error reports.
    pub fn failure_phase(&self) -> core::task_execution::Phase {
        match self.retry {
            Retry::Retryable => core::task_execution::Phase::RetryableFailed,
            Retry::Permanent => core::task_execution::Phase::Failed,
        }
    }

    /// The wire `AgentError` (field `Resource.agent_error`).
    pub fn to_proto(&self) -> admin::AgentError {
        admin::AgentError {
            code: self.code.to_string(),
            kind: match self.retry {
                Retry::Retryable => admin::agent_error::Kind::Recoverable,
                Retry::Permanent => admin::agent_error::Kind::NonRecoverable,
            } as i32,
            origin: match self.origin {
                ErrorOrigin::User => core::execution_error::ErrorKind::User,
                ErrorOrigin::System => core::execution_error::ErrorKind::System,
            } as i32,
        }
    }

    /// Converts to a gRPC status; the classification travels in metadata so a Tern
    /// client gets the exact error back, while any other client sees a normal status.
    pub fn into_status(mut self) -> Status {
        // The message travels in the `grpc-message` header: a huge one (an echo of a huge
        // input) would exceed HTTP/2's header limits and break the connection instead.
        if self.message.len() > MAX_STATUS_MESSAGE {
            let mut end = MAX_STATUS_MESSAGE;
            while !self.message.is_char_boundary(end) {
                end -= 1;
            }
            let cut = self.message.len() - end;
            self.message.truncate(end);
            self.message.push_str(&format!("… ({cut} bytes cut)"));
        }
        let mut status = match self.retry_after {
            Some(after) => {
                use tonic_types::StatusExt;
                Status::with_error_details(
                    self.grpc_code(),
                    self.to_string(),
                    tonic_types::ErrorDetails::with_retry_info(Some(after)),
                )
            }
            None => Status::new(self.grpc_code(), self.to_string()),
        };
        let md = status.metadata_mut();
        if let Some(after) = self.retry_after {
            if let Ok(v) = MetadataValue::try_from(after.as_millis().to_string()) {
                md.insert(RETRY_AFTER_HEADER, v);
            }
        }
        if let Ok(v) = MetadataValue::try_from(self.code.as_ref()) {
            md.insert(CODE_HEADER, v);
        }
        md.insert(
            ORIGIN_HEADER,
            MetadataValue::from_static(match self.origin {
                ErrorOrigin::User => "user",
                ErrorOrigin::System => "system",
            }),
        );
        md.insert(
            RETRY_HEADER,
            MetadataValue::from_static(match self.retry {
                Retry::Retryable => "retryable",
                Retry::Permanent => "permanent",
            }),
        );
        status
    }

    /// Interprets a status received from any agent server (Tern or flytekit).
    pub fn from_status(status: &Status) -> Self {
        let md = status.metadata();
        let header = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let class = match status.code() {
            Code::NotFound => ErrorClass::NotFound,
            Code::InvalidArgument | Code::OutOfRange => ErrorClass::InvalidArgument,
            Code::Unimplemented => ErrorClass::Unimplemented,
            Code::DeadlineExceeded | Code::Cancelled => ErrorClass::DeadlineExceeded,
            Code::ResourceExhausted => ErrorClass::ResourceExhausted,
            Code::PermissionDenied | Code::Unauthenticated => ErrorClass::PermissionDenied,
            Code::FailedPrecondition | Code::AlreadyExists => ErrorClass::FailedPrecondition,
            Code::Unavailable | Code::Aborted => ErrorClass::Unavailable,
            // flytekit reports every exception raised by a connector as INTERNAL/UNKNOWN,
            // transient ones included, so those are treated as retryable system errors.
            _ => ErrorClass::Internal,
        };
        let origin = match header(ORIGIN_HEADER).as_deref() {
            Some("user") => ErrorOrigin::User,
            Some("system") => ErrorOrigin::System,
            _ => match class {
                ErrorClass::NotFound
                | ErrorClass::InvalidArgument
                | ErrorClass::FailedPrecondition
                | ErrorClass::PermissionDenied => ErrorOrigin::User,
                _ => ErrorOrigin::System,
            },
        };
        let retry = match header(RETRY_HEADER).as_deref() {
            Some("retryable") => Retry::Retryable,
            Some("permanent") => Retry::Permanent,
            _ => match status.code() {
                Code::Unavailable
                | Code::Aborted
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Internal
                | Code::Unknown
                | Code::Cancelled => Retry::Retryable,
                _ => Retry::Permanent,
            },
        };
        let retry_after = header(RETRY_AFTER_HEADER)
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis)
            .or_else(|| {
                use tonic_types::StatusExt;
                status.get_details_retry_info().and_then(|r| r.retry_delay)
            });
        let code = header(CODE_HEADER).unwrap_or_else(|| codes::REMOTE.to_owned());
        // A Tern server already prefixed its message with the code; keep it once.
        let message = status
            .message()
            .strip_prefix(&format!("[{code}] "))
            .unwrap_or(status.message())
            .to_owned();
        let message = if header(CODE_HEADER).is_some() {
            message
        } else {
            format!("agent returned {:?}: {}", status.code(), message)
        };
        Self { code: code.into(), message, origin, retry, class, retry_after }
    }
}

impl From<AgentError> for Status {
    fn from(e: AgentError) -> Self {
        e.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_grpc_status() {
        let err = AgentError::user("TERN-Q001", "Parser Error: syntax error at or near \"SELEC\"");
        let back = AgentError::from_status(&err.clone().into_status());
        assert_eq!(back, err);
    }

    #[test]
    fn classification_drives_code_and_phase() {
        let e = AgentError::unavailable("X", "backend down");
        assert_eq!(e.grpc_code(), Code::Unavailable);
        assert_eq!(e.failure_phase(), core::task_execution::Phase::RetryableFailed);
        assert_eq!(e.to_proto().kind, admin::agent_error::Kind::Recoverable as i32);
        let e = AgentError::not_found(codes::AGENT_NOT_FOUND, "no agent");
        assert_eq!(e.grpc_code(), Code::NotFound);
        assert_eq!(e.failure_phase(), core::task_execution::Phase::Failed);
        assert_eq!(e.to_proto().origin, core::execution_error::ErrorKind::User as i32);
    }

    #[test]
    fn refusals_carry_a_retry_hint_in_metadata_and_in_retry_info() {
        let err = AgentError::resource_exhausted("duckdb is full", Some(Duration::from_millis(1500)));
        let status = err.clone().into_status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get(RETRY_AFTER_HEADER).unwrap(), "1500");
        use tonic_types::StatusExt;
        assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_millis(1500)));
        assert_eq!(AgentError::from_status(&status), err);
    }

    #[test]
    fn huge_messages_are_cut_before_they_reach_a_header() {
        let err = AgentError::invalid_argument("X", "é".repeat(100_000));
        let status = err.into_status();
        assert!(status.message().len() < 5000, "{}", status.message().len());
        assert!(status.message().ends_with("bytes cut)"));
    }

    #[test]
    fn foreign_statuses_are_classified() {
        let e = AgentError::from_status(&Status::internal("failed to get task with error: Traceback"));
        assert!(e.is_retryable());
        assert_eq!(e.origin, ErrorOrigin::System);
        assert_eq!(e.code, codes::REMOTE);
        let e = AgentError::from_status(&Status::not_found("Cannot find connector for task type: x."));
        assert!(!e.is_retryable());
        assert_eq!(e.class, ErrorClass::NotFound);
    }
}
