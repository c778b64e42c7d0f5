//! The Databricks async agent: submit (idempotently), poll, cancel, read logs.
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::json_to_struct;

use crate::client::{AuthMethod, JobsClient};
use crate::config::DatabricksConfig;
use crate::logs;
use crate::outputs::missing_outputs;
use crate::states::{state_name, RUN_STATES};
use crate::submit::submit_body;
use crate::template::{DatabricksTask, IGNORED_AUTH_KEYS};
use crate::workspace::{resolve, Asker, Workspace};

/// Prefix of the Jobs API `idempotency_token` (the token is `tern-` + the 32-hex
/// idempotency key: 37 characters, within the API's 64).
pub const TOKEN_PREFIX: &str = "tern-";

/// The handle (`resource_meta`): the run, the workspace's name (resolved again through the
/// configuration on every call, so a handle cannot send the token elsewhere) and the auth
/// method's name. Never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    pub run_id: String,
    pub instance: String,
    pub auth: AuthMethod,
    /// The interface declares outputs (checked on success).
    pub outputs: bool,
}

#[derive(Debug)]
pub struct DatabricksAgent {
    config: Arc<DatabricksConfig>,
    client: JobsClient,
}

impl DatabricksAgent {
    pub fn new(config: DatabricksConfig, _services: &AgentServices) -> Result<Self, AgentError> {
        let config = Arc::new(config);
        Ok(Self { client: JobsClient::new(config.clone())?, config })
    }

    pub fn config(&self) -> &DatabricksConfig {
        &self.config
    }

    /// The idempotency token for a call (none without an execution identity).
    pub fn idempotency_token(ctx: &TaskContext) -> Option<String> {
        ctx.idempotency_key.as_ref().map(|k| format!("{TOKEN_PREFIX}{}", k.as_str()))
    }

    fn open(&self, meta: &ResourceMeta) -> Result<(Handle, u64, Workspace, AuthMethod), AgentError> {
        let handle: Handle = meta.decode()?;
        let run_id: u64 = handle.run_id.trim().parse().map_err(|_| {
            AgentError::invalid_argument(
                codes::BAD_RESOURCE_META,
                format!("resource_meta's run_id {:?} is not a Databricks run id", handle.run_id.chars().take(40).collect::<String>()),
            )
        })?;
        let ws = resolve(&self.config, Some(&handle.instance), Asker::Handle)?;
        let auth = match handle.auth {
            AuthMethod::Pat => "pat",
            AuthMethod::OauthM2m => "oauth_m2m",
        };
        let auth = AuthMethod::choose(&self.config, Some(auth))?;
        Ok((handle, run_id, ws, auth))
    }
}

#[async_trait]
impl AsyncAgent for DatabricksAgent {
    fn name(&self) -> &str {
        "databricks"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.config.task_types.iter().map(|t| TaskCategory::new(t.clone(), 0)).collect()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let spec = DatabricksTask::from_template(&task.template)?;
        if let Some(custom) = &task.template.custom {
            let ignored: Vec<&str> = IGNORED_AUTH_KEYS.iter().copied().filter(|k| custom.fields.contains_key(*k)).collect();
            if !ignored.is_empty() {
                tracing::debug!(?ignored, "flytekit connector auth keys ignored: credentials come from [agents.databricks]");
            }
        }
        let ws = resolve(&self.config, spec.instance.as_deref(), Asker::Template)?;
        let auth = AuthMethod::choose(&self.config, spec.auth_type.as_deref())?;
        let token = Self::idempotency_token(ctx);
        let body = submit_body(&spec, &self.config, &task.inputs, token.as_deref())?;
        let run_id = self.client.submit(ctx, &ws, auth, &body).await?;
        tracing::info!(instance = %ws.instance, run_id, idempotency_token = token.as_deref().unwrap_or("-"), "Databricks run submitted");
        ResourceMeta::encode(&Handle { run_id: run_id.to_string(), instance: ws.instance, auth, outputs: spec.declares_outputs })
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let (handle, run_id, ws, auth) = self.open(meta)?;
        let run = self.client.get_run(ctx, &ws, auth, run_id).await?;
        let (name, detail) = state_name(run.state.as_ref(), run.status.as_ref());
        let mut status = RUN_STATES.classify_with(&name, &detail);
        if status.phase == Phase::Succeeded {
            if let Some(error) = missing_outputs(ctx, handle.outputs).await {
                status = TaskStatus::failed(error);
            }
        }
        let link = logs::console_link(&run, &ws.base, run_id);
        let mut info = serde_json::Map::new();
        info.insert("run_id".into(), run_id.into());
        if let Some(job) = run.job_id {
            info.insert("job_id".into(), job.into());
        }
        info.insert("state".into(), name.into());
        info.insert("run_page_url".into(), link.uri.clone().into());
        status.custom_info = Some(json_to_struct(&info));
        Ok(status.with_log_links(vec![link]))
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let (_, run_id, ws, auth) = self.open(meta)?;
        self.client.cancel(ctx, &ws, auth, run_id).await?;
        tracing::info!(instance = %ws.instance, run_id, "Databricks run cancel requested");
        Ok(())
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        let (_, run_id, ws, auth) = self.open(meta)?;
        let run = self.client.get_run(ctx, &ws, auth, run_id).await?;
        let mut all = Vec::new();
        for task_run in logs::task_run_ids(&run, run_id) {
            match self.client.get_output(ctx, &ws, auth, task_run).await {
                Ok(output) => all.extend(logs::output_lines(&output)),
                // A task run that has no output yet (still running on a real workspace).
                Err(e) if e.code == crate::codes::REQUEST_REJECTED || e.code == crate::codes::RUN_NOT_FOUND => {
                    tracing::debug!(task_run, error = %e, "no output for this task run yet");
                }
                Err(e) => return Err(e),
            }
        }
        logs::page(all, token, lines)
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&RUN_STATES)
    }
}
