//! [`TransformError`]: why a Rust value and a Flyte literal could not be converted.
//!
//! Every variant has a stable code ([`TransformError::code`]) and one classification when
//! it becomes an [`AgentError`]: bad data (a literal of the wrong kind, an out-of-range
//! integer, a corrupt msgpack payload, …) is a user error that retrying will not fix; a
//! failing data store is a system error that may be retried.
//!
//! | code | meaning | origin | retry |
//! |---|---|---|---|
//! | TERN-T001 | literal of the wrong kind for the Rust type | user | permanent |
//! | TERN-T002 | integer out of range for the target type | user | permanent |
//! | TERN-T003 | msgpack payload cannot be decoded | user | permanent |
//! | TERN-T004 | struct field missing | user | permanent |
//! | TERN-T005 | struct field unknown (`deny_unknown_fields`) | user | permanent |
//! | TERN-T006 | value not among an enum's values | user | permanent |
//! | TERN-T007 | named entry missing from a literal map | user | permanent |
//! | TERN-T008 | no union variant accepts the value | user | permanent |
//! | TERN-T009 | several union variants accept the value | user | permanent |
//! | TERN-T010 | value of the right kind but invalid (NaN timestamp, overflow, …) | user | permanent |
//! | TERN-T011 | literal offloading failed (corrupt or truncated offloaded literal, cycle) | system | permanent |
//! | TERN-T012 | data store failed while offloading or loading: I/O; a missing object is user/permanent | system | retryable |
//! | TERN-T013 | no converter for a literal type | user | permanent |
//!
//! Parse errors from [`crate::parse`] keep their own codes (TERN-E110, TERN-E111).
use std::fmt;

use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::error::AgentError;

use crate::types::TypeError;

/// Stable codes of [`TransformError`].
pub mod codes {
    pub const WRONG_KIND: &str = "TERN-T001";
    pub const INTEGER_OUT_OF_RANGE: &str = "TERN-T002";
    pub const MALFORMED_MSGPACK: &str = "TERN-T003";
    pub const MISSING_FIELD: &str = "TERN-T004";
    pub const UNKNOWN_FIELD: &str = "TERN-T005";
    pub const UNKNOWN_ENUM_VALUE: &str = "TERN-T006";
    pub const MISSING_ENTRY: &str = "TERN-T007";
    pub const NO_UNION_VARIANT: &str = "TERN-T008";
    pub const AMBIGUOUS_UNION: &str = "TERN-T009";
    pub const INVALID_VALUE: &str = "TERN-T010";
    pub const OFFLOAD: &str = "TERN-T011";
    pub const DATA_STORE: &str = "TERN-T012";
    pub const UNSUPPORTED: &str = "TERN-T013";
}

/// Why a conversion between a Rust value (or JSON) and a Flyte literal failed.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The literal is not of the kind the Rust type is read from.
    #[error("expected {expected}, found {found}")]
    WrongKind { expected: String, found: String },
    /// An integer does not fit the target type (`300` into `u8`, `u64::MAX` into Flyte's int64).
    #[error("integer {value} is out of range for {target}")]
    IntegerOutOfRange { value: String, target: &'static str },
    /// A msgpack `Binary` literal whose payload cannot be decoded as the Rust type.
    #[error("malformed msgpack payload for {rust_type}: {reason}")]
    MalformedMsgpack { rust_type: String, reason: String },
    /// A struct (dataclass) literal lacks a field that has no default.
    #[error("{struct_name} is missing the required field {field:?}")]
    MissingField { struct_name: String, field: String },
    /// A struct literal has a field the Rust struct does not declare (only with `deny_unknown_fields`).
    #[error("{struct_name} has no field {field:?} (its fields: {known})")]
    UnknownField { struct_name: String, field: String, known: String },
    /// A string that is not one of an enum's values.
    #[error("{value:?} is not a value of {enum_name} (allowed: {})", allowed.join(", "))]
    UnknownEnumValue { enum_name: String, value: String, allowed: Vec<String> },
    /// A named value is missing from a `LiteralMap` (task inputs or outputs).
    #[error("no literal named {name:?} (present: {present})")]
    MissingEntry { name: String, present: String },
    /// No variant of a union accepts the literal.
    #[error("no variant of {expected} accepts {found}: {reasons}")]
    NoUnionVariant { expected: String, found: String, reasons: String },
    /// More than one variant of a union accepts the literal (flytekit refuses these too).
    #[error("ambiguous value for {expected}: variants {variants} all accept {found}")]
    AmbiguousUnion { expected: String, found: String, variants: String },
    /// A value of the right kind that the target cannot hold.
    #[error("invalid {expected}: {reason}")]
    InvalidValue { expected: String, reason: String },
    /// Offloading a literal or loading an offloaded one failed for a reason other than I/O.
    #[error("offloaded literal at {uri}: {reason}")]
    Offload { uri: String, reason: String },
    /// The data store failed while offloading or loading a literal.
    #[error("data store: {0}")]
    DataStore(#[from] DataStoreError),
    /// The literal type has no converter (registry) or cannot be represented.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A value given as text or JSON does not read as its declared type.
    #[error(transparent)]
    Parse(#[from] TypeError),
    /// An error inside a nested value, with the path to it (`.inner.x`, `[3]`, `["key"]`).
    #[error("at {}: {source}", display_path(path))]
    At { path: String, source: Box<TransformError> },
}

fn display_path(path: &str) -> &str {
    path.strip_prefix('.').unwrap_or(path)
}

impl TransformError {
    /// The stable code of this error (of the innermost error for [`TransformError::At`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongKind { .. } => codes::WRONG_KIND,
            Self::IntegerOutOfRange { .. } => codes::INTEGER_OUT_OF_RANGE,
            Self::MalformedMsgpack { .. } => codes::MALFORMED_MSGPACK,
            Self::MissingField { .. } => codes::MISSING_FIELD,
            Self::UnknownField { .. } => codes::UNKNOWN_FIELD,
            Self::UnknownEnumValue { .. } => codes::UNKNOWN_ENUM_VALUE,
            Self::MissingEntry { .. } => codes::MISSING_ENTRY,
            Self::NoUnionVariant { .. } => codes::NO_UNION_VARIANT,
            Self::AmbiguousUnion { .. } => codes::AMBIGUOUS_UNION,
            Self::InvalidValue { .. } => codes::INVALID_VALUE,
            Self::Offload { .. } => codes::OFFLOAD,
            Self::DataStore(_) => codes::DATA_STORE,
            Self::Unsupported(_) => codes::UNSUPPORTED,
            Self::Parse(e) => e.code(),
            Self::At { source, .. } => source.code(),
        }
    }

    /// The error without its path.
    pub fn innermost(&self) -> &TransformError {
        match self {
            Self::At { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// The path to the value at fault (`inner.x[2]`), empty at the top level.
    pub fn path(&self) -> &str {
        match self {
            Self::At { path, .. } => display_path(path),
            _ => "",
        }
    }

    /// Whether trying again may succeed (only data store I/O failures).
    pub fn is_retryable(&self) -> bool {
        matches!(self.innermost(), Self::DataStore(DataStoreError::Io { .. }))
    }

    /// The same error inside field `name` of a struct.
    pub fn at_field(self, name: &str) -> Self {
        self.prefixed(format!(".{name}"))
    }

    /// The same error inside item `index` of a list.
    pub fn at_index(self, index: usize) -> Self {
        self.prefixed(format!("[{index}]"))
    }

    /// The same error inside entry `key` of a map.
    pub fn at_key(self, key: &str) -> Self {
        self.prefixed(format!("[{key:?}]"))
    }

    fn prefixed(self, segment: String) -> Self {
        match self {
            Self::At { path, source } => Self::At { path: segment + &path, source },
            other => Self::At { path: segment, source: Box::new(other) },
        }
    }

    pub(crate) fn wrong_kind(expected: impl fmt::Display, found: impl fmt::Display) -> Self {
        Self::WrongKind { expected: expected.to_string(), found: found.to_string() }
    }

    pub(crate) fn invalid(expected: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self::InvalidValue { expected: expected.to_string(), reason: reason.to_string() }
    }
}

impl From<TransformError> for AgentError {
    fn from(e: TransformError) -> Self {
        let code = e.code();
        let message = e.to_string();
        match e.innermost() {
            TransformError::DataStore(DataStoreError::Io { .. }) => AgentError::unavailable(code, message),
            TransformError::DataStore(DataStoreError::NotFound { .. }) => AgentError::not_found(code, message),
            TransformError::Offload { .. } => AgentError::internal(code, message),
            _ => AgentError::invalid_argument(code, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::{ErrorOrigin, Retry};

    #[test]
    fn paths_accumulate_outside_in_and_keep_the_inner_code() {
        let e = TransformError::IntegerOutOfRange { value: "300".into(), target: "u8" }
            .at_index(2)
            .at_field("xs")
            .at_key("k")
            .at_field("outer");
        assert_eq!(e.path(), "outer[\"k\"].xs[2]");
        assert_eq!(e.code(), codes::INTEGER_OUT_OF_RANGE);
        assert_eq!(e.to_string(), "at outer[\"k\"].xs[2]: integer 300 is out of range for u8");
    }

    #[test]
    fn classification_for_agents() {
        let bad = AgentError::from(TransformError::wrong_kind("integer", "string \"x\""));
        assert_eq!((bad.origin, bad.retry), (ErrorOrigin::User, Retry::Permanent));
        assert_eq!(bad.code, codes::WRONG_KIND);
        let io = TransformError::DataStore(DataStoreError::Io {
            uri: "s3://b/k".into(),
            source: std::io::Error::other("reset"),
        })
        .at_field("x");
        assert!(io.is_retryable());
        let io = AgentError::from(io);
        assert_eq!((io.origin, io.retry), (ErrorOrigin::System, Retry::Retryable));
        assert_eq!(io.code, codes::DATA_STORE);
        let corrupt = AgentError::from(TransformError::Offload { uri: "u".into(), reason: "truncated".into() });
        assert_eq!((corrupt.origin, corrupt.retry), (ErrorOrigin::System, Retry::Permanent));
    }
}
