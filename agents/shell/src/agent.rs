//! The `shell` async agent: create starts the command in the background and returns at
//! once; get, delete and logs follow the job by its key.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use prost::Message;
use serde::{Deserialize, Serialize};
use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::prelude::*;
use tern_agent_api::submission_record::SubmissionRecord;

use crate::codes;
use crate::config::ShellSettings;
use crate::inputs::input_text;
use crate::job::Job;
use crate::logs::{from_store, LogBuffer};
use crate::scratch::Scratch;
use crate::spec::{effective_timeout, Custom, ShellSpec};
use crate::template::Vars;

pub const TASK_TYPE: &str = "shell";

/// The attempt's submission record, in its output prefix.
pub const RECORD_FILE: &str = "shell-job.json";

/// The handle. The output prefix is kept so get/logs work even when the caller does
/// not send it (DeleteTask and GetTaskLogs carry none).
#[derive(Debug, Serialize, Deserialize)]
struct ShellHandle {
    key: String,
    output_prefix: String,
}

pub struct ShellAgent {
    config: ShellSettings,
    jobs: LocalJobs,
    /// Live log buffers by job key. Weak: a buffer lives exactly as long as its job.
    logs: Mutex<HashMap<String, Weak<LogBuffer>>>,
}

impl ShellAgent {
    pub fn new(config: ShellSettings) -> Self {
        Self::with_admission(config, Admission::unlimited())
    }

    /// Commands beyond `admission`'s limit wait QUEUED (or are refused).
    pub fn with_admission(config: ShellSettings, admission: Admission) -> Self {
        Self { config, jobs: LocalJobs::with_admission(admission), logs: Mutex::new(HashMap::new()) }
    }

    fn logs_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<LogBuffer>>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live_logs(&self, key: &str) -> Option<Arc<LogBuffer>> {
        self.logs_lock().get(key).and_then(Weak::upgrade).filter(|b| !b.is_finished())
    }

    /// Everything that can be wrong with the template is found here, before the job starts.
    fn plan(&self, ctx: &TaskContext, task: &TaskRequest, logs: Arc<LogBuffer>) -> Result<Job, AgentError> {
        let template = &task.template;
        let custom = Custom::parse(template.custom.as_ref())?;
        let timeout = effective_timeout(custom.timeout, template.metadata.as_ref())?;
        let store = ctx.data_store().clone();
        let mut vars = Vars {
            inputs: task.inputs.literals.iter().map(|(k, v)| (k.clone(), input_text(v, store.as_ref()))).collect(),
            output_prefix: ctx.output_prefix.clone(),
            workdir: None,
        };
        let scratch = Scratch::create(&self.config.scratch_root)?;
        let workdir = match &custom.workdir {
            Some(dir) => dir.clone(),
            None => scratch.fresh_workdir(),
        };
        vars.workdir = Some(workdir.display().to_string());
        let spec = ShellSpec::render(template, &custom, &vars)?;
        let mut env = self.config.inherited_env.clone();
        env.retain(|(k, _)| !spec.env.iter().any(|(t, _)| t == k));
        env.extend(spec.env.iter().cloned());
        Ok(Job {
            spec,
            scratch,
            workdir,
            env,
            timeout,
            output_prefix: ctx.output_prefix.clone(),
            store,
            interface: template.interface.clone(),
            logs,
        })
    }
}

#[async_trait]
impl AsyncAgent for ShellAgent {
    fn name(&self) -> &str {
        TASK_TYPE
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        if ctx.output_prefix.is_empty() {
            return Err(AgentError::invalid_argument(
                codes::BAD_TEMPLATE,
                "a shell task needs an output_prefix (its logs and outputs are stored there)",
            ));
        }
        let key = match &ctx.idempotency_key {
            Some(k) => k.as_str().to_owned(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let meta = ResourceMeta::encode(&ShellHandle { key: key.clone(), output_prefix: ctx.output_prefix.clone() })?;
        if self.jobs.status(&key).is_some() {
            return Ok(meta);
        }
        // Started by an earlier gateway process (or an embedded run that crashed): that job ran, or is gone with
        // its process; `get` reports its stored outputs or "job lost". Never a second run of one attempt.
        let record = SubmissionRecord::for_attempt(ctx, RECORD_FILE);
        if let Some(record) = &record {
            // Only this attempt's record counts (an output prefix reused by another attempt holds another key).
            let recorded = record.read(ctx).await.filter(|m| m.decode::<ShellHandle>().is_ok_and(|h| h.key == key));
            if let Some(recorded) = recorded {
                return Ok(recorded);
            }
        }
        let logs = Arc::new(LogBuffer::new(self.config.log_lines_in_memory));
        let job = self.plan(ctx, &task, logs.clone())?;
        // Recorded before it starts: a crash in between leaves a job reported lost, never one run twice.
        if let Some(record) = &record {
            record.write(ctx, &meta).await;
        }
        let spawned = {
            let mut live = self.logs_lock();
            live.retain(|_, b| b.strong_count() > 0);
            // Checked again under the lock: a concurrent create with this key may have won.
            self.jobs.spawn(&key, job.run()).map(|new| {
                if new {
                    live.insert(key, Arc::downgrade(&logs));
                }
            })
        };
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
        let handle: ShellHandle = meta.decode()?;
        if let Some(status) = self.jobs.status(&handle.key) {
            return Ok(status);
        }
        // Not a job of this process (the gateway restarted, or it was forgotten): its
        // stored outputs are the only trace of a success.
        let prefix = if handle.output_prefix.is_empty() { &ctx.output_prefix } else { &handle.output_prefix };
        let uri = join_uri(prefix, "outputs.pb");
        match ctx.data_store().read(&uri).await {
            Ok(bytes) => {
                let outputs = core::LiteralMap::decode(bytes).map_err(|e| {
                    AgentError::internal(codes::JOB_LOST, format!("the stored outputs at {uri} are not a LiteralMap: {e}"))
                })?;
                Ok(TaskStatus::succeeded(Some(outputs)))
            }
            Err(DataStoreError::NotFound { .. }) => Ok(TaskStatus::failed(AgentError::unavailable(
                codes::JOB_LOST,
                "job lost: the agent process restarted",
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle: ShellHandle = meta.decode()?;
        // Dropping the job's future kills its process group.
        self.jobs.cancel(&handle.key);
        Ok(())
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, _token: &str) -> Result<LogPage, AgentError> {
        let handle: ShellHandle = meta.decode()?;
        let lines = match self.live_logs(&handle.key) {
            Some(buffer) => buffer.tail(lines),
            None => from_store(ctx.data_store().as_ref(), &handle.output_prefix, lines).await?,
        };
        Ok(LogPage { lines, next_token: String::new() })
    }
}
