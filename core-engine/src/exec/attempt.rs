//! One node attempt, end to end.
//!
//! Order matters for idempotency: the intent row is written before CreateTask, the
//! resource_meta right after it, the inputs before either. A crash anywhere leaves a
//! state `recover` can resume without launching a second job.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tern_agent_api::client::AgentClient;
use tern_agent_api::datastore::join_uri;
use tern_agent_api::error::{AgentError, ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::outputs::check_outputs;
use tern_agent_api::status::{Phase, TaskStatus};
use tern_agent_api::{admin, core};

use super::{render, NodeStart, RunCtx, TaskExecutionIntent, NAMESPACE};
use crate::compile::{CompiledNode, ExecutionMode};
use crate::error::codes;
use crate::exec::events::ExecutionEvent;
use crate::store::{AttemptPhase, NewAttempt, RecordedError, StoreError};

/// How an attempt ended.
pub(crate) enum AttemptEnd {
    Succeeded(core::LiteralMap),
    /// Failed; retryable or not per the error.
    Failed(AgentError),
    /// Cancelled because another node failed.
    Aborted(AgentError),
}

enum Stop {
    Error(AgentError),
    Cancelled,
}

impl From<AgentError> for Stop {
    fn from(e: AgentError) -> Self {
        Self::Error(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Self::Error(AgentError::internal(e.code(), e.to_string()))
    }
}

impl From<tern_agent_api::datastore::DataStoreError> for Stop {
    fn from(e: tern_agent_api::datastore::DataStoreError) -> Self {
        Self::Error(e.into())
    }
}

/// A node and the inputs assembled for it.
pub(crate) struct NodeCtx {
    pub run: Arc<RunCtx>,
    pub node: CompiledNode,
    pub inputs: core::LiteralMap,
}

impl NodeCtx {
    /// `<data root>/<execution id>/<node id>/<attempt>`
    pub fn output_prefix(&self, attempt: u32) -> String {
        join_uri(&self.run.data_root, &format!("{}/{}/{attempt}", self.run.execution_id, self.node.id))
    }

    /// The node's template as propeller would send it for this attempt: container
    /// placeholders rendered (see `render`).
    fn rendered_template(&self, attempt: u32) -> core::TaskTemplate {
        let mut template = self.node.template.clone();
        let paths = render::AttemptPaths {
            prefix: self.output_prefix(attempt),
            previous: attempt.checked_sub(1).map(|a| self.output_prefix(a)),
            unique_key: render::unique_key(&self.run.execution_id, &self.node.id, attempt),
        };
        render::render_container(&mut template, &paths, &self.inputs);
        template
    }

    fn client(&self) -> Arc<dyn AgentClient> {
        self.run.router.client_for(&self.node.category.name).clone()
    }

    fn category(&self) -> admin::TaskCategory {
        self.node.category.to_proto()
    }
}

pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{s}s")
    }
}

/// Runs one attempt and records how it ended.
pub(crate) async fn run_attempt(cx: &NodeCtx, start: NodeStart) -> AttemptEnd {
    let attempt = start.attempt();
    let intent = match &start {
        NodeStart::Fresh { .. } => {
            TaskExecutionIntent::new(cx.node.template.id.as_ref(), &cx.run.execution_id, &cx.node.id, attempt)
        }
        NodeStart::Recreate { intent, .. } | NodeStart::Resume { intent, .. } => intent.clone(),
    };
    let mut meta_slot: Option<Vec<u8>> = start_meta(&start);
    let body = execute(cx, &start, &intent, &mut meta_slot);
    let result = match cx.node.timeout {
        Some(limit) => match tokio::time::timeout(limit, body).await {
            Ok(r) => r,
            Err(_) => {
                let e = AgentError::new(
                    codes::NODE_TIMED_OUT,
                    format!("timed out after {} (task timeout)", human(limit)),
                    ErrorOrigin::User,
                    Retry::Permanent,
                    ErrorClass::DeadlineExceeded,
                );
                cancel_remote(cx, meta_slot.as_deref()).await;
                Err(Stop::Error(e))
            }
        },
        None => body.await,
    };
    let (end, phase) = match result {
        Ok(outputs) => (AttemptEnd::Succeeded(outputs), AttemptPhase::Succeeded),
        Err(Stop::Cancelled) => {
            cancel_remote(cx, meta_slot.as_deref()).await;
            let e = AgentError::new(
                codes::NODE_CANCELLED,
                "cancelled because another node failed",
                ErrorOrigin::System,
                Retry::Permanent,
                ErrorClass::FailedPrecondition,
            );
            (AttemptEnd::Aborted(e), AttemptPhase::Aborted)
        }
        Err(Stop::Error(e)) => {
            let phase = if e.is_retryable() { AttemptPhase::RetryableFailed } else { AttemptPhase::Failed };
            (AttemptEnd::Failed(e), phase)
        }
    };
    let recorded = match &end {
        AttemptEnd::Failed(e) | AttemptEnd::Aborted(e) => {
            Some(RecordedError { code: e.code.to_string(), message: e.message.clone() })
        }
        AttemptEnd::Succeeded(_) => None,
    };
    if let Err(e) =
        cx.run.store.set_attempt_phase(&cx.run.execution_id, &cx.node.id, attempt, phase, recorded.as_ref()).await
    {
        tracing::error!(node = %cx.node.id, attempt, error = %e, "cannot record attempt phase");
    }
    end
}

fn start_meta(start: &NodeStart) -> Option<Vec<u8>> {
    match start {
        NodeStart::Resume { meta, .. } => Some(meta.clone()),
        _ => None,
    }
}

/// Best-effort DeleteTask for an attempt being abandoned (timeout, cancellation).
async fn cancel_remote(cx: &NodeCtx, meta: Option<&[u8]>) {
    let Some(meta) = meta else { return };
    if cx.node.mode == Some(ExecutionMode::Sync) {
        return;
    }
    #[allow(deprecated)]
    let req = admin::DeleteTaskRequest {
        task_type: cx.node.category.name.clone(),
        resource_meta: meta.to_vec(),
        task_category: Some(cx.category()),
    };
    if let Err(e) = cx.client().delete_task(req).await {
        tracing::warn!(node = %cx.node.id, error = %e, "DeleteTask failed");
    }
}

async fn execute(
    cx: &NodeCtx,
    start: &NodeStart,
    intent: &TaskExecutionIntent,
    meta_slot: &mut Option<Vec<u8>>,
) -> Result<core::LiteralMap, Stop> {
    let run = &cx.run;
    let node = &cx.node;
    let attempt = start.attempt();
    let prefix = cx.output_prefix(attempt);
    let outputs_uri = join_uri(&prefix, "outputs.pb");
    let client = cx.client();
    let metadata = admin::TaskExecutionMetadata {
        task_execution_id: Some(intent.to_proto()),
        namespace: NAMESPACE.into(),
        max_attempts: i32::try_from(node.retries.saturating_add(1)).unwrap_or(i32::MAX),
        ..Default::default()
    };
    if *run.cancel.borrow() {
        return Err(Stop::Cancelled);
    }
    run.data.write(&join_uri(&prefix, "inputs.pb"), Bytes::from(cx.inputs.encode_to_vec())).await?;
    let template = cx.rendered_template(attempt);
    if !matches!(start, NodeStart::Resume { .. }) {
        // The intent, before the agent hears of the task.
        run.store
            .record_intent(&NewAttempt {
                execution_id: &run.execution_id,
                node_id: &node.id,
                attempt,
                task_type: &node.category.name,
                task_version: node.category.version,
                agent_endpoint: &client.describe(),
                intent: &intent.to_json(),
                output_uri: &outputs_uri,
            })
            .await?;
    }
    let status = match node.mode.unwrap_or(ExecutionMode::Async) {
        ExecutionMode::Sync => {
            run.store.set_attempt_phase(&run.execution_id, &node.id, attempt, AttemptPhase::Running, None).await?;
            emit_running(cx, attempt, String::new()).await;
            let header = admin::CreateRequestHeader {
                template: Some(template.into()),
                output_prefix: prefix.clone(),
                task_execution_metadata: Some(metadata.into()),
                max_dataset_size_bytes: 0,
            };
            TaskStatus::from_resource(client.execute_task_sync(header, cx.inputs.clone()).await?)
        }
        ExecutionMode::Async => {
            let meta = match start {
                NodeStart::Resume { meta, .. } => meta.clone(),
                _ => {
                    let req = admin::CreateTaskRequest {
                        inputs: Some(cx.inputs.clone()),
                        template: Some(template.into()),
                        output_prefix: prefix.clone(),
                        task_execution_metadata: Some(metadata.into()),
                    };
                    let meta = client.create_task(req).await?;
                    run.store.record_resource_meta(&run.execution_id, &node.id, attempt, &meta).await?;
                    meta
                }
            };
            *meta_slot = Some(meta.clone());
            emit_running(cx, attempt, String::new()).await;
            poll(cx, client.as_ref(), &prefix, meta, attempt).await?
        }
    };
    if status.phase != Phase::Succeeded {
        let mut e = status.error.clone().unwrap_or_else(|| {
            AgentError::internal(codes::NODE_INTERNAL, format!("task ended in phase {}", status.phase.as_str_name()))
        });
        // Tern agents put "[CODE] " in Resource.message; the code is kept separately.
        if let Some(rest) = e.message.strip_prefix(&format!("[{}] ", e.code)) {
            e.message = rest.to_owned();
        }
        return Err(Stop::Error(e));
    }
    let outputs = collect_outputs(cx, status, &outputs_uri).await?;
    Ok(outputs)
}

async fn emit_running(cx: &NodeCtx, attempt: u32, message: String) {
    cx.run.events.emit(ExecutionEvent::NodeRunning { node: cx.node.id.clone(), attempt, message }).await;
}

/// GetTask with exponential backoff until a terminal phase (or cancellation).
async fn poll(
    cx: &NodeCtx,
    client: &dyn AgentClient,
    prefix: &str,
    meta: Vec<u8>,
    attempt: u32,
) -> Result<TaskStatus, Stop> {
    let cfg = &cx.run.poll;
    let mut cancel = cx.run.cancel.clone();
    let mut delay = cfg.initial;
    let mut failures = 0u32;
    let mut last_message = String::new();
    loop {
        #[allow(deprecated)]
        let req = admin::GetTaskRequest {
            task_type: cx.node.category.name.clone(),
            resource_meta: meta.clone(),
            task_category: Some(cx.category()),
            output_prefix: prefix.to_owned(),
        };
        match client.get_task(req).await {
            Ok(resource) => {
                failures = 0;
                let status = TaskStatus::from_resource(resource);
                if status.is_terminal() {
                    return Ok(status);
                }
                if !status.message.is_empty() && status.message != last_message {
                    last_message = status.message.clone();
                    emit_running(cx, attempt, status.message.clone()).await;
                }
            }
            Err(e) if e.is_retryable() && failures < cfg.max_get_failures => {
                failures += 1;
                tracing::warn!(node = %cx.node.id, failures, error = %e, "GetTask failed; polling again");
            }
            Err(e) => return Err(Stop::Error(e)),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            changed = cancel.changed() => {
                if changed.is_err() {
                    // The execution's driver is gone (its future was dropped: a crash or an
                    // interrupted run) and this task is being aborted with it. Recording the
                    // attempt as cancelled (and sending DeleteTask) would make an interruption
                    // look like a decision and stop `recover` from resuming it: park instead.
                    std::future::pending::<()>().await;
                }
                if *cancel.borrow() {
                    return Err(Stop::Cancelled);
                }
            }
        }
        delay = cfg.next(delay);
    }
}

/// Outputs from the Resource, or (when it carries none and the interface declares some)
/// from `<prefix>/outputs.pb`, as propeller reads them; checked against the interface
/// and written to `outputs.pb` unless the agent already did.
async fn collect_outputs(cx: &NodeCtx, status: TaskStatus, outputs_uri: &str) -> Result<core::LiteralMap, Stop> {
    let data = &cx.run.data;
    let interface = cx.node.template.interface.as_ref();
    let declares = interface.and_then(|i| i.outputs.as_ref()).is_some_and(|o| !o.variables.is_empty());
    let (outputs, on_disk) = match status.outputs {
        Some(o) if !o.literals.is_empty() || !declares => (o, false),
        _ if declares => {
            let bytes = data.read(outputs_uri).await.map_err(|e| {
                AgentError::internal(
                    tern_agent_api::error::codes::OUTPUT_MISMATCH,
                    format!("the task succeeded without outputs in its Resource and {outputs_uri} cannot be read: {e}"),
                )
            })?;
            let map = core::LiteralMap::decode(bytes).map_err(|e| {
                AgentError::internal(
                    tern_agent_api::error::codes::OUTPUT_MISMATCH,
                    format!("{outputs_uri} is not a LiteralMap: {e}"),
                )
            })?;
            (map, true)
        }
        _ => (core::LiteralMap::default(), false),
    };
    check_outputs(interface, &outputs)?;
    if !on_disk && !data.exists(outputs_uri).await? {
        data.write(outputs_uri, Bytes::from(outputs.encode_to_vec())).await?;
    }
    Ok(outputs)
}
