//! [`DuckDbAgent`]: the async agent for task type `duckdb`.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prost::Message;
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;
use tern_agent_api::submission_record::SubmissionRecord;

use crate::codes;
use crate::run::{self, Cancel, DuckDbConfig, Job};
use crate::sql::split_statements;
use crate::staging::{self, Staging};

/// Task type served (version 0).
pub const TASK_TYPE: &str = "duckdb";
const OUTPUTS_FILE: &str = "outputs.pb";
/// The attempt's submission record, in its output prefix.
pub const RECORD_FILE: &str = "duckdb-job.json";

/// The handle `create` returns (`{"v":1,"job":…,"output_prefix":…}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobMeta {
    pub job: String,
    pub output_prefix: String,
}

pub struct DuckDbAgent {
    config: Arc<DuckDbConfig>,
    jobs: LocalJobs,
    cancels: Arc<Mutex<HashMap<String, Arc<Cancel>>>>,
}

impl DuckDbAgent {
    /// No limit on queries at once; `config` as given (no host defaults applied).
    pub fn new(config: DuckDbConfig) -> Self {
        Self::with_admission(config, Admission::unlimited())
    }

    /// Queries beyond `admission`'s limit wait QUEUED (or are refused).
    pub fn with_admission(config: DuckDbConfig, admission: Admission) -> Self {
        Self { config: Arc::new(config), jobs: LocalJobs::with_admission(admission), cancels: Default::default() }
    }
}

impl Default for DuckDbAgent {
    fn default() -> Self {
        Self::new(DuckDbConfig::default())
    }
}

/// Removes a job's cancel entry when the job ends or is dropped unstarted/aborted.
struct CancelEntry {
    table: Arc<Mutex<HashMap<String, Arc<Cancel>>>>,
    key: String,
    cancel: Arc<Cancel>,
}

impl Drop for CancelEntry {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.cancel)) {
            table.remove(&self.key);
        }
    }
}

fn sql_of(template: &core::TaskTemplate) -> Option<&str> {
    match &template.target {
        Some(core::task_template::Target::Sql(sql)) => Some(sql.statement.as_str()),
        _ => None,
    }
}

async fn stored_outputs(store: &Arc<dyn DataStore>, prefix: &str) -> Result<Option<core::LiteralMap>, AgentError> {
    let uri = join_uri(prefix, OUTPUTS_FILE);
    if !store.exists(&uri).await? {
        return Ok(None);
    }
    let bytes = store.read(&uri).await?;
    core::LiteralMap::decode(bytes)
        .map(Some)
        .map_err(|e| AgentError::internal(codes::ENGINE, format!("{uri} is not a LiteralMap: {e}")))
}

/// The job body: stage remote inputs, run on a blocking thread, check the outputs, upload
/// remote ones, store `outputs.pb`. The staging directory goes when the job ends (or is aborted).
async fn execute(mut job: Job, cancel: Arc<Cancel>) -> TaskStatus {
    // Agents read no environment: without the host's default (tests), the process's temp dir.
    let base = job.config.staging_directory.clone().unwrap_or_else(std::env::temp_dir);
    let staging = Staging::under(&base);
    job.staging = staging.dir().to_owned();
    job.staged_inputs = match staging::download_inputs(&job.inputs, job.store.as_ref(), &staging).await {
        Ok(staged) => staged,
        Err(e) => return TaskStatus::failed(e),
    };
    let store = job.store.clone();
    let prefix = job.output_prefix.clone();
    let interface = job.interface.clone();
    let ran = tokio::task::spawn_blocking(move || run::run(&job, &cancel)).await;
    let (outputs, uploads) = match ran {
        Ok(Ok(ran)) => ran,
        Ok(Err(e)) => return TaskStatus::failed(e),
        Err(e) => return TaskStatus::failed(codes::engine(format!("the DuckDB worker thread died: {e}"))),
    };
    if let Err(e) = check_outputs(interface.as_ref(), &outputs) {
        return TaskStatus::failed(e);
    }
    if let Err(e) = staging::upload_outputs(store.as_ref(), &uploads).await {
        return TaskStatus::failed(e);
    }
    drop(staging);
    if let Err(e) = store.write(&join_uri(&prefix, OUTPUTS_FILE), outputs.encode_to_vec().into()).await {
        return TaskStatus::failed(AgentError::from(e).context("cannot store outputs"));
    }
    TaskStatus::succeeded(Some(outputs))
}

#[async_trait]
impl AsyncAgent for DuckDbAgent {
    fn name(&self) -> &str {
        "duckdb"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let statements = split_statements(sql_of(&task.template).unwrap_or_default());
        if statements.is_empty() {
            return Err(AgentError::invalid_argument(
                codes::NO_SQL,
                "the task template has no SQL: set TaskTemplate.sql.statement to the query to run",
            ));
        }
        if ctx.output_prefix.is_empty() {
            return Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::INVALID_REQUEST,
                "CreateTaskRequest.output_prefix is required",
            ));
        }
        let key = match &ctx.idempotency_key {
            Some(k) => k.as_str().to_owned(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let meta = ResourceMeta::encode(&JobMeta { job: key.clone(), output_prefix: ctx.output_prefix.clone() })?;
        if self.jobs.status(&key).is_some() {
            return Ok(meta);
        }
        let store = ctx.data_store().clone();
        // Same attempt created again after a restart, and it had already finished: keep its outputs.
        if ctx.idempotency_key.is_some() {
            if let Some(outputs) = stored_outputs(&store, &ctx.output_prefix).await? {
                self.jobs.spawn(&key, async move { TaskStatus::succeeded(Some(outputs)) })?;
                return Ok(meta);
            }
        }
        // Started by an earlier gateway process (or an embedded run that crashed) and not finished: the query
        // is gone with that process; `get` reports "job lost" and the engine's next attempt runs it anew.
        // Never a second run of one attempt.
        let record = SubmissionRecord::for_attempt(ctx, RECORD_FILE);
        if let Some(record) = &record {
            // Only this attempt's record counts (an output prefix reused by another attempt holds another key).
            let recorded = record.read(ctx).await.filter(|m| m.decode::<JobMeta>().is_ok_and(|j| j.job == key));
            if let Some(recorded) = recorded {
                return Ok(recorded);
            }
            // Recorded before it starts: a crash in between leaves a job reported lost, never one run twice.
            record.write(ctx, &meta).await;
        }
        let cancel = Arc::new(Cancel::default());
        let job = Job {
            statements,
            inputs: task.inputs,
            interface: task.template.interface,
            output_prefix: ctx.output_prefix.clone(),
            store,
            config: self.config.clone(),
            staging: PathBuf::new(),
            staged_inputs: Default::default(),
        };
        {
            let mut cancels = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
            if cancels.contains_key(&key) {
                return Ok(meta);
            }
            cancels.insert(key.clone(), cancel.clone());
        }
        // If a job with this key exists after all, `spawn` drops this future unstarted
        // and the entry removes itself.
        let entry = CancelEntry { table: self.cancels.clone(), key: key.clone(), cancel: cancel.clone() };
        let spawned = self.jobs.spawn(&key, async move {
            let _entry = entry;
            execute(job, cancel).await
        });
        if let Err(e) = spawned {
            // Refused (no slot): nothing started, so a repeated create must start it.
            if let Some(record) = &record {
                record.clear(ctx).await;
            }
            return Err(e);
        }
        Ok(meta)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let meta: JobMeta = meta.decode()?;
        if let Some(status) = self.jobs.status(&meta.job) {
            return Ok(status);
        }
        Ok(match stored_outputs(ctx.data_store(), &meta.output_prefix).await? {
            Some(outputs) => TaskStatus::succeeded(Some(outputs)),
            None => TaskStatus::failed(AgentError::unavailable(
                codes::JOB_LOST,
                "job lost: the agent process restarted before the query finished; retry the task",
            )),
        })
    }

    async fn delete(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let meta: JobMeta = meta.decode()?;
        let cancel = self.cancels.lock().unwrap_or_else(|p| p.into_inner()).remove(&meta.job);
        if let Some(c) = cancel {
            c.cancel();
        }
        self.jobs.cancel(&meta.job);
        Ok(())
    }
}
