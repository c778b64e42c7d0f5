//! Durable engine state: executions and node attempts (with idempotency intents and
//! resource_meta) in a SQLite file `<state dir>/tern.db`.
//!
//! Queries are runtime `sqlx::query` calls with `$n` placeholders and portable SQL, so a
//! PostgreSQL backend needs a pool type, not new SQL.
mod cache;
mod records;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::Row;

use crate::error::codes;
pub(crate) use cache::{now_millis, CachedOutputs, HitAttempt, NewCacheEntry};
pub use cache::{CacheEntry, CacheStatus, Eviction};
pub use records::{AttemptPhase, ExecutionPhase, ExecutionRecord, NodeAttemptRecord, RecordedError};

/// Failures of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("[{}] cannot open state database {path}: {source}", codes::STORE_OPEN)]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("[{}] cannot migrate state database {path}: {source}", codes::STORE_OPEN)]
    Migrate { path: PathBuf, source: sqlx::migrate::MigrateError },
    #[error("[{}] state database query failed ({what}): {source}", codes::STORE_QUERY)]
    Query { what: &'static str, source: sqlx::Error },
    #[error("[{}] stored record is unreadable ({what})", codes::STORE_CORRUPT)]
    Corrupt { what: String },
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Open { .. } | Self::Migrate { .. } => codes::STORE_OPEN,
            Self::Query { .. } => codes::STORE_QUERY,
            Self::Corrupt { .. } => codes::STORE_CORRUPT,
        }
    }
}

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn unb64(text: &str, what: &str) -> Result<Vec<u8>, StoreError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| StoreError::Corrupt { what: format!("{what}: {e}") })
}

/// A new execution row.
pub(crate) struct NewExecution<'a> {
    pub id: &'a str,
    pub workflow_name: &'a str,
    pub workflow_yaml: &'a str,
    pub workflow_ir: &'a str,
    pub inputs: &'a [u8],
}

/// A node attempt's intent, written before the agent is called.
pub(crate) struct NewAttempt<'a> {
    pub execution_id: &'a str,
    pub node_id: &'a str,
    pub attempt: u32,
    pub task_type: &'a str,
    pub task_version: i32,
    pub agent_endpoint: &'a str,
    pub intent: &'a str,
    pub output_uri: &'a str,
}

/// Handle to the state database (cheap to clone).
#[derive(Debug, Clone)]
pub struct StateStore {
    pool: SqlitePool,
}

impl StateStore {
    /// Opens (creating if missing) `<state_dir>/tern.db` in WAL mode and applies the
    /// embedded migrations.
    pub async fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join("tern.db");
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        std::fs::create_dir_all(state_dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_err)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(open_err)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { path: path.clone(), source })?;
        Ok(Self { pool })
    }

    pub(crate) async fn insert_execution(&self, e: &NewExecution<'_>) -> Result<(), StoreError> {
        let t = now();
        sqlx::query(
            "INSERT INTO executions (id, workflow_name, workflow_yaml, workflow_ir, inputs, phase, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(e.id)
        .bind(e.workflow_name)
        .bind(e.workflow_yaml)
        .bind(e.workflow_ir)
        .bind(b64(e.inputs))
        .bind(ExecutionPhase::Running.as_str())
        .bind(&t)
        .execute(&self.pool)
        .await
        .map_err(q("insert execution"))?;
        Ok(())
    }

    pub(crate) async fn finish_execution(
        &self,
        id: &str,
        phase: ExecutionPhase,
        failed_node: Option<&str>,
        error: Option<&RecordedError>,
        outputs_uri: Option<&str>,
    ) -> Result<(), StoreError> {
        let t = now();
        sqlx::query(
            "UPDATE executions SET phase = $2, failed_node = $3, error_code = $4, error_message = $5,
             outputs_uri = $6, updated_at = $7, finished_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(phase.as_str())
        .bind(failed_node)
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(outputs_uri)
        .bind(&t)
        .execute(&self.pool)
        .await
        .map_err(q("finish execution"))?;
        Ok(())
    }

    /// Writes the intent of an attempt. Re-recording an existing attempt (recovery
    /// re-issuing CreateTask) keeps the original row.
    pub(crate) async fn record_intent(&self, a: &NewAttempt<'_>) -> Result<(), StoreError> {
        let t = now();
        sqlx::query(
            "INSERT INTO node_attempts (execution_id, node_id, attempt, phase, task_type, task_version,
                agent_endpoint, intent, output_uri, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
             ON CONFLICT (execution_id, node_id, attempt) DO NOTHING",
        )
        .bind(a.execution_id)
        .bind(a.node_id)
        .bind(i64::from(a.attempt))
        .bind(AttemptPhase::Queued.as_str())
        .bind(a.task_type)
        .bind(i64::from(a.task_version))
        .bind(a.agent_endpoint)
        .bind(a.intent)
        .bind(a.output_uri)
        .bind(&t)
        .execute(&self.pool)
        .await
        .map_err(q("record intent"))?;
        Ok(())
    }

    /// Stores the handle CreateTask returned; the attempt is now RUNNING.
    pub(crate) async fn record_resource_meta(
        &self,
        exec: &str,
        node: &str,
        attempt: u32,
        meta: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE node_attempts SET resource_meta = $4, phase = $5, updated_at = $6
             WHERE execution_id = $1 AND node_id = $2 AND attempt = $3",
        )
        .bind(exec)
        .bind(node)
        .bind(i64::from(attempt))
        .bind(b64(meta))
        .bind(AttemptPhase::Running.as_str())
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(q("record resource_meta"))?;
        Ok(())
    }

    pub(crate) async fn set_attempt_phase(
        &self,
        exec: &str,
        node: &str,
        attempt: u32,
        phase: AttemptPhase,
        error: Option<&RecordedError>,
    ) -> Result<(), StoreError> {
        let t = now();
        let finished = phase.is_terminal().then_some(t.as_str());
        sqlx::query(
            "UPDATE node_attempts SET phase = $4, error_code = $5, error_message = $6, updated_at = $7, finished_at = $8
             WHERE execution_id = $1 AND node_id = $2 AND attempt = $3",
        )
        .bind(exec)
        .bind(node)
        .bind(i64::from(attempt))
        .bind(phase.as_str())
        .bind(error.map(|e| e.code.as_str()))
        .bind(error.map(|e| e.message.as_str()))
        .bind(&t)
        .bind(finished)
        .execute(&self.pool)
        .await
        .map_err(q("update attempt"))?;
        Ok(())
    }

    /// Executions, newest first.
    pub async fn list_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {} FROM executions ORDER BY created_at DESC, id", records::EXECUTION_COLUMNS))
                .fetch_all(&self.pool)
                .await
                .map_err(q("list executions"))?;
        rows.iter().map(records::execution_from_row).collect()
    }

    /// One execution and all its node attempts (ordered by node, attempt).
    pub async fn get_execution(
        &self,
        id: &str,
    ) -> Result<Option<(ExecutionRecord, Vec<NodeAttemptRecord>)>, StoreError> {
        let row = sqlx::query(&format!("SELECT {} FROM executions WHERE id = $1", records::EXECUTION_COLUMNS))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get execution"))?;
        let Some(row) = row else { return Ok(None) };
        let exec = records::execution_from_row(&row)?;
        let rows = sqlx::query(&format!(
            "SELECT {} FROM node_attempts WHERE execution_id = $1 ORDER BY created_at, node_id, attempt",
            records::ATTEMPT_COLUMNS
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("get node attempts"))?;
        let attempts = rows.iter().map(records::attempt_from_row).collect::<Result<_, _>>()?;
        Ok(Some((exec, attempts)))
    }

    /// The stored workflow YAML and inputs (LiteralMap protobuf) of an execution.
    pub(crate) async fn execution_source(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row: Option<SqliteRow> = sqlx::query("SELECT workflow_yaml, inputs FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get execution source"))?;
        let Some(row) = row else { return Ok(None) };
        let yaml: String = row.try_get("workflow_yaml").map_err(q("read workflow_yaml"))?;
        let inputs: String = row.try_get("inputs").map_err(q("read inputs"))?;
        Ok(Some((yaml, unb64(&inputs, "execution inputs")?)))
    }
}
