//! Call-scoped admission: a slot for each create/execute call of an agent whose work runs
//! elsewhere. Polls (get, delete, logs, metrics) are never held back.
use std::sync::Arc;

use async_trait::async_trait;
use tern_agent_api::admission::Admission;
use tern_agent_api::agent::{LogPage, MetricsQuery};
use tern_agent_api::prelude::*;

pub struct AdmittedAsync {
    pub inner: Arc<dyn AsyncAgent>,
    pub admission: Admission,
}

#[async_trait]
impl AsyncAgent for AdmittedAsync {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.inner.task_categories()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let _slot = self.admission.admit_call().await?;
        self.inner.create(ctx, task).await
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        self.inner.get(ctx, meta).await
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        self.inner.delete(ctx, meta).await
    }

    async fn metrics(
        &self,
        ctx: &TaskContext,
        meta: &ResourceMeta,
        query: MetricsQuery,
    ) -> Result<Vec<core::ExecutionMetricResult>, AgentError> {
        self.inner.metrics(ctx, meta, query).await
    }

    async fn logs(&self, ctx: &TaskContext, meta: &ResourceMeta, lines: u64, token: &str) -> Result<LogPage, AgentError> {
        self.inner.logs(ctx, meta, lines, token).await
    }

    fn backend_states(&self) -> Option<&StateTable> {
        self.inner.backend_states()
    }
}

pub struct AdmittedSync {
    pub inner: Arc<dyn SyncAgent>,
    pub admission: Admission,
}

#[async_trait]
impl SyncAgent for AdmittedSync {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.inner.task_categories()
    }

    async fn execute(&self, ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        let _slot = self.admission.admit_call().await?;
        self.inner.execute(ctx, task).await
    }

    fn backend_states(&self) -> Option<&StateTable> {
        self.inner.backend_states()
    }
}

/// `handle` with a slot taken per create/execute call.
pub fn admit_calls(handle: AgentHandle, admission: Admission) -> AgentHandle {
    match handle {
        AgentHandle::Async(inner) => AgentHandle::Async(Arc::new(AdmittedAsync { inner, admission })),
        AgentHandle::Sync(inner) => AgentHandle::Sync(Arc::new(AdmittedSync { inner, admission })),
    }
}
