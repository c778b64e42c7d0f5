//! The Spark async agent: submit (idempotently), poll, kill, read the driver's logs.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::json_to_struct;

use crate::config::{SparkConfig, SparkMode};
use crate::local;
use crate::standalone::{create_body, first_line, state_name, valid_submission_id, RestClient};
use crate::states::DRIVER_STATES;
use crate::template::SparkTask;

/// The submission record in the attempt's output prefix (see [`SubmissionRecord`]).
pub const RECORD_FILE: &str = "spark_submission.json";
/// Prefix of application names (`tern-<idempotency key>`).
pub const APP_NAME_PREFIX: &str = "tern-";
/// The name of the master UI log link.
pub const MASTER_LINK_NAME: &str = "Spark Master";

/// The handle (`resource_meta`): which driver or local job. Never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Handle {
    /// A driver submitted to the standalone master.
    Standalone {
        submission_id: String,
        #[serde(default)]
        app_name: String,
    },
    /// A `spark-submit` process of this host.
    Local { job: String, pid: u32 },
}

pub struct SparkAgent {
    config: Arc<SparkConfig>,
    rest: RestClient,
    /// Local mode's job directories.
    work_dir: PathBuf,
    /// The gateway's environment (for `SPARK_HOME`).
    host_env: Arc<std::collections::BTreeMap<String, String>>,
    /// Creates of one attempt are serialized in this process.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for SparkAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparkAgent").field("mode", &self.config.mode).field("rest", &self.rest.base()).finish()
    }
}

impl SparkAgent {
    pub fn new(config: SparkConfig, init: &AgentInit) -> Self {
        let work_dir = local::work_dir(&config, &init.host.temp_dir);
        let config = Arc::new(config);
        Self { rest: RestClient::new(config.clone()), config, work_dir, host_env: init.host.env.clone(), locks: Mutex::default() }
    }

    pub fn config(&self) -> &SparkConfig {
        &self.config
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(key.to_owned()).or_default().clone()
    }

    /// `tern-<key>`; without an execution identity, a fresh `tern-adhoc-<nanos>`.
    fn app_name(ctx: &TaskContext) -> String {
        match &ctx.idempotency_key {
            Some(k) => format!("{APP_NAME_PREFIX}{}", k.as_str()),
            None => {
                let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
                format!("{APP_NAME_PREFIX}adhoc-{nanos}")
            }
        }
    }

    fn open(meta: &ResourceMeta) -> Result<Handle, AgentError> {
        let handle: Handle = meta.decode()?;
        let ok = match &handle {
            Handle::Standalone { submission_id, .. } => valid_submission_id(submission_id),
            Handle::Local { job, .. } => local::valid_job_name(job),
        };
        if !ok {
            return Err(AgentError::invalid_argument(tern_agent_api::error::codes::BAD_RESOURCE_META, "resource_meta does not name a Spark driver or job this agent made"));
        }
        Ok(handle)
    }

    async fn submit(&self, ctx: &TaskContext, task: &SparkTask, app_name: &str) -> Result<Handle, AgentError> {
        let key = ctx.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
        match self.config.mode {
            Some(SparkMode::Standalone) => {
                let body = create_body(task, &self.config, app_name, key.as_deref());
                let id = self.rest.create(ctx, &body).await?;
                tracing::info!(submission_id = %id, app_name, "Spark driver submitted to the standalone master");
                Ok(Handle::Standalone { submission_id: id, app_name: app_name.to_owned() })
            }
            Some(SparkMode::Local) => {
                let dir = self.work_dir.join(app_name);
                let args = local::submit_args(task, &self.config, app_name, key.as_deref());
                let program = local::spark_submit(&self.config, &self.host_env);
                let pid = local::start(&dir, &program, &args, task, &self.config)?;
                let handle = Handle::Local { job: app_name.to_owned(), pid };
                // The job directory is this mode's own record: a repeated create finds it.
                let meta = ResourceMeta::encode(&handle)?;
                let _ = std::fs::write(dir.join("handle"), meta.as_bytes());
                tracing::info!(job = app_name, pid, "spark-submit started");
                Ok(handle)
            }
            None => Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::BAD_AGENT_CONFIG,
                "[agents.spark] sets no mode (standalone or local)",
            )),
        }
    }

    /// A job an earlier create of this attempt started (local mode: its directory).
    fn local_record(&self, app_name: &str) -> Option<ResourceMeta> {
        let bytes = std::fs::read(self.work_dir.join(app_name).join("handle")).ok()?;
        let meta = ResourceMeta::from_bytes(bytes);
        Self::open(&meta).ok().map(|_| meta)
    }

    fn master_link(&self) -> Vec<core::TaskLog> {
        match &self.config.ui_url {
            Some(ui) => vec![core::TaskLog { uri: ui.trim_end_matches('/').to_owned(), name: MASTER_LINK_NAME.into(), ..Default::default() }],
            None => Vec::new(),
        }
    }

    fn log_files(&self, handle: &Handle) -> Option<PathBuf> {
        match handle {
            Handle::Standalone { submission_id, .. } => self.config.worker_work_dir.as_ref().map(|d| d.join(submission_id)),
            Handle::Local { job, .. } => Some(self.work_dir.join(job)),
        }
    }
}

#[async_trait]
impl AsyncAgent for SparkAgent {
    fn name(&self) -> &str {
        "spark"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.config.served_task_types().into_iter().map(|t| TaskCategory::new(t, 0)).collect()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let mut spec = SparkTask::from_template(&task.template)?;
        if let Some(file) = self.config.main_application_file.as_deref().filter(|f| !f.trim().is_empty()) {
            spec.app_file = crate::template::local_path(file.trim());
        }
        let app_name = Self::app_name(ctx);
        let lock = self.lock_for(&app_name);
        let _one_at_a_time = lock.lock().await;
        let record = SubmissionRecord::for_attempt(ctx, RECORD_FILE);
        if let Some(record) = &record {
            if let Some(meta) = record.read(ctx).await {
                if Self::open(&meta).is_ok() {
                    tracing::info!(uri = record.uri(), "this attempt's Spark job was already submitted; not submitting again");
                    return Ok(meta);
                }
            }
        }
        if self.config.mode == Some(SparkMode::Local) && ctx.idempotency_key.is_some() {
            if let Some(meta) = self.local_record(&app_name) {
                return Ok(meta);
            }
        }
        let handle = self.submit(ctx, &spec, &app_name).await?;
        let meta = ResourceMeta::encode(&handle)?;
        if let Some(record) = &record {
            record.write(ctx, &meta).await;
        }
        Ok(meta)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle = Self::open(meta)?;
        let mut info = serde_json::Map::new();
        let status = match &handle {
            Handle::Standalone { submission_id, app_name } => {
                let r = self.rest.status(ctx, submission_id).await?;
                let name = state_name(&r);
                let detail = r.message.as_deref().map(first_line).unwrap_or_default();
                info.insert("submission_id".into(), submission_id.clone().into());
                info.insert("app_name".into(), app_name.clone().into());
                info.insert("state".into(), name.clone().into());
                if let Some(w) = &r.worker_id {
                    info.insert("worker_id".into(), w.clone().into());
                }
                if let Some(w) = &r.worker_host_port {
                    info.insert("worker".into(), w.clone().into());
                }
                DRIVER_STATES.classify_with(&name, &detail)
            }
            Handle::Local { job, pid } => {
                let dir = self.work_dir.join(job);
                let (name, detail) = local::state(&dir, *pid);
                info.insert("job".into(), job.clone().into());
                info.insert("pid".into(), (*pid).into());
                info.insert("state".into(), name.clone().into());
                DRIVER_STATES.classify_with(&name, &detail)
            }
        };
        let mut status = status.with_log_links(self.master_link());
        status.custom_info = Some(json_to_struct(&info));
        Ok(status)
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        match Self::open(meta)? {
            Handle::Standalone { submission_id, .. } => {
                let r = self.rest.kill(ctx, &submission_id).await?;
                tracing::info!(%submission_id, success = ?r.success, message = r.message.as_deref().unwrap_or(""), "Spark driver kill requested");
                Ok(())
            }
            Handle::Local { job, pid } => local::kill(&self.work_dir.join(&job), pid),
        }
    }

    async fn logs(&self, _ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        let handle = Self::open(meta)?;
        let Some(dir) = self.log_files(&handle) else {
            return Err(AgentError::new(
                tern_agent_api::error::codes::UNIMPLEMENTED,
                "the driver's logs are on the Spark worker: set [agents.spark] worker_work_dir when the worker's --work-dir is readable from the gateway",
                ErrorOrigin::User,
                Retry::Permanent,
                tern_agent_api::error::ErrorClass::Unimplemented,
            ));
        };
        let mut all = Vec::new();
        for (file, originator) in [("stdout", admin::LogLineOriginator::User), ("stderr", admin::LogLineOriginator::System)] {
            // Absent until the driver starts.
            let text = tokio::fs::read_to_string(dir.join(file)).await.unwrap_or_default();
            all.extend(text.lines().map(|l| admin::LogLine { timestamp: None, message: l.to_owned(), originator: originator as i32 }));
        }
        LogPage::from_lines(all, token, lines)
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&DRIVER_STATES)
    }
}
