//! The BigQuery agent: runs a task's SQL as a BigQuery query job, a drop-in for
//! flytekitplugins-bigquery's connector (task type `bigquery_query_job_task`, version 0,
//! asynchronous).
//!
//! # Template conventions (as flytekitplugins-bigquery 1.16.31 writes them)
//!
//! | template field | meaning |
//! |---|---|
//! | `sql.statement` | the query (GoogleSQL); inputs are named parameters `@name` |
//! | `custom.ProjectID` | project the job runs in and is billed to (else `[agents.bigquery] default_project`) |
//! | `custom.Location` | job location, e.g. `EU` (string or null; else `default_location`; else BigQuery picks) |
//! | `custom.Domain` | the registration domain; flytekit puts it in its user agent only (ignored) |
//! | other `custom` keys | a `QueryJobConfig`'s REST form (`useLegacySql`, `maximumBytesBilled`, `labels`, `priority`, `destinationTable`, `writeDisposition`, …), passed on in `configuration.query` (flytekit's Python connector drops them; Flyte's Go plugin applies them) |
//! | `custom.materialize` (Tern) | `"parquet"` / `"none"`: overrides `[agents.bigquery] materialize` for this task |
//! | `interface.outputs.results` | a StructuredDataset: the job's destination table |
//!
//! Inputs become typed query parameters ([`params`] has the table): integer → `INT64`, float →
//! `FLOAT64`, string → `STRING`, boolean → `BOOL`, datetime → `DATETIME` (flytekit's choice; or
//! `TIMESTAMP`), lists → `ARRAY<T>`, none → a typed NULL.
//!
//! # Outputs
//! `results` = `StructuredDataset(uri="bq://<project>:<dataset>.<table>")`, exactly flytekit's
//! literal; with `materialize = "parquet"` the rows are read and written as Parquet under the
//! output prefix instead ([`outputs`]), so a downstream DuckDB node of `tern run` reads them.
//!
//! # Idempotency
//! The job id is `<job_id_prefix><idempotency key>`: 32 hex digits derived from the attempt's
//! `task_execution_id` (execution, node, task, retry attempt). jobs.insert with that id creates the
//! job; a repeated CreateTask (propeller's at-least-once create, a restarted gateway) gets HTTP 409
//! "already exists" and attaches to the existing job with jobs.get: never a second job. A new retry
//! attempt is a new key, so a new job. There is no remaining window: the id is chosen before the
//! first request, and BigQuery refuses a second job with it.
//!
//! # States
//! [`states::JOB_STATES`]: `PENDING` → QUEUED, `RUNNING` → RUNNING, `DONE` → SUCCEEDED, and a `DONE`
//! job with an `errorResult` by its reason (`DONE:invalidQuery` → FAILED, `DONE:backendError` →
//! RETRYABLE_FAILED, `DONE:stopped` → ABORTED, …). Anything else is `RETRYABLE_FAILED` with
//! `TERN-B001` naming it.
//!
//! # Errors
//! [`codes`]: `TERN-J001`…`TERN-J013`. User errors (bad SQL, missing table, permission) are
//! permanent; BigQuery's own failures, throttling and network errors are retryable.
use std::sync::Arc;

use tern_agent_api::prelude::{AgentError, AgentInit, AsyncAgent};

mod agent;
pub mod client;
pub mod codes;
pub mod config;
pub mod outputs;
pub mod params;
pub mod states;
pub mod template;

pub use agent::{BigQueryAgent, JobMeta, LOG_LINK_NAME, TASK_TYPE};
pub use config::{AuthMode, BigQueryConfig, BigQueryFactory, DatetimeParameter, Materialize};

/// The agent with `config` (for tests and embedding).
pub fn agent_with(config: BigQueryConfig, init: &AgentInit) -> Result<Arc<dyn AsyncAgent>, AgentError> {
    config.validate()?;
    Ok(Arc::new(BigQueryAgent::new(config, init)?))
}
