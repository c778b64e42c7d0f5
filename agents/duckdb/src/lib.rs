//! The DuckDB agent: runs a task's SQL on an embedded, in-memory DuckDB (1.5.6).
//!
//! Task type `duckdb` (version 0), asynchronous: `CreateTask` starts the query in the
//! agent's process and returns at once; `GetTask` reports it; `DeleteTask` interrupts it.
//!
//! # Writing a DuckDB task
//!
//! The SQL is the template's `sql.statement` (Flyte's `TaskTemplate.sql`). Each task
//! attempt gets a fresh, empty in-memory database, in UTC.
//!
//! **Scalar inputs are query parameters.** An input named `min_amount` is `$min_amount`
//! in the SQL. Values are bound by DuckDB, never pasted into the text, so a string input
//! is always data (`'1; DROP TABLE t'` stays that string). Types:
//!
//! | input | DuckDB value |
//! |---|---|
//! | integer | `BIGINT` |
//! | float | `DOUBLE` |
//! | string | `VARCHAR` |
//! | boolean | `BOOLEAN` |
//! | datetime | `TIMESTAMP` (UTC, microseconds) |
//! | duration | `INTERVAL` |
//! | none (or an empty optional) | `NULL` |
//!
//! Cast where DuckDB cannot infer the type you mean, e.g. `$day::DATE`. Inputs the SQL
//! does not use are ignored; a `$name` with no input of that name fails the task
//! (`TERN-Q003`), and so do positional parameters (`?`, `$1`).
//!
//! **Dataframe inputs are views.** A dataframe input (a parquet StructuredDataset, such
//! as another task's output) named `orders` is a view: `SELECT * FROM orders`.
//!
//! **Several statements** separated by `;` run in order on the same database (e.g.
//! `CREATE TABLE ... ; SELECT ...`); each may use parameters.
//!
//! **Outputs** come from the *last* statement's result:
//! - an output of dataframe type (e.g. `results`) receives the whole result set, written as
//!   parquet to `<output_prefix>/<name>/00000`, with its columns typed from DuckDB's
//!   (integers → integer, float/double/decimal → float, varchar → string, boolean → boolean,
//!   timestamp/date → datetime, interval → duration, anything else → string);
//! - an output of scalar type (e.g. `total: integer`) takes the column of the same name from
//!   a result that must have exactly one row (`SELECT count(*) AS total FROM orders`).
//!   Integers may fill a float output; a NULL fills only a none or optional output.
//!
//! A task without outputs just runs its statements.
//!
//! **Where dataframes live.** Local ones are read and written in place; ones in a remote
//! data store (`s3://…`, as behind propeller) are downloaded through the data store into the
//! job's staging directory (`staging_directory`) before the query, and dataframe outputs
//! under a remote output prefix are written there and uploaded after it (`staging.rs`).
//!
//! **Files.** SQL may read and write only its dataframe inputs and its dataframe outputs
//! (plus directories the operator allows, see [`DuckDbConfig`]); DuckDB extensions other than
//! the built-in ones (parquet, json, icu) cannot be installed or loaded.
//!
//! # Errors
//! See [`codes`]. SQL that DuckDB rejects or fails fails the task with `TERN-Q001`
//! and DuckDB's own message (`Parser Error: syntax error at or near "SELEC"`).
use std::sync::Arc;

use tern_agent_api::prelude::AsyncAgent;

mod agent;
pub mod codes;
pub mod config;
mod output;
mod params;
mod run;
mod sql;
mod staging;
mod views;

pub use agent::{DuckDbAgent, JobMeta, TASK_TYPE};
pub use config::{DuckDbConfig, DuckDbFactory};

/// The agent with default settings (SQL confined to the task's own data).
pub fn agent() -> Arc<dyn AsyncAgent> {
    Arc::new(DuckDbAgent::default())
}

/// The agent with operator settings.
pub fn agent_with(config: DuckDbConfig) -> Arc<dyn AsyncAgent> {
    Arc::new(DuckDbAgent::new(config))
}
