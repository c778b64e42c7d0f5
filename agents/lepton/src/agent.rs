//! The Lepton async agent: deploy an endpoint (idempotently) and wait until it is ready, or
//! delete one; cancel deletes; logs from Lepton's log API.
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tern_agent_api::core;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::prelude::*;
use tern_type_transformers::literals::primitive;
use tern_type_transformers::render::json_to_struct;

use crate::client::{DeploymentInfo, LeptonClient};
use crate::codes;
use crate::config::{LeptonConfig, DELETION_TASK_TYPE, DEPLOYMENT_TASK_TYPE};
use crate::states::DEPLOYMENT_STATES;
use crate::template::{deletion_name, sanitize_name, Deployment, MAX_NAME};

/// Label holding the idempotency key of the attempt that created a deployment.
pub const KEY_LABEL: &str = "tern-idempotency-key";
/// Label holding the attempt-independent key of the task (execution, node, task): another
/// retry attempt of the same task adopts a named endpoint its earlier attempt created.
pub const TASK_LABEL: &str = "tern-task-key";
/// Prefix of endpoint names derived from the idempotency key.
pub const NAME_PREFIX: &str = "tern-";

/// What a handle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Deploy,
    Delete,
}

/// The handle (`resource_meta`): the operation, the deployment's name and, for a
/// deployment, when waiting started and for how long. Never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    pub op: Operation,
    pub name: String,
    /// Unix seconds at which the deployment was created (or attached to).
    pub started_at: u64,
    /// Seconds to wait for `Ready`.
    pub timeout_s: u64,
}

#[derive(Debug)]
pub struct LeptonAgent {
    config: Arc<LeptonConfig>,
    client: LeptonClient,
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// A valid Lepton name as this agent makes them (guards every path built from a handle).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The attempt-independent key of the task being run (none without an execution identity).
pub fn task_key(ctx: &TaskContext) -> Option<String> {
    let id = ctx.execution.as_ref()?.task_execution_id.as_ref()?;
    let node = id.node_execution_id.as_ref()?;
    let exec = node.execution_id.as_ref();
    let task = id.task_id.as_ref();
    let mut h = Sha256::new();
    for p in [
        exec.map(|e| e.org.as_str()).unwrap_or_default(),
        exec.map(|e| e.project.as_str()).unwrap_or_default(),
        exec.map(|e| e.domain.as_str()).unwrap_or_default(),
        exec.map(|e| e.name.as_str()).unwrap_or_default(),
        node.node_id.as_str(),
        task.map(|t| t.name.as_str()).unwrap_or_default(),
        task.map(|t| t.version.as_str()).unwrap_or_default(),
    ] {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    Some(hex::encode(&h.finalize()[..16]))
}

impl LeptonAgent {
    pub fn new(config: LeptonConfig, services: &AgentServices) -> Result<Self, AgentError> {
        let config = Arc::new(config);
        Ok(Self { client: LeptonClient::new(config.clone(), services), config })
    }

    pub fn config(&self) -> &LeptonConfig {
        &self.config
    }

    /// The endpoint name for a deployment: the template's `endpoint_name` (sanitized as
    /// flytekit does), else `tern-` + the idempotency key (flytekit appends a timestamp,
    /// so its retries make a second endpoint), else, with no execution identity, the
    /// task's name and the time (as flytekit).
    pub fn endpoint_name(ctx: &TaskContext, template: &core::TaskTemplate, given: Option<&str>) -> String {
        if let Some(n) = given {
            return n.to_owned();
        }
        match &ctx.idempotency_key {
            Some(k) => {
                let key = k.as_str();
                format!("{NAME_PREFIX}{}", &key[..key.len().min(MAX_NAME - NAME_PREFIX.len())])
            }
            None => {
                let task = template.id.as_ref().map(|i| i.name.as_str()).filter(|n| !n.is_empty()).unwrap_or("lepton-endpoint");
                sanitize_name(&format!("{task}-{}", now_s()))
            }
        }
    }

    fn open(meta: &ResourceMeta) -> Result<Handle, AgentError> {
        let handle: Handle = meta.decode()?;
        if !valid_name(&handle.name) {
            return Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::BAD_RESOURCE_META,
                format!("resource_meta's name {:?} is not a Lepton endpoint name", handle.name.chars().take(64).collect::<String>()),
            ));
        }
        Ok(handle)
    }

    fn console_link(&self, name: &str) -> Option<core::TaskLog> {
        let dashboard = self.config.dashboard()?;
        let ws = self.config.workspace_id.as_deref()?;
        Some(core::TaskLog {
            uri: format!("{dashboard}/workspace/{ws}/compute/deployments/detail/{name}/replicas/list"),
            name: "Lepton Console".into(),
            ..Default::default()
        })
    }

    async fn deploy(&self, ctx: &TaskContext, task: &TaskRequest) -> Result<Handle, AgentError> {
        let d = Deployment::from_template(&task.template)?;
        let name = Self::endpoint_name(ctx, &task.template, d.name.as_deref());
        let key = ctx.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
        let task_key = task_key(ctx);
        let timeout_s = d.readiness_timeout.unwrap_or(self.config.readiness_timeout.as_secs().max(1));
        let handle = Handle { op: Operation::Deploy, name: name.clone(), started_at: now_s(), timeout_s };
        // Attach to the deployment an earlier call of this task made.
        if let Some(existing) = self.client.get(ctx, &name).await? {
            return self.attach(&existing, handle, key.as_deref(), task_key.as_deref());
        }
        let mut labels = serde_json::Map::new();
        if let Some(k) = &key {
            labels.insert(KEY_LABEL.into(), k.clone().into());
        }
        if let Some(t) = &task_key {
            labels.insert(TASK_LABEL.into(), t.clone().into());
        }
        let mut metadata = json!({"id": name, "name": name});
        if !labels.is_empty() {
            metadata["labels"] = Value::Object(labels);
        }
        let body = json!({"metadata": metadata, "spec": d.spec});
        match self.client.create(ctx, &body).await {
            Ok(()) => {
                tracing::info!(endpoint = %name, kind = %d.deployment_type, "Lepton deployment created");
                Ok(handle)
            }
            // A conflict: another call created it meanwhile (or Lepton refuses the name).
            Err(r) if (400..500).contains(&r.status) && !matches!(r.status, 401 | 403 | 429) => {
                match self.client.get(ctx, &name).await? {
                    Some(existing) => self.attach(&existing, handle, key.as_deref(), task_key.as_deref()),
                    None => Err(r.error),
                }
            }
            Err(r) => Err(r.error),
        }
    }

    fn attach(&self, existing: &DeploymentInfo, handle: Handle, key: Option<&str>, task_key: Option<&str>) -> Result<Handle, AgentError> {
        let same_attempt = key.is_some() && existing.label(KEY_LABEL) == key;
        let same_task = task_key.is_some() && existing.label(TASK_LABEL) == task_key;
        if same_attempt || same_task {
            tracing::info!(endpoint = %handle.name, same_attempt, "attached to the Lepton deployment this task created");
            return Ok(handle);
        }
        Err(codes::rejected(
            codes::NAME_TAKEN,
            format!(
                "a Lepton deployment named {:?} already exists and was not created by this task: choose another \
                 endpoint_name, or delete it first (lepton_endpoint_deletion_task)",
                handle.name
            ),
        ))
    }

    async fn deployment_status(&self, ctx: &TaskContext, handle: &Handle) -> Result<TaskStatus, AgentError> {
        let Some(info) = self.client.get(ctx, &handle.name).await? else {
            return Ok(TaskStatus::aborted(format!("the Lepton deployment {:?} no longer exists: it was deleted", handle.name)));
        };
        let state = info.state().unwrap_or_default().to_owned();
        let mut status = if state.is_empty() {
            TaskStatus::with_phase(Phase::Initializing, "the deployment reports no state yet")
        } else {
            DEPLOYMENT_STATES.classify_with(&state, &format!("endpoint {}", handle.name))
        };
        if status.phase == Phase::Succeeded {
            match info.external_endpoint() {
                Some(url) => {
                    let mut outputs = core::LiteralMap::default();
                    outputs.literals.insert("o0".into(), primitive(Prim::StringValue(url.to_owned())));
                    status = TaskStatus::succeeded(Some(outputs)).with_message(format!("Ready: {url}"));
                }
                None => status = TaskStatus::with_phase(Phase::Initializing, "Ready, but Lepton reports no external endpoint yet"),
            }
        }
        if !status.is_terminal() && now_s() >= handle.started_at.saturating_add(handle.timeout_s) {
            status = TaskStatus::failed(codes::rejected(
                codes::NOT_READY_IN_TIME,
                format!(
                    "the Lepton endpoint {:?} is not ready after {} s (state {:?}): raise endpoint_readiness_timeout, \
                     or look at its replicas in the Lepton console; the deployment is left in place",
                    handle.name,
                    handle.timeout_s,
                    if state.is_empty() { "none" } else { state.as_str() }
                ),
            ));
        }
        let mut info_map = serde_json::Map::new();
        info_map.insert("endpoint_name".into(), handle.name.clone().into());
        info_map.insert("state".into(), state.into());
        if let Some(url) = info.external_endpoint() {
            info_map.insert("external_endpoint".into(), url.into());
        }
        status.custom_info = Some(json_to_struct(&info_map));
        Ok(status)
    }

    async fn deletion_status(&self, ctx: &TaskContext, handle: &Handle) -> Result<TaskStatus, AgentError> {
        match self.client.get(ctx, &handle.name).await? {
            None => {
                let mut outputs = core::LiteralMap::default();
                let text = format!("Successfully deleted endpoint: {}", handle.name);
                outputs.literals.insert("o0".into(), primitive(Prim::StringValue(text.clone())));
                Ok(TaskStatus::succeeded(Some(outputs)).with_message(text))
            }
            Some(info) => {
                let state = info.state().unwrap_or("none").to_owned();
                if state != "Deleting" {
                    // Asked again: a deletion Lepton did not take (idempotent).
                    self.client.delete(ctx, &handle.name).await?;
                }
                Ok(TaskStatus::running(format!("deleting the Lepton endpoint {:?} (state {state})", handle.name)))
            }
        }
    }
}

#[async_trait]
impl AsyncAgent for LeptonAgent {
    fn name(&self) -> &str {
        "lepton"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(DEPLOYMENT_TASK_TYPE, 0), TaskCategory::new(DELETION_TASK_TYPE, 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let handle = if task.template.r#type == DELETION_TASK_TYPE {
            let name = deletion_name(&task.template)?;
            let existed = self.client.delete(ctx, &name).await?;
            tracing::info!(endpoint = %name, existed, "Lepton deployment deletion requested");
            Handle { op: Operation::Delete, name, started_at: now_s(), timeout_s: 0 }
        } else {
            self.deploy(ctx, &task).await?
        };
        ResourceMeta::encode(&handle)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle = Self::open(meta)?;
        let status = match handle.op {
            Operation::Deploy => self.deployment_status(ctx, &handle).await?,
            Operation::Delete => self.deletion_status(ctx, &handle).await?,
        };
        Ok(match self.console_link(&handle.name) {
            Some(link) => status.with_log_links(vec![link]),
            None => status,
        })
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle = Self::open(meta)?;
        if handle.op == Operation::Deploy {
            let existed = self.client.delete(ctx, &handle.name).await?;
            tracing::info!(endpoint = %handle.name, existed, "Lepton deployment deleted (task aborted)");
        }
        Ok(())
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        let handle = Self::open(meta)?;
        let limit = 5000;
        let all = self.client.logs(ctx, &handle.name, limit).await?;
        let all = all
            .into_iter()
            .map(|message| admin::LogLine { timestamp: None, message, originator: admin::LogLineOriginator::User as i32 })
            .collect();
        LogPage::from_lines(all, token, lines)
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&DEPLOYMENT_STATES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_name_only_valid_endpoints() {
        assert!(valid_name("tern-0123abcd"));
        for bad in ["", "A", "1ab", "a/b", "a..b", "a?x=1", &"a".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
        let meta = ResourceMeta::encode(&Handle { op: Operation::Deploy, name: "../x".into(), started_at: 0, timeout_s: 1 }).unwrap();
        assert_eq!(LeptonAgent::open(&meta).unwrap_err().code, tern_agent_api::error::codes::BAD_RESOURCE_META);
    }

    #[test]
    fn derived_names_come_from_the_idempotency_key() {
        let services = AgentServices::local(std::env::temp_dir());
        let mut ctx = services.task_context("", None, None);
        ctx.idempotency_key = Some(IdempotencyKey::from_string("0123456789abcdef0123456789abcdef"));
        let t = core::TaskTemplate::default();
        let n = LeptonAgent::endpoint_name(&ctx, &t, None);
        assert_eq!(n, "tern-0123456789abcdef0123456789abcde");
        assert_eq!(n.len(), MAX_NAME);
        assert!(valid_name(&n));
        assert_eq!(LeptonAgent::endpoint_name(&ctx, &t, Some("mine")), "mine");
    }
}
