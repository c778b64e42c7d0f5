//! Host side of a plugin agent: an ordinary [`AsyncAgent`] / [`SyncAgent`] that forwards
//! each call over the ABI (request bytes out, a completion callback back), so the registry,
//! admission, dispatch and the gRPC server treat it like any compiled-in agent.
use std::ffi::c_void;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prost::Message;
use tern_agent_api::agent::{LogPage, MetricsQuery};
use tern_agent_api::plugin::abi::op;
use tern_agent_api::plugin::reply;
use tern_agent_api::plugin::wire::{plugin_codes, CallRequest, LogsReply, MetricsReply, StatusReply};
use tern_agent_api::prelude::*;
use tern_agent_api::states::StateTable;

use super::loader::AgentFns;

/// One built instance of a plugin agent.
pub struct PluginInstance {
    fns: AgentFns,
    instance: *mut c_void,
    /// `plugin <name> (<file>)`, for messages.
    label: String,
    name: String,
    categories: Vec<TaskCategory>,
    /// The plugin agent's state table, rebuilt on this side.
    states: Option<StateTable>,
}

// SAFETY: the ABI requires `call` and `drop_instance` to accept an instance from any thread
// (the plugin glue keeps it in an `Arc`).
unsafe impl Send for PluginInstance {}
// SAFETY: as above; `&PluginInstance` only passes the pointer to `call`.
unsafe impl Sync for PluginInstance {}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        // SAFETY: `instance` came from this agent's `init` and is dropped only here.
        unsafe { (self.fns.drop_instance)(self.instance) };
    }
}

impl PluginInstance {
    /// # Safety
    /// `instance` must be a live instance made by `fns.init`, owned by the result from now on.
    pub unsafe fn new(
        fns: AgentFns,
        instance: *mut c_void,
        label: String,
        name: String,
        categories: Vec<TaskCategory>,
        states: Option<StateTable>,
    ) -> Self {
        Self { fns, instance, label, name, categories, states }
    }

    async fn call(&self, op: u32, request: CallRequest) -> Result<Vec<u8>, AgentError> {
        let rx = {
            let bytes = request.encode_to_vec();
            let (reply, ctx, rx) = reply::channel();
            // SAFETY: a live instance of this declaration; `bytes` is borrowed for the call;
            // the reply pair answers once (the plugin's glue guarantees it).
            unsafe { (self.fns.call)(self.instance, op, bytes.as_ptr(), bytes.len(), reply, ctx) };
            rx
        };
        reply::into_result(rx.await, &self.label)
    }

    fn undecodable(&self, what: &str, e: prost::DecodeError) -> AgentError {
        AgentError::internal(plugin_codes::PROTOCOL, format!("{} answered a {what} that cannot be decoded: {e}", self.label))
    }

    async fn status(&self, op: u32, request: CallRequest) -> Result<TaskStatus, AgentError> {
        let bytes = self.call(op, request).await?;
        StatusReply::decode(bytes.as_slice()).map(StatusReply::into_status).map_err(|e| self.undecodable("status", e))
    }
}

/// The per-call context the plugin rebuilds its `TaskContext` from.
fn request(ctx: &TaskContext) -> CallRequest {
    CallRequest {
        output_prefix: ctx.output_prefix.clone(),
        execution: ctx.execution.as_deref().cloned(),
        idempotency_key: ctx.idempotency_key.as_ref().map(|k| k.as_str().to_owned()).unwrap_or_default(),
        deadline_ms: ctx
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()).as_millis().min(u64::MAX as u128) as u64),
        ..Default::default()
    }
}

fn with_task(ctx: &TaskContext, task: TaskRequest) -> CallRequest {
    CallRequest { template: Some(*task.template), inputs: Some(task.inputs), ..request(ctx) }
}

fn with_meta(ctx: &TaskContext, meta: &ResourceMeta) -> CallRequest {
    CallRequest { resource_meta: meta.as_bytes().to_vec(), ..request(ctx) }
}

/// An async plugin agent.
pub struct PluginAsyncAgent(pub Arc<PluginInstance>);

#[async_trait]
impl AsyncAgent for PluginAsyncAgent {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.0.categories.clone()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        self.0.call(op::CREATE, with_task(ctx, task)).await.map(ResourceMeta::from_bytes)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        self.0.status(op::GET, with_meta(ctx, meta)).await
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        self.0.call(op::DELETE, with_meta(ctx, meta)).await.map(|_| ())
    }

    async fn metrics(
        &self,
        ctx: &TaskContext,
        meta: &ResourceMeta,
        query: MetricsQuery,
    ) -> Result<Vec<core::ExecutionMetricResult>, AgentError> {
        let request = CallRequest {
            queries: query.queries,
            start_time: query.start_time,
            end_time: query.end_time,
            step: query.step,
            ..with_meta(ctx, meta)
        };
        let bytes = self.0.call(op::METRICS, request).await?;
        MetricsReply::decode(bytes.as_slice()).map(|m| m.results).map_err(|e| self.0.undecodable("metrics reply", e))
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        let request = CallRequest { log_lines: lines, log_token: token.to_owned(), ..with_meta(ctx, meta) };
        let bytes = self.0.call(op::LOGS, request).await?;
        let reply = LogsReply::decode(bytes.as_slice()).map_err(|e| self.0.undecodable("logs reply", e))?;
        Ok(LogPage { lines: reply.lines, next_token: reply.next_token })
    }

    fn backend_states(&self) -> Option<&StateTable> {
        self.0.states.as_ref()
    }
}

/// A sync plugin agent.
pub struct PluginSyncAgent(pub Arc<PluginInstance>);

#[async_trait]
impl SyncAgent for PluginSyncAgent {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.0.categories.clone()
    }

    async fn execute(&self, ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        self.0.status(op::EXECUTE, with_task(ctx, task)).await
    }

    fn backend_states(&self) -> Option<&StateTable> {
        self.0.states.as_ref()
    }
}
