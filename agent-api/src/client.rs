//! [`AgentClient`]: the one way callers (the engine, the gateway's router, tests)
//! reach an agent, whether it runs in this process or behind gRPC.
use async_trait::async_trait;

use crate::error::AgentError;
use crate::proto::flyteidl::{admin, core};

#[async_trait]
pub trait AgentClient: Send + Sync {
    /// Where this client sends calls, for messages (`in-process`, `grpc://host:port`).
    fn describe(&self) -> String;

    async fn list_agents(&self) -> Result<Vec<admin::Agent>, AgentError>;

    async fn get_agent(&self, name: &str) -> Result<admin::Agent, AgentError>;

    /// Returns the agent's `resource_meta`.
    async fn create_task(&self, request: admin::CreateTaskRequest) -> Result<Vec<u8>, AgentError>;

    async fn get_task(&self, request: admin::GetTaskRequest) -> Result<admin::Resource, AgentError>;

    async fn delete_task(&self, request: admin::DeleteTaskRequest) -> Result<(), AgentError>;

    /// Sends the header then the inputs, returns the terminal `Resource`.
    async fn execute_task_sync(
        &self,
        header: admin::CreateRequestHeader,
        inputs: core::LiteralMap,
    ) -> Result<admin::Resource, AgentError>;

    async fn get_task_metrics(
        &self,
        request: admin::GetTaskMetricsRequest,
    ) -> Result<admin::GetTaskMetricsResponse, AgentError>;

    /// The whole log stream, collected.
    async fn get_task_logs(
        &self,
        request: admin::GetTaskLogsRequest,
    ) -> Result<Vec<admin::GetTaskLogsResponse>, AgentError>;
}
