//! What the state store returns: executions and node attempts as recorded.
use std::fmt;

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{unb64, StoreError};

/// Phase of a whole execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionPhase {
    Running,
    Succeeded,
    Failed,
}

impl ExecutionPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::Failed].into_iter().find(|p| p.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        self != Self::Running
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
    /// Cancelled (another node failed).
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

/// An error as recorded: the code (the agent's, or a TERN-E3xx of the engine) and message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordedError {
    pub code: String,
    pub message: String,
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
     resource_meta, output_uri, error_code, error_message, created_at, updated_at, finished_at, cache_status, cache_key";

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &'static str,
) -> Result<T, StoreError> {
    row.try_get(col).map_err(|e| StoreError::Corrupt { what: format!("column {col}: {e}") })
}

fn error_of(row: &SqliteRow) -> Result<Option<RecordedError>, StoreError> {
    let code: Option<String> = get(row, "error_code")?;
    let message: Option<String> = get(row, "error_message")?;
    Ok(code.map(|code| RecordedError { code, message: message.unwrap_or_default() }))
}

fn json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt { what: format!("{what}: {e}") })
}

pub(super) fn execution_from_row(row: &SqliteRow) -> Result<ExecutionRecord, StoreError> {
    let phase: String = get(row, "phase")?;
    let ir: String = get(row, "workflow_ir")?;
    Ok(ExecutionRecord {
        id: get(row, "id")?,
        workflow_name: get(row, "workflow_name")?,
        phase: ExecutionPhase::parse(&phase)
            .ok_or_else(|| StoreError::Corrupt { what: format!("execution phase {phase:?}") })?,
        failed_node: get(row, "failed_node")?,
        error: error_of(row)?,
        outputs_uri: get(row, "outputs_uri")?,
        workflow_ir: json(&ir, "workflow_ir")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        finished_at: get(row, "finished_at")?,
    })
}

pub(super) fn attempt_from_row(row: &SqliteRow) -> Result<NodeAttemptRecord, StoreError> {
    let phase: String = get(row, "phase")?;
    let attempt: i64 = get(row, "attempt")?;
    let version: i64 = get(row, "task_version")?;
    let intent: String = get(row, "intent")?;
    let meta: Option<String> = get(row, "resource_meta")?;
    let cache: Option<String> = get(row, "cache_status")?;
    Ok(NodeAttemptRecord {
        node_id: get(row, "node_id")?,
        attempt: u32::try_from(attempt).map_err(|_| StoreError::Corrupt { what: format!("attempt {attempt}") })?,
        phase: AttemptPhase::parse(&phase)
            .ok_or_else(|| StoreError::Corrupt { what: format!("attempt phase {phase:?}") })?,
        task_type: get(row, "task_type")?,
        task_version: i32::try_from(version)
            .map_err(|_| StoreError::Corrupt { what: format!("task version {version}") })?,
        agent_endpoint: get(row, "agent_endpoint")?,
        intent: json(&intent, "intent")?,
        resource_meta: meta.map(|m| unb64(&m, "resource_meta")).transpose()?,
        output_uri: get(row, "output_uri")?,
        error: error_of(row)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        finished_at: get(row, "finished_at")?,
        cache_status: cache
            .map(|c| {
                super::CacheStatus::parse(&c).ok_or_else(|| StoreError::Corrupt { what: format!("cache status {c:?}") })
            })
            .transpose()?,
        cache_key: get(row, "cache_key")?,
    })
}
