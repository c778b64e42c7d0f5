//! One task run on a fresh in-memory DuckDB (blocking: call it from a blocking thread).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use duckdb::{Connection, InterruptHandle};
use tern_agent_api::prelude::{core, AgentError, DataStore};

use crate::codes::{self, bad_input, bad_output};
use crate::output::{self, OutputKind, OutputSpec, RESULT_TABLE};
use crate::params::{self, Param};
use crate::sql::{literal_list, quote_ident, quote_literal};
use crate::staging::Upload;
use crate::views::{self, Grant, View};

pub use crate::config::DuckDbConfig;

/// Everything one run needs; owned so it can move to a blocking thread.
pub struct Job {
    pub statements: Vec<String>,
    pub inputs: core::LiteralMap,
    pub interface: Option<core::TypedInterface>,
    pub output_prefix: String,
    pub store: Arc<dyn DataStore>,
    pub config: Arc<DuckDbConfig>,
    /// The job's staging directory (remote dataframes; see `staging.rs`).
    pub staging: PathBuf,
    /// The local directory of each dataframe input downloaded there.
    pub staged_inputs: HashMap<String, PathBuf>,
}

/// Cancellation shared between `delete` and the running job.
#[derive(Default)]
pub struct Cancel {
    cancelled: AtomicBool,
    handle: Mutex<Option<Arc<InterruptHandle>>>,
}

impl Cancel {
    /// Marks the job cancelled and interrupts the query running now, if any.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            h.interrupt();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn attach(&self, handle: Arc<InterruptHandle>) {
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    fn check(&self) -> Result<(), AgentError> {
        if self.is_cancelled() {
            return Err(codes::sql_error("cancelled by DeleteTask"));
        }
        Ok(())
    }
}

/// Runs the job's statements and returns its outputs (not yet checked against the interface)
/// and the files to upload for its remote dataframe outputs.
pub fn run(job: &Job, cancel: &Cancel) -> Result<(core::LiteralMap, Vec<Upload>), AgentError> {
    let params = params::from_inputs(&job.inputs);
    let views = views::from_inputs(&job.inputs, job.store.as_ref(), &job.staged_inputs)?;
    let outputs = output::specs(job.interface.as_ref(), &job.output_prefix, job.store.as_ref(), &job.staging)?;
    let conn = Connection::open_in_memory()
        .map_err(|e| codes::engine(format!("cannot start DuckDB: {}", codes::duckdb_message(&e))))?;
    cancel.attach(conn.interrupt_handle());
    cancel.check()?;
    // The TimeZone setting comes with the ICU extension, which a `bundled` build lacks.
    let _ = conn.execute_batch("SET TimeZone = 'UTC'");
    conn.execute_batch(&settings_sql(&job.config, &views, &outputs))
        .map_err(|e| codes::engine(format!("cannot configure DuckDB: {}", codes::duckdb_message(&e))))?;
    for view in &views {
        conn.execute_batch(&view.create_sql()).map_err(|e| {
            bad_input(format!("dataframe input {:?} cannot be read: {}", view.name, codes::duckdb_message(&e)))
        })?;
    }
    let n = job.statements.len();
    for (i, sql) in job.statements.iter().enumerate() {
        cancel.check()?;
        let context = (n > 1).then(|| format!("statement {} of {n}", i + 1));
        let materialize = i + 1 == n && !outputs.is_empty();
        execute(&conn, sql, &params, materialize, context.as_deref())?;
    }
    cancel.check()?;
    if outputs.is_empty() {
        return Ok((core::LiteralMap::default(), Vec::new()));
    }
    Ok((output::collect(&conn, &outputs)?, output::uploads(&outputs)))
}

/// Session settings: the file-access sandbox, no extension downloads, limits.
fn settings_sql(config: &DuckDbConfig, views: &[View], outputs: &[OutputSpec]) -> String {
    let mut sql = Vec::new();
    if let Some(dir) = &config.temp_directory {
        sql.push(format!("SET temp_directory = {}", quote_literal(&dir.display().to_string())));
    }
    if let Some(t) = config.threads {
        sql.push(format!("SET threads = {t}"));
    }
    if let Some(m) = &config.memory_limit {
        sql.push(format!("SET memory_limit = {}", quote_literal(m)));
    }
    sql.push("SET autoinstall_known_extensions = false".into());
    sql.push("SET autoload_known_extensions = false".into());
    if !config.unrestricted_file_access {
        let mut dirs: Vec<String> = config
            .allowed_directories
            .iter()
            .map(|d| format!("{}/", d.display().to_string().trim_end_matches('/')))
            .collect();
        let mut files = Vec::new();
        for v in views {
            match &v.grant {
                Grant::Directory(d) => dirs.push(d.clone()),
                Grant::File(f) => files.push(f.clone()),
            }
        }
        for o in outputs {
            if let OutputKind::Dataset { dir, .. } = &o.kind {
                dirs.push(format!("{}/", dir.display()));
            }
        }
        sql.push(format!("SET allowed_directories = {}", literal_list(dirs.iter().map(String::as_str))));
        sql.push(format!("SET allowed_paths = {}", literal_list(files.iter().map(String::as_str))));
        // Cannot be turned back on by the task's SQL while the database runs.
        sql.push("SET enable_external_access = false".into());
    }
    sql.join(";\n")
}

/// Prepares, binds and runs one statement; with `materialize`, its result goes into
/// [`RESULT_TABLE`].
fn execute(
    conn: &Connection,
    sql: &str,
    params: &HashMap<String, Param>,
    materialize: bool,
    context: Option<&str>,
) -> Result<(), AgentError> {
    // Prepare the user's own text first so that errors point into it.
    let mut stmt = conn.prepare(sql).map_err(|e| codes::from_duckdb(&e, context))?;
    params::bind(&mut stmt, params).map_err(|e| with_context(e, context))?;
    if materialize {
        drop(stmt);
        let wrapped = format!("CREATE TEMP TABLE {} AS\n{sql}", quote_ident(RESULT_TABLE));
        stmt = conn.prepare(&wrapped).map_err(|e| {
            bad_output(format!(
                "the task declares outputs, so the last statement must be a query returning rows \
                 (SELECT, FROM, WITH, VALUES …); DuckDB says: {}",
                codes::duckdb_message(&e)
            ))
        })?;
        params::bind(&mut stmt, params).map_err(|e| with_context(e, context))?;
    }
    stmt.raw_execute().map_err(|e| codes::from_duckdb(&e, context))?;
    Ok(())
}

fn with_context(e: AgentError, context: Option<&str>) -> AgentError {
    match context {
        Some(c) => e.context(c),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tern_agent_api::prelude::LocalDataStore;

    fn job(sql: &str) -> Job {
        Job {
            statements: crate::sql::split_statements(sql),
            inputs: Default::default(),
            interface: None,
            output_prefix: "out".into(),
            store: LocalDataStore::shared(std::env::temp_dir()),
            config: Default::default(),
            staging: std::env::temp_dir().join("tern-duckdb-unit-test"),
            staged_inputs: Default::default(),
        }
    }

    #[test]
    fn cancel_interrupts_a_running_query() {
        let cancel = Arc::new(Cancel::default());
        let c = cancel.clone();
        let t = std::thread::spawn(move || {
            run(&job("SELECT count(*) FROM range(100000) a, range(1000000) b WHERE a.range + b.range = -1"), &c)
        });
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        cancel.cancel();
        let result = t.join().expect("job thread");
        assert!(start.elapsed() < Duration::from_secs(10), "interrupt took {:?}", start.elapsed());
        let err = result.unwrap_err();
        assert!(err.message.to_lowercase().contains("interrupt"), "{err}");
    }

    #[test]
    fn sandbox_blocks_other_files() {
        let err = run(&job("SELECT * FROM read_text('/etc/hostname')"), &Cancel::default()).unwrap_err();
        assert_eq!(err.code, codes::SQL_ERROR);
        assert!(err.message.contains("Permission Error"), "{err}");
    }
}
