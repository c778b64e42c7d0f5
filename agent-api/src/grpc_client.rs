//! [`GrpcAgentClient`]: speaks the Flyte agent protocol to any server — a Tern gateway
//! or a flytekit `pyflyte serve connector` process.
use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::{Channel, Endpoint};

use crate::client::AgentClient;
use crate::error::{codes, AgentError};
use crate::proto::flyteidl::service::agent_metadata_service_client::AgentMetadataServiceClient;
use crate::proto::flyteidl::service::async_agent_service_client::AsyncAgentServiceClient;
use crate::proto::flyteidl::service::sync_agent_service_client::SyncAgentServiceClient;
use crate::proto::flyteidl::{admin, core};

/// Largest message accepted from a server (flytekit's own default is 4 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Per-operation deadlines, like propeller's `timeouts` map.
#[derive(Debug, Clone)]
pub struct ClientTimeouts {
    pub connect: Duration,
    pub create: Duration,
    pub get: Duration,
    pub delete: Duration,
    pub execute_sync: Duration,
    pub metadata: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            create: Duration::from_secs(30),
            get: Duration::from_secs(30),
            delete: Duration::from_secs(30),
            execute_sync: Duration::from_secs(300),
            metadata: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct GrpcAgentClient {
    target: String,
    channel: Channel,
    timeouts: ClientTimeouts,
}

impl GrpcAgentClient {
    /// `target` is `host:port` or a full `http://` / `https://` URL. The connection is
    /// made lazily, so an unreachable server shows up as a retryable error per call.
    pub fn connect_lazy(target: &str, timeouts: ClientTimeouts) -> Result<Self, AgentError> {
        let url = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| AgentError::invalid_argument(codes::TRANSPORT, format!("invalid agent endpoint {target:?}: {e}")))?
            .connect_timeout(timeouts.connect)
            .tcp_nodelay(true);
        Ok(Self { target: url, channel: endpoint.connect_lazy(), timeouts })
    }

    fn request<T>(&self, msg: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(timeout);
        r
    }

    fn async_client(&self) -> AsyncAgentServiceClient<Channel> {
        AsyncAgentServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn err(&self, op: &str, status: tonic::Status) -> AgentError {
        let mut e = AgentError::from_status(&status);
        if status.code() == tonic::Code::Unavailable && e.code == codes::REMOTE {
            e.code = codes::TRANSPORT.into();
        }
        e.context(format!("{op} at {}", self.target))
    }
}

#[async_trait]
impl AgentClient for GrpcAgentClient {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn list_agents(&self) -> Result<Vec<admin::Agent>, AgentError> {
        let mut c = AgentMetadataServiceClient::new(self.channel.clone());
        let r = c
            .list_agents(self.request(admin::ListAgentsRequest {}, self.timeouts.metadata))
            .await
            .map_err(|s| self.err("ListAgents", s))?;
        Ok(r.into_inner().agents)
    }

    async fn get_agent(&self, name: &str) -> Result<admin::Agent, AgentError> {
        let mut c = AgentMetadataServiceClient::new(self.channel.clone());
        let r = c
            .get_agent(self.request(admin::GetAgentRequest { name: name.to_owned() }, self.timeouts.metadata))
            .await
            .map_err(|s| self.err("GetAgent", s))?;
        r.into_inner()
            .agent
            .ok_or_else(|| AgentError::not_found(codes::AGENT_NOT_FOUND, format!("GetAgent({name:?}) returned no agent")))
    }

    async fn create_task(&self, request: admin::CreateTaskRequest) -> Result<Vec<u8>, AgentError> {
        let r = self
            .async_client()
            .create_task(self.request(request, self.timeouts.create))
            .await
            .map_err(|s| self.err("CreateTask", s))?;
        Ok(r.into_inner().resource_meta)
    }

    async fn get_task(&self, request: admin::GetTaskRequest) -> Result<admin::Resource, AgentError> {
        let r = self
            .async_client()
            .get_task(self.request(request, self.timeouts.get))
            .await
            .map_err(|s| self.err("GetTask", s))?;
        r.into_inner()
            .resource
            .ok_or_else(|| AgentError::unavailable(codes::REMOTE, format!("GetTask at {} returned no resource", self.target)))
    }

    async fn delete_task(&self, request: admin::DeleteTaskRequest) -> Result<(), AgentError> {
        self.async_client()
            .delete_task(self.request(request, self.timeouts.delete))
            .await
            .map_err(|s| self.err("DeleteTask", s))?;
        Ok(())
    }

    async fn execute_task_sync(
        &self,
        header: admin::CreateRequestHeader,
        inputs: core::LiteralMap,
    ) -> Result<admin::Resource, AgentError> {
        use admin::execute_task_sync_request::Part;
        use admin::execute_task_sync_response::Res;
        let messages = vec![
            admin::ExecuteTaskSyncRequest { part: Some(Part::Header(header)) },
            admin::ExecuteTaskSyncRequest { part: Some(Part::Inputs(inputs)) },
        ];
        let mut c = SyncAgentServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let mut stream = c
            .execute_task_sync(self.request(tokio_stream::iter(messages), self.timeouts.execute_sync))
            .await
            .map_err(|s| self.err("ExecuteTaskSync", s))?
            .into_inner();
        let mut resource: Option<admin::Resource> = None;
        while let Some(msg) = stream.message().await.map_err(|s| self.err("ExecuteTaskSync", s))? {
            match msg.res {
                Some(Res::Header(h)) => resource = h.resource,
                // Streamed outputs (never produced by flytekit) are merged into the resource.
                Some(Res::Outputs(o)) => {
                    let r = resource.get_or_insert_with(Default::default);
                    r.outputs.get_or_insert_with(Default::default).literals.extend(o.literals);
                }
                None => {}
            }
        }
        resource.ok_or_else(|| {
            AgentError::unavailable(codes::REMOTE, format!("ExecuteTaskSync at {} returned no header", self.target))
        })
    }

    async fn get_task_metrics(
        &self,
        request: admin::GetTaskMetricsRequest,
    ) -> Result<admin::GetTaskMetricsResponse, AgentError> {
        let r = self
            .async_client()
            .get_task_metrics(self.request(request, self.timeouts.get))
            .await
            .map_err(|s| self.err("GetTaskMetrics", s))?;
        Ok(r.into_inner())
    }

    async fn get_task_logs(
        &self,
        request: admin::GetTaskLogsRequest,
    ) -> Result<Vec<admin::GetTaskLogsResponse>, AgentError> {
        let mut stream = self
            .async_client()
            .get_task_logs(self.request(request, self.timeouts.get))
            .await
            .map_err(|s| self.err("GetTaskLogs", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream.message().await.map_err(|s| self.err("GetTaskLogs", s))? {
            out.push(m);
        }
        Ok(out)
    }
}
