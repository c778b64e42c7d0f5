//! What the state store returns: executions and node attempts as recorded.
use std::fmt;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use tern_agent_api::error::{AgentError, ErrorOrigin};

use super::{unb64, StoreError};

/// Phase of a whole execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionPhase {
    Running,
    /// `tern abort` asked for it; the driver (or `abort` itself) is deleting running jobs.
    Aborting,
    Succeeded,
    Failed,
    Aborted,
}

impl ExecutionPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Aborting => "ABORTING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Aborting, Self::Succeeded, Self::Failed, Self::Aborted]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Running | Self::Aborting)
    }
}

impl fmt::Display for ExecutionPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Phase of one node attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptPhase {
    /// Intent written; the agent has not (knowingly) accepted the task yet.
    Queued,
    /// The agent accepted it (async: resource_meta recorded; sync: call in flight).
    Running,
    Succeeded,
    /// Failed permanently.
    Failed,
    /// Failed in a way a new attempt may fix.
    RetryableFailed,
    /// Given up on the driver's signal (another node failed, abort, workflow deadline);
    /// its job was deleted.
    Aborted,
}

impl AttemptPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::RetryableFailed => "RETRYABLE_FAILED",
            Self::Aborted => "ABORTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed, Self::RetryableFailed, Self::Aborted]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl fmt::Display for AttemptPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as recorded: the code (the agent's, or a TERN-E3xx of the engine), message,
/// and (for node attempts) whose failure it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordedError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<ErrorOrigin>,
}

impl RecordedError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), origin: None }
    }

    /// An agent's (or the engine's) error as an attempt records it.
    pub fn of(e: &AgentError) -> Self {
        Self { code: e.code.to_string(), message: e.message.clone(), origin: Some(e.origin) }
    }
}

pub(super) fn origin_str(o: ErrorOrigin) -> &'static str {
    match o {
        ErrorOrigin::User => "user",
        ErrorOrigin::System => "system",
    }
}

impl fmt::Display for RecordedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

/// An execution as recorded. Timestamps are RFC 3339 (UTC).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub workflow_name: String,
    pub phase: ExecutionPhase,
    pub failed_node: Option<String>,
    pub error: Option<RecordedError>,
    /// Where the workflow outputs' LiteralMap was written (succeeded executions).
    pub outputs_uri: Option<String>,
    /// JSON summary of the compiled workflow.
    pub workflow_ir: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// A node attempt as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeAttemptRecord {
    pub node_id: String,
    pub attempt: u32,
    pub phase: AttemptPhase,
    pub task_type: String,
    pub task_version: i32,
    pub agent_endpoint: String,
    /// The `task_execution_id` sent to the agent (JSON): the idempotency intent.
    pub intent: serde_json::Value,
    #[serde(skip)]
    pub resource_meta: Option<Vec<u8>>,
    /// The outputs (`core.LiteralMap` protobuf) when stored inline; else at `output_uri`.
    #[serde(skip)]
    pub outputs: Option<Vec<u8>>,
    pub output_uri: String,
    pub error: Option<RecordedError>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// How the cache was involved (`HIT`: served from the cache, no agent called); `None`
    /// when the task is not cacheable.
    pub cache_status: Option<super::CacheStatus>,
    pub cache_key: Option<String>,
}

pub(super) const EXECUTION_COLUMNS: &str =
    "id, workflow_name, workflow_ir, phase, failed_node, error_code, error_message, outputs_uri, created_at, updated_at, finished_at";

pub(super) const ATTEMPT_COLUMNS: &str = "node_id, attempt, phase, task_type, task_version, agent_endpoint, intent, \
     resource_meta, output_uri, error_code, error_message, error_origin, created_at, updated_at, finished_at, cache_status, cache_key, outputs";

/// Typed column access for the row type of either backend, so every record is decoded
/// by one function. Columns are TEXT or BIGINT on both backends.
pub(crate) trait Columns {
    fn text(&self, col: &'static str) -> Result<String, StoreError>;
    fn text_opt(&self, col: &'static str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &'static str) -> Result<i64, StoreError>;
    fn int_opt(&self, col: &'static str) -> Result<Option<i64>, StoreError>;
}

fn unreadable(col: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Corrupt { what: format!("column {col}: {e}") }
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, col: &'static str) -> Result<String, StoreError> {
                self.try_get(col).map_err(unreadable(col))
            }
            fn text_opt(&self, col: &'static str) -> Result<Option<String>, StoreError> {
                self.try_get(col).map_err(unreadable(col))
            }
            fn int(&self, col: &'static str) -> Result<i64, StoreError> {
                self.try_get(col).map_err(unreadable(col))
            }
            fn int_opt(&self, col: &'static str) -> Result<Option<i64>, StoreError> {
                self.try_get(col).map_err(unreadable(col))
            }
        }
    };
}

columns_for!(SqliteRow);
columns_for!(PgRow);

fn error_of(row: &impl Columns) -> Result<Option<RecordedError>, StoreError> {
    let code = row.text_opt("error_code")?;
    let message = row.text_opt("error_message")?;
    Ok(code.map(|code| RecordedError { code, message: message.unwrap_or_default(), origin: None }))
}

fn attempt_error_of(row: &impl Columns) -> Result<Option<RecordedError>, StoreError> {
    let origin = match row.text_opt("error_origin")?.as_deref() {
        Some("system") => Some(ErrorOrigin::System),
        Some(_) => Some(ErrorOrigin::User),
        None => None,
    };
    Ok(error_of(row)?.map(|e| RecordedError { origin, ..e }))
}

fn json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { what: format!("{what}: {e}") })
}

pub(super) fn execution_from_row(row: &impl Columns) -> Result<ExecutionRecord, StoreError> {
    let phase = row.text("phase")?;
    let ir = row.text("workflow_ir")?;
    Ok(ExecutionRecord {
        id: row.text("id")?,
        workflow_name: row.text("workflow_name")?,
        phase: ExecutionPhase::parse(&phase)
            .ok_or_else(|| StoreError::Corrupt { what: format!("execution phase {phase:?}") })?,
        failed_node: row.text_opt("failed_node")?,
        error: error_of(row)?,
        outputs_uri: row.text_opt("outputs_uri")?,
        workflow_ir: json(&ir, "workflow_ir")?,
        created_at: row.text("created_at")?,
        updated_at: row.text("updated_at")?,
        finished_at: row.text_opt("finished_at")?,
    })
}

pub(super) fn attempt_from_row(row: &impl Columns) -> Result<NodeAttemptRecord, StoreError> {
    let phase = row.text("phase")?;
    let attempt = row.int("attempt")?;
    let version = row.int("task_version")?;
    let intent = row.text("intent")?;
    let meta = row.text_opt("resource_meta")?;
    let cache = row.text_opt("cache_status")?;
    Ok(NodeAttemptRecord {
        node_id: row.text("node_id")?,
        attempt: u32::try_from(attempt).map_err(|_| StoreError::Corrupt { what: format!("attempt {attempt}") })?,
        phase: AttemptPhase::parse(&phase)
            .ok_or_else(|| StoreError::Corrupt { what: format!("attempt phase {phase:?}") })?,
        task_type: row.text("task_type")?,
        task_version: i32::try_from(version)
            .map_err(|_| StoreError::Corrupt { what: format!("task version {version}") })?,
        agent_endpoint: row.text("agent_endpoint")?,
        intent: json(&intent, "intent")?,
        resource_meta: meta.map(|m| unb64(&m, "resource_meta")).transpose()?,
        output_uri: row.text("output_uri")?,
        error: attempt_error_of(row)?,
        created_at: row.text("created_at")?,
        updated_at: row.text("updated_at")?,
        finished_at: row.text_opt("finished_at")?,
        cache_status: cache
            .map(|c| {
                super::CacheStatus::parse(&c).ok_or_else(|| StoreError::Corrupt { what: format!("cache status {c:?}") })
            })
            .transpose()?,
        cache_key: row.text_opt("cache_key")?,
        outputs: row.text_opt("outputs")?.map(|o| unb64(&o, "inline outputs")).transpose()?,
    })
}
