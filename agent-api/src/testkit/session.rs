//! One conformance run's calls: requests with fresh execution identities, polling, and
//! short descriptions of what came back.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::client::AgentClient;
use crate::datastore::join_uri;
use crate::error::{codes, AgentError, ErrorClass};
use crate::proto::flyteidl::{admin, core};
use crate::status::{is_terminal, Phase};

use super::case::{Case, TaskSpec};

pub(crate) struct Session {
    pub client: Arc<dyn AgentClient>,
    pub case: Case,
    pub category: admin::TaskCategory,
    /// Unique per run: part of every execution name and output prefix.
    pub run: String,
    pub is_sync: bool,
}

/// A fresh name for this run.
pub(crate) fn run_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("c{:x}{:x}{}", std::process::id(), nanos % (1 << 40), SEQ.fetch_add(1, Ordering::Relaxed))
}

impl Session {
    pub fn task_type(&self) -> &str {
        &self.category.name
    }

    pub fn execution(&self, node: &str, attempt: u32) -> admin::TaskExecutionMetadata {
        admin::TaskExecutionMetadata {
            task_execution_id: Some(core::TaskExecutionIdentifier {
                task_id: Some(core::Identifier {
                    resource_type: core::ResourceType::Task as i32,
                    project: "conformance".into(),
                    domain: "development".into(),
                    name: format!("{}-task", self.category.name),
                    version: "1".into(),
                    org: String::new(),
                }),
                node_execution_id: Some(core::NodeExecutionIdentifier {
                    node_id: node.into(),
                    execution_id: Some(core::WorkflowExecutionIdentifier {
                        project: "conformance".into(),
                        domain: "development".into(),
                        name: self.run.clone(),
                        org: String::new(),
                    }),
                }),
                retry_attempt: attempt,
            }),
            namespace: "conformance-development".into(),
            ..Default::default()
        }
    }

    pub fn prefix(&self, node: &str, attempt: u32) -> String {
        format!("{}/{}/{node}/{attempt}", self.case.output_root.trim_end_matches('/'), self.run)
    }

    pub async fn create(&self, spec: &TaskSpec, node: &str, attempt: u32) -> Result<Handle, AgentError> {
        let prefix = self.prefix(node, attempt);
        let meta = self
            .client
            .create_task(admin::CreateTaskRequest {
                inputs: Some(spec.inputs.clone()),
                template: Some(spec.template.clone().into()),
                output_prefix: prefix.clone(),
                task_execution_metadata: Some(self.execution(node, attempt).into()),
            })
            .await?;
        Ok(Handle { meta, prefix })
    }

    #[allow(deprecated)]
    pub async fn get(&self, meta: &[u8], prefix: &str) -> Result<admin::Resource, AgentError> {
        self.client
            .get_task(admin::GetTaskRequest {
                task_type: self.category.name.clone(),
                resource_meta: meta.to_vec(),
                task_category: Some(self.category.clone()),
                output_prefix: prefix.to_owned(),
            })
            .await
    }

    #[allow(deprecated)]
    pub async fn delete(&self, meta: &[u8]) -> Result<(), AgentError> {
        self.client
            .delete_task(admin::DeleteTaskRequest {
                task_type: self.category.name.clone(),
                resource_meta: meta.to_vec(),
                task_category: Some(self.category.clone()),
            })
            .await
    }

    pub async fn execute(&self, spec: &TaskSpec, node: &str) -> Result<admin::Resource, AgentError> {
        let header = admin::CreateRequestHeader {
            template: Some(spec.template.clone().into()),
            output_prefix: self.prefix(node, 0),
            task_execution_metadata: Some(self.execution(node, 0).into()),
            ..Default::default()
        };
        self.client.execute_task_sync(header, spec.inputs.clone()).await
    }

    /// Polls until a terminal phase. `Err` describes why it did not get there.
    pub async fn poll(&self, handle: &Handle) -> Result<admin::Resource, String> {
        let deadline = Instant::now() + self.case.poll_timeout;
        loop {
            let r = self.get(&handle.meta, &handle.prefix).await.map_err(|e| format!("GetTask failed: {}", describe_error(&e)))?;
            let phase = phase_of(&r);
            if phase == Phase::Undefined {
                return Err(format!("GetTask reported phase {} (UNDEFINED or unknown)", r.phase));
            }
            if is_terminal(phase) {
                return Ok(r);
            }
            if Instant::now() >= deadline {
                return Err(format!("still {} after {:?}", phase.as_str_name(), self.case.poll_timeout));
            }
            tokio::time::sleep(self.case.poll_interval).await;
        }
    }

    /// The outputs a successful resource carries, or those stored at `<prefix>/outputs.pb`
    /// when the case gave a store and the resource has none.
    pub async fn outputs_of(&self, r: &admin::Resource, prefix: &str) -> Result<Option<core::LiteralMap>, String> {
        if let Some(o) = &r.outputs {
            return Ok(Some(o.clone()));
        }
        let Some(store) = &self.case.outputs_store else { return Ok(None) };
        let uri = join_uri(prefix, "outputs.pb");
        match store.read(&uri).await {
            Ok(bytes) => core::LiteralMap::decode(bytes).map(Some).map_err(|e| format!("{uri} is not a LiteralMap: {e}")),
            Err(e) => Err(format!("the resource has no outputs and {uri} cannot be read: {e}")),
        }
    }

    pub async fn count_jobs(&self) -> Option<u64> {
        match &self.case.count_jobs {
            Some(count) => Some(count().await),
            None => None,
        }
    }

    /// Best-effort cleanup of jobs a check created.
    pub async fn forget(&self, handles: &[&Handle]) {
        for h in handles {
            let _ = self.delete(&h.meta).await;
        }
    }
}

/// What `CreateTask` returned, with the output prefix it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handle {
    pub meta: Vec<u8>,
    pub prefix: String,
}

pub(crate) fn phase_of(r: &admin::Resource) -> Phase {
    Phase::try_from(r.phase).unwrap_or(Phase::Undefined)
}

/// `RUNNING ("message")`, for findings.
pub(crate) fn describe_resource(r: &admin::Resource) -> String {
    let code = r.agent_error.as_ref().map(|e| format!(" [{}]", e.code)).unwrap_or_default();
    format!("{}{code} ({:?})", phase_of(r).as_str_name(), cut(&r.message, 300))
}

/// `INVALID_ARGUMENT [TERN-A003] "message"`, for findings.
pub(crate) fn describe_error(e: &AgentError) -> String {
    format!("{:?} [{}] {:?}", e.grpc_code(), e.code, cut(&e.message, 300))
}

/// The error is a clean refusal of the handle: `INVALID_ARGUMENT` or `NOT_FOUND`, with a
/// message; not a contained panic, not `INTERNAL`/`UNKNOWN`.
pub(crate) fn clean_refusal(e: &AgentError) -> Result<(), String> {
    if e.code == codes::INTERNAL {
        return Err(format!("the agent panicked or hit an internal bug: {}", describe_error(e)));
    }
    if !matches!(e.class, ErrorClass::InvalidArgument | ErrorClass::NotFound) {
        return Err(format!("expected INVALID_ARGUMENT or NOT_FOUND, got {}", describe_error(e)));
    }
    if e.message.trim().is_empty() {
        return Err(format!("{:?} with an empty message", e.grpc_code()));
    }
    Ok(())
}

pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}
