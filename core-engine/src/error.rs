//! The engine's coded errors. Every user-facing error has a stable code, listed in
//! `docs/workflows.md`: TERN-E1xx parse, TERN-E2xx compile, TERN-E3xx execution,
//! TERN-E4xx state store.
use std::fmt;

use tern_agent_api::error::AgentError;

use crate::compile::CompileErrors;
use crate::spec::ParseError;
use crate::store::StoreError;

/// Stable error codes of the engine.
pub mod codes {
    /// The workflow file cannot be read.
    pub const READ_FAILED: &str = "TERN-E100";
    /// Invalid YAML, or YAML that is not a workflow (wrong shape or value type).
    pub const YAML: &str = "TERN-E101";
    /// A key the workflow format does not have.
    pub const UNKNOWN_KEY: &str = "TERN-E102";
    /// A node id that is not `[A-Za-z_][A-Za-z0-9_-]*` or is reserved (`inputs`).
    pub const BAD_NODE_ID: &str = "TERN-E103";
    /// A task definition that contradicts itself (both `sql` and `container`).
    pub const BAD_TASK: &str = "TERN-E104";
    /// A malformed duration (`timeout`).
    pub const BAD_DURATION: &str = "TERN-E105";
    /// An invalid type expression (from type-transformers).
    pub const BAD_TYPE_EXPR: &str = "TERN-E110";

    /// A binding's source type cannot be assigned to the input's declared type.
    pub const TYPE_MISMATCH: &str = "TERN-E201";
    /// A task input that no binding provides.
    pub const MISSING_INPUT: &str = "TERN-E202";
    /// A binding for an input the task does not declare.
    pub const UNKNOWN_INPUT: &str = "TERN-E203";
    /// `${inputs.x}` where the workflow declares no input `x`.
    pub const UNKNOWN_WORKFLOW_INPUT: &str = "TERN-E204";
    /// A reference (or `depends_on`) to a node that does not exist.
    pub const UNKNOWN_NODE: &str = "TERN-E205";
    /// `${node.out}` where the node declares no output `out`.
    pub const UNKNOWN_NODE_OUTPUT: &str = "TERN-E206";
    /// The nodes' dependencies form a cycle.
    pub const CYCLE: &str = "TERN-E207";
    /// Two nodes share an id.
    pub const DUPLICATE_NODE: &str = "TERN-E208";
    /// A constant binding or input default that is not a value of the declared type.
    pub const BAD_CONSTANT: &str = "TERN-E209";
    /// A workflow output that does not reference a node output or workflow input.
    pub const BAD_WORKFLOW_OUTPUT: &str = "TERN-E210";
    /// No reachable agent serves a node's task type.
    pub const UNSERVED_TASK_TYPE: &str = "TERN-E211";
    /// A malformed `${...}` reference.
    pub const BAD_REFERENCE: &str = "TERN-E212";

    /// `--input name=value` for an input the workflow does not declare.
    pub const UNKNOWN_RUN_INPUT: &str = "TERN-E301";
    /// A required workflow input that was not given.
    pub const MISSING_RUN_INPUT: &str = "TERN-E302";
    /// An input value that cannot be read as the input's type.
    pub const BAD_RUN_INPUT: &str = "TERN-E303";
    /// `--input` text without `=`, or an input given twice.
    pub const MALFORMED_RUN_INPUT: &str = "TERN-E304";
    /// A node attempt exceeded the task's timeout.
    pub const NODE_TIMED_OUT: &str = "TERN-E306";
    /// A node could not be run by the engine itself (its inputs could not be assembled,
    /// its task panicked).
    pub const NODE_INTERNAL: &str = "TERN-E307";
    /// No execution with this id.
    pub const EXECUTION_NOT_FOUND: &str = "TERN-E308";
    /// `recover` on an execution that already finished.
    pub const NOT_RECOVERABLE: &str = "TERN-E309";
    /// A running node cancelled because another node failed.
    pub const NODE_CANCELLED: &str = "TERN-E310";

    /// The state database cannot be opened or migrated.
    pub const STORE_OPEN: &str = "TERN-E401";
    /// A state database query failed.
    pub const STORE_QUERY: &str = "TERN-E402";
    /// A stored record cannot be decoded.
    pub const STORE_CORRUPT: &str = "TERN-E403";
    /// The state location is not a usable PostgreSQL URL (or its secret reference cannot
    /// be resolved).
    pub const STORE_LOCATION: &str = "TERN-E404";
    /// The PostgreSQL server refused the state database's credentials.
    pub const STORE_AUTH: &str = "TERN-E405";
}

/// Any error the engine API returns.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{0}")]
    Compile(#[from] CompileErrors),
    #[error("{0}")]
    Inputs(#[from] InputErrors),
    #[error("[{}] no execution {id:?}", codes::EXECUTION_NOT_FOUND)]
    NotFound { id: String },
    #[error(
        "[{}] execution {id:?} already finished ({phase}); only running executions can be recovered",
        codes::NOT_RECOVERABLE
    )]
    NotRecoverable { id: String, phase: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A data store or agent failure outside any node (e.g. writing workflow outputs).
    #[error("{0}")]
    Agent(#[from] AgentError),
}

impl EngineError {
    /// The stable code of the (first) error.
    pub fn code(&self) -> String {
        match self {
            Self::Parse(e) => e.code.to_owned(),
            Self::Compile(e) => e.errors.first().map(|e| e.code.to_owned()).unwrap_or_default(),
            Self::Inputs(e) => e.errors.first().map(|e| e.code.to_owned()).unwrap_or_default(),
            Self::NotFound { .. } => codes::EXECUTION_NOT_FOUND.into(),
            Self::NotRecoverable { .. } => codes::NOT_RECOVERABLE.into(),
            Self::Store(e) => e.code().into(),
            Self::Agent(e) => e.code.to_string(),
        }
    }

    /// True when the caller's input is at fault (workflow text, inputs, ids): a CLI exits
    /// with its usage status (2) for these, and 1 for the others.
    pub fn is_user_error(&self) -> bool {
        if let Self::Store(e) = self {
            return e.is_user_error();
        }
        matches!(
            self,
            Self::Parse(_) | Self::Compile(_) | Self::Inputs(_) | Self::NotFound { .. } | Self::NotRecoverable { .. }
        )
    }
}

/// One problem with the inputs given to `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: &'static str,
    /// The input's name (or the malformed text).
    pub input: String,
    pub message: String,
}

/// Every problem with the inputs of one `run` call, found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputErrors {
    pub errors: Vec<InputError>,
}

impl std::error::Error for InputErrors {}

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "[{}] input {:?}: {}", e.code, e.input, e.message)?;
        }
        Ok(())
    }
}
