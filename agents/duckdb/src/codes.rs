//! Error codes of the DuckDB agent (`TERN-Q0xx`), and their classification.
use tern_agent_api::prelude::AgentError;

/// DuckDB rejected or failed the SQL (parser, binder, catalog, conversion, runtime).
/// User error, permanent.
pub const SQL_ERROR: &str = "TERN-Q001";
/// The task template carries no SQL statement. User error, permanent (`INVALID_ARGUMENT` on create).
pub const NO_SQL: &str = "TERN-Q002";
/// The SQL uses a parameter no input provides, or a positional parameter (`?`, `$1`).
/// User error, permanent.
pub const MISSING_PARAMETER: &str = "TERN-Q003";
/// An input cannot be used: a literal kind that cannot be a parameter, a dataframe that is
/// not parquet, has no URI or holds no files. User error, permanent.
pub const BAD_INPUT: &str = "TERN-Q004";
/// The data store cannot reach a dataframe input or the output prefix (a scheme it does
/// not serve). User error, permanent.
pub const UNSUPPORTED_LOCATION: &str = "TERN-Q005";
/// A declared output cannot be made from the result: no such column, not exactly one
/// row, NULL, a type mismatch, or the last statement returns no rows. User error, permanent.
pub const BAD_OUTPUT: &str = "TERN-Q006";
/// The job is not known to this process and left no outputs (the agent restarted).
/// System error, retryable.
pub const JOB_LOST: &str = "TERN-Q007";
/// DuckDB could not run the job: the engine failed to start, ran out of memory, the
/// worker thread died, or writing results failed. System error, retryable.
pub const ENGINE: &str = "TERN-Q008";

pub(crate) fn sql_error(message: impl Into<String>) -> AgentError {
    AgentError::user(SQL_ERROR, message)
}

pub(crate) fn bad_input(message: impl Into<String>) -> AgentError {
    AgentError::user(BAD_INPUT, message)
}

pub(crate) fn bad_output(message: impl Into<String>) -> AgentError {
    AgentError::user(BAD_OUTPUT, message)
}

pub(crate) fn engine(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(ENGINE, message)
}

/// DuckDB's own message for an error (the text users see in the DuckDB CLI).
pub(crate) fn duckdb_message(e: &duckdb::Error) -> String {
    match e {
        duckdb::Error::DuckDBFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    }
}

/// An error DuckDB raised while running user SQL: the user's, except resource exhaustion.
pub(crate) fn from_duckdb(e: &duckdb::Error, context: Option<&str>) -> AgentError {
    let msg = duckdb_message(e);
    let msg = match context {
        Some(c) => format!("{c}: {msg}"),
        None => msg,
    };
    if msg.contains("Out of Memory Error") {
        engine(msg)
    } else if msg.contains("Permission Error") {
        sql_error(format!(
            "{msg}\n(a DuckDB task may read only its dataframe inputs and write only its dataframe outputs, \
             unless the operator allows more directories)"
        ))
    } else {
        sql_error(msg)
    }
}
