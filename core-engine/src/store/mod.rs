//! Durable engine state: executions and node attempts (with idempotency intents and
//! resource_meta), in SQLite (`<state dir>/tern.db`, the embedded default) or PostgreSQL.
//!
//! Every query is written once: runtime `sqlx::query` calls with `$n` placeholders and
//! portable SQL inside `with_pool!`, which compiles the body for each backend's pool.
//! Rows are decoded in `records` through its `Columns` trait, implemented for both row
//! types. Each backend has its own versioned migrations (`migrations/sqlite`,
//! `migrations/postgres`: the same versions with the same meaning).
mod cache;
mod connect;
mod journal;
mod lease;
pub mod location;
mod records;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::error::codes;
pub(crate) use cache::{now_millis, CachedOutputs, HitAttempt, NewCacheEntry};
pub use cache::{CacheEntry, CacheStatus, Eviction};
pub(crate) use journal::{Ticket, Write};
pub use lease::{LeaseGrant, LeaseOutcome};
pub use location::StateLocation;
use records::Columns;
pub use records::{AttemptPhase, ExecutionPhase, ExecutionRecord, NodeAttemptRecord, RecordedError};

/// Runs `$body` with `$p` bound to the store's pool, whichever backend it is: the body
/// (a `sqlx::query(…)…execute($p)` chain) is written once and compiled for each backend.
/// Its value must not depend on the backend: decode rows inside it, map query results
/// to `()` or `rows_affected()`.
macro_rules! with_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Failures of the state database. Messages never hold a password: locations print
/// redacted and driver messages are scrubbed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The location is not a usable PostgreSQL URL.
    #[error("[{}] invalid state location {location}: {reason}", codes::STORE_LOCATION)]
    Location { location: String, reason: String },
    #[error("[{}] cannot open state database {location}: {reason}", codes::STORE_OPEN)]
    Open { location: String, reason: String },
    /// The server refused the credentials.
    #[error("[{}] the server refused the credentials for state database {location}: {reason}", codes::STORE_AUTH)]
    Auth { location: String, reason: String },
    #[error("[{}] cannot migrate state database {location}: {reason}", codes::STORE_OPEN)]
    Migrate { location: String, reason: String },
    #[error("[{}] state database query failed ({what}): {source}", codes::STORE_QUERY)]
    Query { what: &'static str, source: sqlx::Error },
    #[error("[{}] stored record is unreadable ({what})", codes::STORE_CORRUPT)]
    Corrupt { what: String },
    /// A batch of the execution's writes failed (see `journal`); later ones are refused.
    #[error("[{}] state write failed: {reason}", codes::STORE_QUERY)]
    Write { reason: String },
    #[error("[{}] no execution {id:?}", codes::EXECUTION_NOT_FOUND)]
    NoExecution { id: String },
    /// Other processes changed the lease at every one of `rounds` compare-and-sets.
    #[error("[{}] the lease of execution {id:?} kept changing ({rounds} attempts to take it)", codes::STORE_QUERY)]
    LeaseContended { id: String, rounds: usize },
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Location { .. } => codes::STORE_LOCATION,
            Self::Open { .. } | Self::Migrate { .. } => codes::STORE_OPEN,
            Self::Auth { .. } => codes::STORE_AUTH,
            Self::Query { .. } | Self::LeaseContended { .. } | Self::Write { .. } => codes::STORE_QUERY,
            Self::Corrupt { .. } => codes::STORE_CORRUPT,
            Self::NoExecution { .. } => codes::EXECUTION_NOT_FOUND,
        }
    }

    /// The user's configuration is at fault (the location, the credentials).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Self::Location { .. } | Self::Auth { .. } | Self::NoExecution { .. })
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

impl NewAttempt<'_> {
    pub(crate) fn write(&self, phase: AttemptPhase) -> Write {
        Write::Intent {
            exec: self.execution_id.to_owned(),
            node: self.node_id.to_owned(),
            attempt: self.attempt,
            phase,
            task_type: self.task_type.to_owned(),
            task_version: self.task_version,
            agent_endpoint: self.agent_endpoint.to_owned(),
            intent: self.intent.to_owned(),
            output_uri: self.output_uri.to_owned(),
        }
    }
}

/// The connection pool of either backend.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle to the state database (cheap to clone).
#[derive(Clone)]
pub struct StateStore {
    pool: Pool,
    /// The location, redacted, for messages.
    shown: String,
    journal: Arc<journal::Journal>,
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore").field("location", &self.shown).finish()
    }
}

impl StateStore {
    /// Opens (creating if missing) `<state_dir>/tern.db` in WAL mode and applies the
    /// embedded migrations.
    pub async fn open(state_dir: &Path) -> Result<Self, StoreError> {
        Self::connect(&StateLocation::Sqlite(state_dir.to_owned())).await
    }

    /// Opens the state at `location` (a SQLite directory or a PostgreSQL database) and
    /// applies that backend's migrations. A PostgreSQL database must exist; its tables
    /// are created by the migrations.
    pub async fn connect(location: &StateLocation) -> Result<Self, StoreError> {
        let pool = match location {
            StateLocation::Sqlite(dir) => Pool::Sqlite(connect::sqlite(dir).await?),
            StateLocation::Postgres(url) => Pool::Postgres(connect::postgres(location, url).await?),
        };
        let journal = Arc::new(journal::Journal::start(pool.clone()));
        Ok(Self { pool, shown: location.to_string(), journal })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool's connections (tests; a dropped store closes them lazily), after
    /// committing the writes still queued.
    pub async fn close(&self) {
        self.journal.flush().await;
        with_pool!(self, p => p.close().await)
    }

    pub(crate) async fn insert_execution(&self, e: &NewExecution<'_>) -> Result<(), StoreError> {
        let t = now();
        let inputs = b64(e.inputs);
        with_pool!(self, p => sqlx::query(
            "INSERT INTO executions (id, workflow_name, workflow_yaml, workflow_ir, inputs, phase, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(e.id)
        .bind(e.workflow_name)
        .bind(e.workflow_yaml)
        .bind(e.workflow_ir)
        .bind(&inputs)
        .bind(ExecutionPhase::Running.as_str())
        .bind(&t)
        .execute(p)
        .await
        .map(|_| ()))
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
        self.submit(Write::Finish {
            exec: id.to_owned(),
            phase,
            failed_node: failed_node.map(str::to_owned),
            error: error.cloned(),
            outputs_uri: outputs_uri.map(str::to_owned),
        })
        .durable()
        .await
    }

    /// Writes the intent of an attempt. Re-recording an existing attempt (recovery
    /// re-issuing CreateTask) keeps the original row.
    #[cfg(test)]
    pub(crate) async fn record_intent(&self, a: &NewAttempt<'_>) -> Result<(), StoreError> {
        self.submit(a.write(AttemptPhase::Queued)).durable().await
    }

    /// Stores the handle CreateTask returned; the attempt is now RUNNING.
    #[cfg(test)]
    pub(crate) async fn record_resource_meta(
        &self,
        exec: &str,
        node: &str,
        attempt: u32,
        meta: &[u8],
    ) -> Result<(), StoreError> {
        let w = Write::ResourceMeta { exec: exec.to_owned(), node: node.to_owned(), attempt, meta: meta.to_vec() };
        self.submit(w).durable().await
    }

    #[cfg(test)]
    pub(crate) async fn set_attempt_phase(
        &self,
        exec: &str,
        node: &str,
        attempt: u32,
        phase: AttemptPhase,
        error: Option<&RecordedError>,
    ) -> Result<(), StoreError> {
        let w = Write::Phase {
            exec: exec.to_owned(),
            node: node.to_owned(),
            attempt,
            phase,
            error: error.cloned(),
            outputs: None,
        };
        self.submit(w).durable().await
    }

    /// Queues a write of an execution's progress (group commit, in order); the ticket
    /// says when it is durable.
    pub(crate) fn submit(&self, w: Write) -> Ticket {
        self.journal.submit(w)
    }

    /// Commits every write queued so far: this process's reads after it see them.
    pub(crate) async fn flush(&self) {
        self.journal.flush().await
    }

    /// Changes when a batch of writes failed; [`StateStore::write_failure`] says for whom.
    pub(crate) fn write_failures(&self) -> tokio::sync::watch::Receiver<u64> {
        self.journal.failures()
    }

    /// Why the writes of `exec` fail, when they do.
    pub(crate) fn write_failure(&self, exec: &str) -> Option<StoreError> {
        self.journal.poisoned(exec).map(|reason| StoreError::Write { reason })
    }

    /// A new driver of `exec`: its writes are tried again.
    pub(crate) fn clear_write_failure(&self, exec: &str) {
        self.journal.clear(exec)
    }

    /// The execution's phase, or `None` when there is no such execution.
    pub(crate) async fn execution_phase(&self, id: &str) -> Result<Option<ExecutionPhase>, StoreError> {
        let phase: Option<String> = with_pool!(self, p => sqlx::query_scalar("SELECT phase FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await
            .map_err(q("get execution phase"))?);
        phase
            .map(|p| {
                ExecutionPhase::parse(&p).ok_or_else(|| StoreError::Corrupt { what: format!("execution phase {p:?}") })
            })
            .transpose()
    }

    /// RUNNING → ABORTING. Returns the phase afterwards (`None`: no such execution).
    pub(crate) async fn request_abort(&self, id: &str) -> Result<Option<ExecutionPhase>, StoreError> {
        with_pool!(self, p => sqlx::query("UPDATE executions SET phase = $2, updated_at = $3 WHERE id = $1 AND phase = $4")
            .bind(id)
            .bind(ExecutionPhase::Aborting.as_str())
            .bind(now())
            .bind(ExecutionPhase::Running.as_str())
            .execute(p)
            .await
            .map_err(q("request abort"))
            .map(|_| ()))?;
        self.execution_phase(id).await
    }

    /// Executions, newest first.
    pub async fn list_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.flush().await;
        let sql = format!("SELECT {} FROM executions ORDER BY created_at DESC, id", records::EXECUTION_COLUMNS);
        with_pool!(self, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await.map_err(q("list executions"))?;
            rows.iter().map(records::execution_from_row).collect()
        })
    }

    /// One execution and all its node attempts (ordered by node, attempt).
    pub async fn get_execution(
        &self,
        id: &str,
    ) -> Result<Option<(ExecutionRecord, Vec<NodeAttemptRecord>)>, StoreError> {
        self.flush().await;
        let exec_sql = format!("SELECT {} FROM executions WHERE id = $1", records::EXECUTION_COLUMNS);
        let attempts_sql = format!(
            "SELECT {} FROM node_attempts WHERE execution_id = $1 ORDER BY created_at, node_id, attempt",
            records::ATTEMPT_COLUMNS
        );
        with_pool!(self, p => {
            let row = sqlx::query(&exec_sql).bind(id).fetch_optional(p).await.map_err(q("get execution"))?;
            let Some(row) = row else { return Ok(None) };
            let exec = records::execution_from_row(&row)?;
            let rows = sqlx::query(&attempts_sql).bind(id).fetch_all(p).await.map_err(q("get node attempts"))?;
            let attempts = rows.iter().map(records::attempt_from_row).collect::<Result<_, _>>()?;
            Ok(Some((exec, attempts)))
        })
    }

    /// The stored workflow YAML and inputs (LiteralMap protobuf) of an execution.
    pub(crate) async fn execution_source(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        const SQL: &str = "SELECT workflow_yaml, inputs FROM executions WHERE id = $1";
        let found = with_pool!(self, p => {
            let row = sqlx::query(SQL).bind(id).fetch_optional(p).await.map_err(q("get execution source"))?;
            row.map(|r| Ok::<_, StoreError>((r.text("workflow_yaml")?, r.text("inputs")?))).transpose()?
        });
        let Some((yaml, inputs)) = found else { return Ok(None) };
        Ok(Some((yaml, unb64(&inputs, "execution inputs")?)))
    }
}
