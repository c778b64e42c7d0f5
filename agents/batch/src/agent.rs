//! The AWS Batch async agent: submit (idempotently), poll, terminate, read logs.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use aws_sdk_batch::types as bt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::json_to_struct;

use crate::client::{self, Aws, DefinitionCache, DefinitionKey, JobView};
use crate::codes;
use crate::config::BatchConfig;
use crate::data;
use crate::states::{state_name, JOB_STATES, TERMINATE_REASON};
use crate::template::BatchTask;

/// Prefix of the job names this agent submits: `tern-` + the 32-hex idempotency key.
pub const JOB_NAME_PREFIX: &str = "tern-";
/// The tag carrying the idempotency key on every job.
pub const KEY_TAG: &str = "tern:idempotency-key";
/// Children of an array job listed in `custom_info` (the summary counts them all).
pub const MAX_CHILDREN_SHOWN: usize = 100;

/// The handle (`resource_meta`): the job, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    pub job_id: String,
    pub job_name: String,
    pub queue: String,
    /// Children of an array job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_size: Option<i32>,
    /// The interface declares outputs (read on success).
    pub outputs: bool,
}

#[derive(Debug)]
pub struct BatchAgent {
    config: Arc<BatchConfig>,
    aws: Aws,
    definitions: DefinitionCache,
    /// One create at a time per job name in this process (two concurrent creates of the same
    /// attempt must not both find nothing and both submit).
    creating: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// Whether `id` looks like a Batch job id (a UUID, `:N` for an array child).
fn valid_job_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 80 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-' || c == ':')
}

impl BatchAgent {
    pub fn new(config: BatchConfig, _services: &AgentServices) -> Self {
        let config = Arc::new(config);
        Self {
            aws: Aws::new(config.clone()),
            config,
            definitions: DefinitionCache::default(),
            creating: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// The job name for a call: `tern-<key>` (37 characters, within Batch's 128).
    pub fn job_name(ctx: &TaskContext) -> String {
        match &ctx.idempotency_key {
            Some(k) => format!("{JOB_NAME_PREFIX}{}", k.as_str()),
            // No execution identity: nothing to be idempotent about.
            None => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                format!("{JOB_NAME_PREFIX}adhoc-{:x}-{nanos:x}", std::process::id())
            }
        }
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(lock) = map.get(name).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(name.to_owned(), Arc::downgrade(&lock));
        lock
    }

    fn open(meta: &ResourceMeta) -> Result<Handle, AgentError> {
        let handle: Handle = meta.decode()?;
        if !valid_job_id(handle.job_id.trim()) {
            return Err(AgentError::invalid_argument(
                tern_agent_api::error::codes::BAD_RESOURCE_META,
                format!("resource_meta's job_id {:?} is not an AWS Batch job id", handle.job_id.chars().take(40).collect::<String>()),
            ));
        }
        Ok(handle)
    }

    async fn submit(&self, ctx: &TaskContext, spec: &BatchTask, clients: &client::Clients, queue: &str, role: Option<String>, name: &str) -> Result<String, AgentError> {
        let key = DefinitionKey { image: spec.image.clone(), role, platform: spec.platform.clone() };
        let definition = self.definitions.arn(clients, &self.config, &key).await?;
        let mut overrides = bt::ContainerOverrides::builder().set_command(Some(spec.command.clone()));
        let mut env: Vec<(String, String)> = spec.env.clone();
        if spec.array_size.is_some() {
            // flytekit's map entrypoint finds its index through this variable (as propeller sets it).
            env.push(("BATCH_JOB_ARRAY_INDEX_VAR_NAME".into(), "AWS_BATCH_JOB_ARRAY_INDEX".into()));
        }
        for (k, v) in env {
            overrides = overrides.environment(bt::KeyValuePair::builder().name(k).value(v).build());
        }
        let vcpus = spec.vcpus.clone().unwrap_or_else(|| self.config.default_vcpus.clone());
        let memory = spec.memory_mib.unwrap_or(self.config.default_memory_mib).to_string();
        overrides = overrides
            .resource_requirements(client::requirement(bt::ResourceType::Vcpu, vcpus))
            .resource_requirements(client::requirement(bt::ResourceType::Memory, memory));
        if let Some(g) = spec.gpus {
            overrides = overrides.resource_requirements(client::requirement(bt::ResourceType::Gpu, g.to_string()));
        }
        // Propeller's plugin: the task's retries, clamped to Batch's 1..=10 attempts.
        let attempts = spec.retries.clamp(1, 10) as i32;
        let timeout = spec.timeout_secs.or(self.config.default_timeout.map(|d| d.as_secs())).map(|s| s.max(60));
        let mut tags: BTreeMap<String, String> = spec.tags.clone();
        if let Some(k) = &ctx.idempotency_key {
            tags.insert(KEY_TAG.into(), k.as_str().to_owned());
        }
        let mut call = clients
            .batch
            .submit_job()
            .job_name(name)
            .job_queue(queue)
            .job_definition(&definition)
            .container_overrides(overrides.build())
            .retry_strategy(bt::RetryStrategy::builder().attempts(attempts).build())
            .set_parameters(if spec.parameters.is_empty() { None } else { Some(spec.parameters.clone().into_iter().collect()) })
            .set_tags(Some(tags.into_iter().collect()))
            .set_propagate_tags(spec.propagate_tags)
            .set_scheduling_priority_override(spec.scheduling_priority);
        if let Some(s) = timeout {
            call = call.timeout(bt::JobTimeout::builder().attempt_duration_seconds(i32::try_from(s).unwrap_or(i32::MAX)).build());
        }
        if let Some(n) = spec.array_size {
            call = call.array_properties(bt::ArrayProperties::builder().size(n).build());
        }
        match call.send().await {
            Ok(out) => out.job_id().map(str::to_owned).ok_or_else(|| codes::unavailable("SubmitJob answered without a jobId", None)),
            Err(e) => {
                let err = client::sdk_error("SubmitJob", e);
                if err.code == codes::REQUEST_REJECTED && err.message.contains("definition") {
                    // Deregistered since it was cached: register again on the next attempt.
                    self.definitions.forget(&key).await;
                }
                Err(err)
            }
        }
    }

    fn links(&self, region: &str, view: &JobView) -> Vec<core::TaskLog> {
        let mut links = vec![core::TaskLog {
            uri: format!("https://{region}.console.aws.amazon.com/batch/home?region={region}#jobs/detail/{}", view.job_id),
            name: "AWS Batch Console".into(),
            ..Default::default()
        }];
        if let Some(stream) = &view.log_stream {
            links.push(core::TaskLog {
                uri: format!(
                    "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
                    url_path(&self.config.log_group),
                    url_path(stream)
                ),
                name: "CloudWatch Logs".into(),
                ..Default::default()
            });
        }
        links
    }
}

/// CloudWatch console's escaping of a group or stream name in its URL fragment.
fn url_path(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c.to_string(),
            c => {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf).bytes().map(|b| format!("$25{b:02X}")).collect()
            }
        })
        .collect()
}

#[async_trait]
impl AsyncAgent for BatchAgent {
    fn name(&self) -> &str {
        "batch"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.config.task_types.iter().map(|t| TaskCategory::new(t.clone(), 0)).collect()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let spec = BatchTask::from_template(&task.template)?;
        let queue = self.config.queue_for(spec.queue.as_deref())?;
        let role = self.config.role_for(spec.iam_role.as_deref())?;
        let name = Self::job_name(ctx);
        let clients = self.aws.clients(ctx).await?;
        let lock = self.lock_for(&name);
        let _guard = lock.lock().await;
        // A repeated create of this attempt (a retry after a lost answer, a restarted
        // gateway, another replica) attaches to the job already submitted.
        let existing = if ctx.idempotency_key.is_some() { client::find_jobs(&clients, &queue, &name).await? } else { Vec::new() };
        let job_id = match existing.first() {
            Some((id, _)) => {
                if existing.len() > 1 {
                    tracing::warn!(job_name = %name, count = existing.len(), "several AWS Batch jobs carry this attempt's name; attaching to the oldest");
                }
                tracing::info!(job_name = %name, job_id = %id, "AWS Batch job of this attempt already submitted: attached");
                id.clone()
            }
            None => {
                if !ctx.output_prefix.trim().is_empty() && !task.inputs.literals.is_empty() {
                    let uri = spec.inputs_arg().map(str::to_owned).unwrap_or_else(|| join_uri(&ctx.output_prefix, "inputs.pb"));
                    data::ensure_inputs(ctx, &uri, &task.inputs).await;
                }
                let id = self.submit(ctx, &spec, &clients, &queue, role, &name).await?;
                tracing::info!(job_name = %name, job_id = %id, queue = %queue, "AWS Batch job submitted");
                id
            }
        };
        ResourceMeta::encode(&Handle { job_id, job_name: name, queue, array_size: spec.array_size, outputs: spec.declares_outputs })
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle = Self::open(meta)?;
        let clients = self.aws.clients(ctx).await?;
        let Some(view) = client::describe(&clients, handle.job_id.trim()).await? else {
            return Err(codes::job_not_found(format!("AWS Batch knows no job {:?} (in region {})", handle.job_id, clients.region)));
        };
        let (name, detail) = state_name(&view.status, view.status_reason.as_deref(), view.container_reason.as_deref(), view.exit_code);
        let mut status = JOB_STATES.classify_with(&name, &detail);
        let mut info = serde_json::Map::new();
        info.insert("job_id".into(), view.job_id.clone().into());
        info.insert("job_name".into(), view.job_name.clone().into());
        info.insert("queue".into(), handle.queue.clone().into());
        info.insert("status".into(), view.status.clone().into());
        if let Some(r) = &view.status_reason {
            info.insert("status_reason".into(), r.clone().into());
        }
        if let Some(s) = &view.log_stream {
            info.insert("log_stream".into(), s.clone().into());
        }
        info.insert("attempts".into(), (view.attempts as u64).into());
        if handle.array_size.is_some() || view.array_size.is_some() {
            let kids = client::children(&clients, &view.job_id, MAX_CHILDREN_SHOWN).await?;
            let summary: serde_json::Map<String, Value> = view.status_summary.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let kids: Vec<Value> = kids
                .iter()
                .map(|c| json!({"index": c.index, "job_id": c.job_id, "status": c.status, "status_reason": c.status_reason}))
                .collect();
            info.insert("array".into(), json!({"size": view.array_size.or(handle.array_size), "status_summary": summary, "children": kids}));
            if !view.status_summary.is_empty() && status.phase == Phase::Running {
                let done = view.status_summary.iter().filter(|(k, _)| k == "SUCCEEDED" || k == "FAILED").map(|(_, v)| *v).sum::<i32>();
                status.message = format!("{} ({done}/{} children done)", status.message, view.array_size.unwrap_or(0));
            }
        }
        if status.phase == Phase::Succeeded && handle.outputs {
            match data::read_outputs(ctx, None).await {
                Ok(outputs) => status.outputs = outputs,
                Err(e) => status = TaskStatus::failed(e),
            }
        }
        status.custom_info = Some(json_to_struct(&info));
        Ok(status.with_log_links(self.links(&clients.region, &view)))
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle = Self::open(meta)?;
        let clients = self.aws.clients(ctx).await?;
        // TerminateJob cancels a job not started yet and stops a started one; a finished or
        // unknown job is left as it is (idempotent).
        match client::terminate(&clients, handle.job_id.trim(), &format!("{TERMINATE_REASON} ({})", handle.job_name)).await {
            Ok(()) => {
                tracing::info!(job_id = %handle.job_id, "AWS Batch job terminate requested");
                Ok(())
            }
            // A job Batch no longer knows (or never did) is as deleted as it gets.
            Err(e) if e.code == codes::REQUEST_REJECTED && (e.message.contains("not found") || e.message.contains("does not exist")) => {
                tracing::info!(job_id = %handle.job_id, error = %e, "AWS Batch job to terminate is unknown: nothing to do");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        let handle = Self::open(meta)?;
        let clients = self.aws.clients(ctx).await?;
        let Some(view) = client::describe(&clients, handle.job_id.trim()).await? else {
            return Err(codes::job_not_found(format!("AWS Batch knows no job {:?}", handle.job_id)));
        };
        let Some(stream) = view.log_stream.as_deref() else {
            // Not started yet: no log stream.
            return Ok(LogPage { lines: Vec::new(), next_token: String::new() });
        };
        let limit = if lines == 0 { None } else { Some(lines.min(10_000) as i32) };
        let token = Some(token.trim()).filter(|t| !t.is_empty());
        let (events, next) = match client::log_events(&clients, &self.config.log_group, stream, token, limit).await {
            Ok(page) => page,
            // The stream does not exist (yet): the container wrote nothing.
            Err(e) if e.code == codes::REQUEST_REJECTED && e.message.contains("ResourceNotFoundException") => (Vec::new(), None),
            Err(e) => return Err(e),
        };
        let done = events.is_empty();
        let lines = events
            .into_iter()
            .map(|(at, message)| admin::LogLine {
                timestamp: at.map(|ms| prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }),
                message,
                originator: admin::LogLineOriginator::User as i32,
            })
            .collect();
        Ok(LogPage { lines, next_token: if done { String::new() } else { next.unwrap_or_default() } })
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&JOB_STATES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_names() {
        assert!(valid_job_id("8f0c2a4e-1d2b-4c3d-9e8f-0123456789ab"));
        assert!(valid_job_id("8f0c2a4e-1d2b-4c3d-9e8f-0123456789ab:3"));
        assert!(!valid_job_id("") && !valid_job_id("../x") && !valid_job_id(&"a".repeat(100)));
        let dir = tempfile::tempdir().unwrap();
        let services = AgentServices::local(dir.path());
        let mut ctx = services.task_context("p", None, None);
        ctx.idempotency_key = Some(IdempotencyKey::from_string("0123456789abcdef0123456789abcdef"));
        assert_eq!(BatchAgent::job_name(&ctx), "tern-0123456789abcdef0123456789abcdef");
        assert_eq!(url_path("/aws/batch/job"), "$252Faws$252Fbatch$252Fjob");
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    /// No usable credentials (a profile that does not exist, nothing else): a permanent user
    /// error naming the cause, before anything is sent.
    #[tokio::test]
    async fn missing_credentials_are_a_user_error() {
        // The SDK's default chain with nothing to find: no variables, no files, no IMDS.
        let dir = tempfile::tempdir().unwrap();
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"] {
            std::env::remove_var(var);
        }
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", dir.path().join("no-config"));
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("no-credentials"));
        let config = BatchConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            profile: Some("tern-test-no-such-profile".into()),
            job_queue: Some("q".into()),
            request_timeout: std::time::Duration::from_secs(5),
            ..Default::default()
        };
        let services = AgentServices::local(dir.path());
        let agent = BatchAgent::new(config, &services);
        let mut ctx = services.task_context("p", None, None);
        ctx.idempotency_key = Some(IdempotencyKey::from_string("0123456789abcdef0123456789abcdef"));
        let template = core::TaskTemplate {
            r#type: "aws-batch".into(),
            target: Some(core::task_template::Target::Container(core::Container {
                image: "busybox".into(),
                args: vec!["true".into()],
                ..Default::default()
            })),
            ..Default::default()
        };
        let e = agent.create(&ctx, TaskRequest { template: Box::new(template), inputs: Default::default() }).await.unwrap_err();
        assert_eq!(e.code, codes::PERMISSION_DENIED, "{e}");
        assert!(!e.is_retryable());
        assert!(e.message.contains("credentials") && e.message.len() < 1200, "{e}");
    }
}
