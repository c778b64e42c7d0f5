//! The traits an agent implements.
//!
//! Required methods are the protocol's core; optional capabilities are defaulted
//! methods returning `UNIMPLEMENTED`, so adding a capability never breaks an agent.
use async_trait::async_trait;

use crate::category::TaskCategory;
use crate::context::TaskContext;
use crate::error::AgentError;
use crate::proto::flyteidl::{admin, core};
use crate::resource_meta::ResourceMeta;
use crate::states::StateTable;
use crate::status::TaskStatus;

/// What a create (async) or execute (sync) call hands the agent.
#[derive(Debug, Clone, Default)]
pub struct TaskRequest {
    /// Boxed: templates are large, and requests move through every layer of a call.
    pub template: Box<core::TaskTemplate>,
    pub inputs: core::LiteralMap,
}

/// A window of metrics asked for by `GetTaskMetrics`.
#[derive(Debug, Clone, Default)]
pub struct MetricsQuery {
    pub queries: Vec<String>,
    pub start_time: Option<prost_types::Timestamp>,
    pub end_time: Option<prost_types::Timestamp>,
    pub step: Option<prost_types::Duration>,
}

/// One page of logs for `GetTaskLogs`.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    pub lines: Vec<admin::LogLine>,
    /// Token for the next page; empty when there is no more.
    pub next_token: String,
}

impl LogPage {
    /// One page of `all`: from line `token` (empty = 0; the tokens this function gives), at
    /// most `max` lines (0 = all). For agents that read a job's whole log and page it.
    pub fn from_lines(all: Vec<admin::LogLine>, token: &str, max: u64) -> Result<Self, AgentError> {
        let start: usize = if token.trim().is_empty() {
            0
        } else {
            token.trim().parse().map_err(|_| {
                AgentError::invalid_argument(
                    crate::error::codes::INVALID_REQUEST,
                    format!("log token {:?} is not one this agent gave", token.chars().take(40).collect::<String>()),
                )
            })?
        };
        let total = all.len();
        let start = start.min(total);
        let end = if max == 0 { total } else { start.saturating_add(usize::try_from(max).unwrap_or(usize::MAX)).min(total) };
        let lines = all.into_iter().skip(start).take(end - start).collect();
        Ok(Self { lines, next_token: if end < total { end.to_string() } else { String::new() } })
    }
}

/// An agent that submits work to a backend and is then polled.
#[async_trait]
pub trait AsyncAgent: Send + Sync + 'static {
    /// Name shown by `ListAgents`/`GetAgent`.
    fn name(&self) -> &str;

    /// The `(task_type, version)` pairs this agent serves.
    fn task_categories(&self) -> Vec<TaskCategory>;

    /// Submits the task and returns a small handle. Must be idempotent for the same
    /// `ctx.idempotency_key`: a second call returns the first job's handle.
    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError>;

    /// Reports the task's status. Task failures are a `TaskStatus` with a failed phase;
    /// an `Err` means the status could not be determined (or the handle was bad).
    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError>;

    /// Cancels the task. Must tolerate a task that already finished or is unknown.
    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError>;

    /// Optional: backend metrics for the task.
    async fn metrics(
        &self,
        _ctx: &TaskContext,
        _meta: &ResourceMeta,
        _query: MetricsQuery,
    ) -> Result<Vec<core::ExecutionMetricResult>, AgentError> {
        Err(AgentError::unimplemented(format!("GetTaskMetrics for {}", self.name())))
    }

    /// Optional: a page of the task's logs (`lines` = max lines wanted, 0 = all).
    async fn logs(
        &self,
        _ctx: &TaskContext,
        _meta: &ResourceMeta,
        _lines: u64,
        _token: &str,
    ) -> Result<LogPage, AgentError> {
        Err(AgentError::unimplemented(format!("GetTaskLogs for {}", self.name())))
    }

    /// Optional: every state the agent's backend reports, mapped to a phase. An agent that
    /// talks to a backend with states declares them here and maps what the backend says
    /// through [`StateTable::classify`] in `get`; the conformance kit checks the table.
    /// `None` (the default): the agent has no backend states of its own.
    fn backend_states(&self) -> Option<&StateTable> {
        None
    }
}

/// An agent that runs the task within one call and returns a terminal status.
#[async_trait]
pub trait SyncAgent: Send + Sync + 'static {
    fn name(&self) -> &str;

    fn task_categories(&self) -> Vec<TaskCategory>;

    async fn execute(&self, ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError>;

    /// Optional: every state the agent's backend reports (see [`AsyncAgent::backend_states`]).
    fn backend_states(&self) -> Option<&StateTable> {
        None
    }
}
