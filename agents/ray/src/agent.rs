//! The Ray async agent: submit (idempotently, attaching to a job already submitted for the
//! same attempt), poll, stop, read logs.
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::structs::json_to_struct;

use crate::client::{JobDetails, JobsClient};
use crate::codes;
use crate::config::{base_url, RayConfig};
use crate::states::{state_name, JOB_STATES};
use crate::template::RayTask;

/// Prefix of the submission id derived from the idempotency key (`tern-` + 32 hex).
pub const SUBMISSION_PREFIX: &str = "tern-";

/// The name of the log link.
pub const DASHBOARD_LINK_NAME: &str = "Ray Dashboard";

/// The handle (`resource_meta`): the job's submission id, and whether the interface
/// declares outputs. The cluster is the section's `address`, never the handle's: a handle
/// cannot send the token elsewhere. Never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    pub submission_id: String,
    /// The interface declares outputs (checked on success).
    pub outputs: bool,
}

#[derive(Debug)]
pub struct RayAgent {
    config: Arc<RayConfig>,
    client: JobsClient,
}

impl RayAgent {
    pub fn new(config: RayConfig, _services: &AgentServices) -> Result<Self, AgentError> {
        let config = Arc::new(config);
        Ok(Self { client: JobsClient::new(config.clone())?, config })
    }

    pub fn config(&self) -> &RayConfig {
        &self.config
    }

    /// The submission id for a call (none without an execution identity: Ray then picks one).
    pub fn submission_id(ctx: &TaskContext) -> Option<String> {
        ctx.idempotency_key.as_ref().map(|k| format!("{SUBMISSION_PREFIX}{}", k.as_str()))
    }

    fn base(&self) -> Result<String, AgentError> {
        let address = self.config.address.as_deref().ok_or_else(|| {
            codes::no_address("no Ray cluster configured: set [agents.ray] address (the dashboard, e.g. http://127.0.0.1:8265) or RAY_ADDRESS")
        })?;
        base_url(address).map_err(|e| codes::no_address(format!("[agents.ray] address: {e}")))
    }

    fn open(meta: &ResourceMeta) -> Result<Handle, AgentError> {
        let handle: Handle = meta.decode()?;
        let id = &handle.submission_id;
        if id.is_empty() || id.len() > 200 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::BAD_RESOURCE_META,
                format!("resource_meta's submission_id {:?} is not one this agent gives", id.chars().take(40).collect::<String>()),
            ));
        }
        Ok(handle)
    }

    /// The job already submitted under `id` (a repeated create), if it is this task's.
    async fn existing(&self, ctx: &TaskContext, base: &str, id: &str, spec: &RayTask) -> Result<Option<JobDetails>, AgentError> {
        let job = match self.client.get(ctx, base, id).await {
            Ok(job) => job,
            Err(e) if e.code == codes::JOB_NOT_FOUND => return Ok(None),
            Err(e) => return Err(e),
        };
        match job.entrypoint.as_deref() {
            Some(e) if e != spec.entrypoint => Err(codes::taken(format!(
                "the Ray cluster already has a job with submission_id {id} running another entrypoint: nothing was \
                 submitted (was this id reused outside Tern?)"
            ))),
            _ => Ok(Some(job)),
        }
    }

    /// The status of a job, with its dashboard link and Ray's fields in `custom_info`.
    async fn status_of(&self, ctx: &TaskContext, base: &str, handle: &Handle, job: &JobDetails) -> TaskStatus {
        let name = state_name(&job.status, job.error_type.as_deref());
        let mut detail = job.message.as_deref().map(str::trim).unwrap_or_default().to_owned();
        if let Some(code) = job.driver_exit_code.filter(|_| name.starts_with("FAILED")) {
            detail = if detail.is_empty() { format!("exit code {code}") } else { format!("{detail} (exit code {code})") };
        }
        let mut status = JOB_STATES.classify_with(&name, &detail);
        if status.phase == Phase::Succeeded {
            if let Some(error) = missing_outputs(ctx, handle.outputs).await {
                status = TaskStatus::failed(error);
            }
        }
        let link = core::TaskLog {
            uri: format!("{base}/#/jobs/{}", handle.submission_id),
            name: DASHBOARD_LINK_NAME.into(),
            ..Default::default()
        };
        let mut info = Map::new();
        info.insert("submission_id".into(), handle.submission_id.clone().into());
        if let Some(job_id) = &job.job_id {
            info.insert("job_id".into(), job_id.clone().into());
        }
        info.insert("status".into(), job.status.clone().into());
        if let Some(t) = &job.error_type {
            info.insert("error_type".into(), t.clone().into());
        }
        if let Some(code) = job.driver_exit_code {
            info.insert("driver_exit_code".into(), code.into());
        }
        status.custom_info = Some(json_to_struct(&info));
        status.with_log_links(vec![link])
    }
}

/// `Some(error)` when the outputs the interface declares are certainly missing: the job
/// succeeded, the gateway's data store reaches the output prefix, and `outputs.pb` is not there.
async fn missing_outputs(ctx: &TaskContext, declares_outputs: bool) -> Option<AgentError> {
    if !declares_outputs || ctx.output_prefix.trim().is_empty() {
        return None;
    }
    let uri = join_uri(&ctx.output_prefix, "outputs.pb");
    match ctx.data_store().exists(&uri).await {
        Ok(false) => Some(AgentError::user(
            codes::JOB_FAILED,
            format!(
                "the Ray job succeeded but wrote no {uri}: the interface declares outputs, which flytekit's \
                 pyflyte-execute (the container args) writes there"
            ),
        )),
        Ok(true) => None,
        Err(e) => {
            tracing::debug!(%uri, error = %e, "outputs not reachable from this gateway: trusting the job");
            None
        }
    }
}

#[async_trait]
impl AsyncAgent for RayAgent {
    fn name(&self) -> &str {
        "ray"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.config.task_types.iter().map(|t| TaskCategory::new(t.clone(), 0)).collect()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let spec = RayTask::from_template(&task.template)?;
        if !spec.ignored.is_empty() {
            tracing::debug!(ignored = ?spec.ignored, "RayJob cluster settings ignored: the job runs on the configured cluster");
        }
        let base = self.base()?;
        let id = Self::submission_id(ctx);
        let mut metadata = Map::new();
        if !spec.task_name.is_empty() {
            metadata.insert("tern.task".into(), Value::String(spec.task_name.clone()));
        }
        if let Some(key) = &ctx.idempotency_key {
            metadata.insert("tern.idempotency_key".into(), Value::String(key.as_str().to_owned()));
        }
        let body = spec.submission(&self.config, id.as_deref(), metadata)?;
        let handle = |submission_id: String| ResourceMeta::encode(&Handle { submission_id, outputs: spec.declares_outputs });
        match self.client.submit(ctx, &base, &body).await {
            Ok(submitted) => {
                tracing::info!(submission_id = %submitted, "Ray job submitted");
                handle(submitted)
            }
            // Ray refuses a submission_id it already holds (its dashboard answers 500, wrapping its job
            // agent's 400): a repeated create (a propeller retry after a lost answer, a restarted gateway,
            // another replica, two creates racing) attaches to the job submitted first. Any other failure
            // is reported as it is when no job holds the id.
            Err(refused) => {
                let Some(id) = id else { return Err(refused) };
                match self.existing(ctx, &base, &id, &spec).await {
                    Ok(Some(_)) => {
                        tracing::info!(submission_id = %id, "Ray job already submitted for this attempt: attached");
                        handle(id)
                    }
                    Err(e) if e.code == codes::SUBMISSION_ID_TAKEN => Err(e),
                    Ok(None) | Err(_) => Err(refused),
                }
            }
        }
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle = Self::open(meta)?;
        let base = self.base()?;
        let job = self.client.get(ctx, &base, &handle.submission_id).await?;
        Ok(self.status_of(ctx, &base, &handle, &job).await)
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle = Self::open(meta)?;
        let base = self.base()?;
        let stopped = self.client.stop(ctx, &base, &handle.submission_id).await?;
        tracing::info!(submission_id = %handle.submission_id, stopped, "Ray job stop requested");
        Ok(())
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        let handle = Self::open(meta)?;
        let base = self.base()?;
        let text = self.client.logs(ctx, &base, &handle.submission_id).await?;
        crate::logs::page(&text, lines, token)
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&JOB_STATES)
    }
}
