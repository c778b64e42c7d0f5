//! The tonic adapter: serves the three Flyte agent services for any [`AgentClient`]
//! (normally an [`InProcessClient`](crate::dispatch::InProcessClient) over a registry).
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::call::CallContext;
use crate::client::AgentClient;
use crate::error::{codes, AgentError};
use crate::proto::flyteidl::admin;
use crate::proto::flyteidl::service::agent_metadata_service_server::{AgentMetadataService, AgentMetadataServiceServer};
use crate::proto::flyteidl::service::async_agent_service_server::{AsyncAgentService, AsyncAgentServiceServer};
use crate::proto::flyteidl::service::sync_agent_service_server::{SyncAgentService, SyncAgentServiceServer};

/// Largest request accepted by default: 16 MiB (flytekit's server, grpcio's default,
/// refuses anything above 4 MiB; FlytePropeller's client accepts 4 MiB replies).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Full gRPC names of the services, for health and reflection.
pub const SERVICE_NAMES: [&str; 3] = [
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.SyncAgentService",
    "flyteidl.service.AgentMetadataService",
];

/// Serves the agent services for any [`AgentClient`]. Each call runs inside a
/// [`CallContext`] scope (its deadline and the extensions the transport's layers set,
/// such as the authenticated caller), so the client below can see them.
#[derive(Clone)]
pub struct AgentGrpcService {
    inner: Arc<dyn AgentClient>,
    max_request_bytes: usize,
}

impl AgentGrpcService {
    pub fn new(inner: Arc<dyn AgentClient>) -> Self {
        Self { inner, max_request_bytes: DEFAULT_MAX_REQUEST_BYTES }
    }

    /// Refuse requests larger than `bytes` (answered `OUT_OF_RANGE` by tonic, naming the size).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    pub fn async_server(&self) -> AsyncAgentServiceServer<Self> {
        AsyncAgentServiceServer::new(self.clone()).max_decoding_message_size(self.max_request_bytes)
    }

    pub fn sync_server(&self) -> SyncAgentServiceServer<Self> {
        SyncAgentServiceServer::new(self.clone()).max_decoding_message_size(self.max_request_bytes)
    }

    pub fn metadata_server(&self) -> AgentMetadataServiceServer<Self> {
        AgentMetadataServiceServer::new(self.clone()).max_decoding_message_size(self.max_request_bytes)
    }
}

/// Splits a request into its call context and message.
fn open<T>(request: Request<T>) -> (CallContext, T) {
    let (metadata, extensions, message) = request.into_parts();
    (CallContext::from_parts(&metadata, extensions), message)
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
        let (call, request) = open(request);
        let resource_meta = call.scope(self.inner.create_task(request)).await.map_err(log_err("CreateTask"))?;
        Ok(Response::new(admin::CreateTaskResponse { resource_meta }))
    }

    async fn get_task(&self, request: Request<admin::GetTaskRequest>) -> Result<Response<admin::GetTaskResponse>, Status> {
        let (call, request) = open(request);
        let resource = call.scope(self.inner.get_task(request)).await.map_err(log_err("GetTask"))?;
        Ok(Response::new(admin::GetTaskResponse { resource: Some(resource) }))
    }

    async fn delete_task(
        &self,
        request: Request<admin::DeleteTaskRequest>,
    ) -> Result<Response<admin::DeleteTaskResponse>, Status> {
        let (call, request) = open(request);
        call.scope(self.inner.delete_task(request)).await.map_err(log_err("DeleteTask"))?;
        Ok(Response::new(admin::DeleteTaskResponse {}))
    }

    async fn get_task_metrics(
        &self,
        request: Request<admin::GetTaskMetricsRequest>,
    ) -> Result<Response<admin::GetTaskMetricsResponse>, Status> {
        let (call, request) = open(request);
        let r = call.scope(self.inner.get_task_metrics(request)).await.map_err(log_err("GetTaskMetrics"))?;
        Ok(Response::new(r))
    }

    type GetTaskLogsStream = BoxStream<admin::GetTaskLogsResponse>;

    async fn get_task_logs(
        &self,
        request: Request<admin::GetTaskLogsRequest>,
    ) -> Result<Response<Self::GetTaskLogsStream>, Status> {
        let (call, request) = open(request);
        let parts = call.scope(self.inner.get_task_logs(request)).await.map_err(log_err("GetTaskLogs"))?;
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
        let (call, mut stream) = open(request);
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
        let resource = call.scope(self.inner.execute_task_sync(header, inputs)).await.map_err(log_err("ExecuteTaskSync"))?;
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
        let (call, request) = open(request);
        let agent = call.scope(self.inner.get_agent(&request.name)).await.map_err(log_err("GetAgent"))?;
        Ok(Response::new(admin::GetAgentResponse { agent: Some(agent) }))
    }

    async fn list_agents(
        &self,
        request: Request<admin::ListAgentsRequest>,
    ) -> Result<Response<admin::ListAgentsResponse>, Status> {
        let (call, _) = open(request);
        let agents = call.scope(self.inner.list_agents()).await.map_err(log_err("ListAgents"))?;
        Ok(Response::new(admin::ListAgentsResponse { agents }))
    }
}
