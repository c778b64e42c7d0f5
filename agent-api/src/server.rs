//! The tonic adapter: serves the three Flyte agent services for any [`AgentClient`]
//! (normally an [`InProcessClient`](crate::dispatch::InProcessClient) over a registry).
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::client::AgentClient;
use crate::error::{codes, AgentError};
use crate::proto::flyteidl::admin;
use crate::proto::flyteidl::service::agent_metadata_service_server::{AgentMetadataService, AgentMetadataServiceServer};
use crate::proto::flyteidl::service::async_agent_service_server::{AsyncAgentService, AsyncAgentServiceServer};
use crate::proto::flyteidl::service::sync_agent_service_server::{SyncAgentService, SyncAgentServiceServer};

/// Largest request accepted (flytekit's server refuses anything above 4 MiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Full gRPC names of the services, for health and reflection.
pub const SERVICE_NAMES: [&str; 3] = [
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.SyncAgentService",
    "flyteidl.service.AgentMetadataService",
];

#[derive(Clone)]
pub struct AgentGrpcService {
    inner: Arc<dyn AgentClient>,
}

impl AgentGrpcService {
    pub fn new(inner: Arc<dyn AgentClient>) -> Self {
        Self { inner }
    }

    pub fn async_server(&self) -> AsyncAgentServiceServer<Self> {
        AsyncAgentServiceServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES)
    }

    pub fn sync_server(&self) -> SyncAgentServiceServer<Self> {
        SyncAgentServiceServer::new(self.clone()).max_decoding_message_size(MAX_REQUEST_BYTES)
    }

    pub fn metadata_server(&self) -> AgentMetadataServiceServer<Self> {
        AgentMetadataServiceServer::new(self.clone())
    }
}

fn log_err(op: &'static str) -> impl Fn(AgentError) -> Status {
    move |e| {
        if e.origin == crate::error::ErrorOrigin::System {
            tracing::warn!(op, code = %e.code, error = %e.message, "agent call failed");
        } else {
            tracing::debug!(op, code = %e.code, error = %e.message, "agent call rejected");
        }
        e.into_status()
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AsyncAgentService for AgentGrpcService {
    async fn create_task(
        &self,
        request: Request<admin::CreateTaskRequest>,
    ) -> Result<Response<admin::CreateTaskResponse>, Status> {
        let resource_meta = self.inner.create_task(request.into_inner()).await.map_err(log_err("CreateTask"))?;
        Ok(Response::new(admin::CreateTaskResponse { resource_meta }))
    }

    async fn get_task(&self, request: Request<admin::GetTaskRequest>) -> Result<Response<admin::GetTaskResponse>, Status> {
        let resource = self.inner.get_task(request.into_inner()).await.map_err(log_err("GetTask"))?;
        Ok(Response::new(admin::GetTaskResponse { resource: Some(resource) }))
    }

    async fn delete_task(
        &self,
        request: Request<admin::DeleteTaskRequest>,
    ) -> Result<Response<admin::DeleteTaskResponse>, Status> {
        self.inner.delete_task(request.into_inner()).await.map_err(log_err("DeleteTask"))?;
        Ok(Response::new(admin::DeleteTaskResponse {}))
    }

    async fn get_task_metrics(
        &self,
        request: Request<admin::GetTaskMetricsRequest>,
    ) -> Result<Response<admin::GetTaskMetricsResponse>, Status> {
        let r = self.inner.get_task_metrics(request.into_inner()).await.map_err(log_err("GetTaskMetrics"))?;
        Ok(Response::new(r))
    }

    type GetTaskLogsStream = BoxStream<admin::GetTaskLogsResponse>;

    async fn get_task_logs(
        &self,
        request: Request<admin::GetTaskLogsRequest>,
    ) -> Result<Response<Self::GetTaskLogsStream>, Status> {
        let parts = self.inner.get_task_logs(request.into_inner()).await.map_err(log_err("GetTaskLogs"))?;
        Ok(Response::new(Box::pin(tokio_stream::iter(parts.into_iter().map(Ok)))))
    }
}

#[tonic::async_trait]
impl SyncAgentService for AgentGrpcService {
    type ExecuteTaskSyncStream = BoxStream<admin::ExecuteTaskSyncResponse>;

    /// Protocol: the client sends a header message, then an inputs message.
    async fn execute_task_sync(
        &self,
        request: Request<Streaming<admin::ExecuteTaskSyncRequest>>,
    ) -> Result<Response<Self::ExecuteTaskSyncStream>, Status> {
        use admin::execute_task_sync_request::Part;
        let mut stream = request.into_inner();
        let bad = |m: &str| AgentError::invalid_argument(codes::INVALID_REQUEST, m.to_owned()).into_status();
        let header = match stream.message().await? {
            Some(admin::ExecuteTaskSyncRequest { part: Some(Part::Header(h)) }) => h,
            Some(_) => return Err(bad("ExecuteTaskSync: the first message must be the header")),
            None => return Err(bad("ExecuteTaskSync: the stream ended before the header")),
        };
        let inputs = match stream.message().await? {
            Some(admin::ExecuteTaskSyncRequest { part: Some(Part::Inputs(i)) }) => i,
            Some(_) => return Err(bad("ExecuteTaskSync: the second message must be the inputs")),
            None => Default::default(),
        };
        let resource = self.inner.execute_task_sync(header, inputs).await.map_err(log_err("ExecuteTaskSync"))?;
        let reply = admin::ExecuteTaskSyncResponse {
            res: Some(admin::execute_task_sync_response::Res::Header(admin::ExecuteTaskSyncResponseHeader {
                resource: Some(resource),
            })),
        };
        Ok(Response::new(Box::pin(tokio_stream::iter([Ok(reply)]))))
    }
}

#[tonic::async_trait]
impl AgentMetadataService for AgentGrpcService {
    async fn get_agent(&self, request: Request<admin::GetAgentRequest>) -> Result<Response<admin::GetAgentResponse>, Status> {
        let agent = self.inner.get_agent(&request.into_inner().name).await.map_err(log_err("GetAgent"))?;
        Ok(Response::new(admin::GetAgentResponse { agent: Some(agent) }))
    }

    async fn list_agents(
        &self,
        _request: Request<admin::ListAgentsRequest>,
    ) -> Result<Response<admin::ListAgentsResponse>, Status> {
        let agents = self.inner.list_agents().await.map_err(log_err("ListAgents"))?;
        Ok(Response::new(admin::ListAgentsResponse { agents }))
    }
}
