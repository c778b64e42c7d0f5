//! [`GrpcAgentClient`]: speaks the Flyte agent protocol to any server — a Tern gateway
//! or a flytekit `pyflyte serve connector` process — in plaintext (`http://`, `host:port`)
//! or over TLS (`https://`: the system's roots plus an optional CA, optional client
//! certificate for mTLS), optionally with a bearer token.
use std::time::Duration;

use async_trait::async_trait;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::secrets::Secret;

use crate::client::AgentClient;
use crate::error::{codes, AgentError};
use crate::proto::flyteidl::service::agent_metadata_service_client::AgentMetadataServiceClient;
use crate::proto::flyteidl::service::async_agent_service_client::AsyncAgentServiceClient;
use crate::proto::flyteidl::service::sync_agent_service_client::SyncAgentServiceClient;
use crate::proto::flyteidl::{admin, core};

/// Largest message accepted from a server by default (flytekit's own default is 4 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

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

/// TLS material for `https://` endpoints. The system's root certificates are always
/// trusted; `ca_pem` adds a private CA.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificate(s) to trust besides the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and private key presented to servers that require mTLS.
    pub identity: Option<(Vec<u8>, Secret)>,
    /// Server name to verify instead of the URL's host.
    pub domain: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

/// How to reach one server.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub timeouts: ClientTimeouts,
    pub tls: ClientTls,
    /// Sent as `authorization: Bearer <token>` on every call.
    pub token: Option<Secret>,
    /// Largest message accepted from the server (default 64 MiB).
    pub max_message_bytes: Option<usize>,
}

#[derive(Clone)]
pub struct GrpcAgentClient {
    target: String,
    channel: Channel,
    timeouts: ClientTimeouts,
    authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    max_message_bytes: usize,
}

impl GrpcAgentClient {
    /// `target` is `host:port` or a full `http://` / `https://` URL. The connection is
    /// made lazily, so an unreachable server shows up as a retryable error per call.
    pub fn connect_lazy(target: &str, timeouts: ClientTimeouts) -> Result<Self, AgentError> {
        Self::connect_lazy_with(target, ClientOptions { timeouts, ..Default::default() })
    }

    /// [`connect_lazy`](Self::connect_lazy) with TLS material, a token and limits.
    pub fn connect_lazy_with(target: &str, options: ClientOptions) -> Result<Self, AgentError> {
        let bad = |m: String| AgentError::invalid_argument(codes::TRANSPORT, m);
        let url = if target.contains("://") { target.to_owned() } else { format!("http://{target}") };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| bad(format!("invalid agent endpoint {target:?}: {e}")))?
            .connect_timeout(options.timeouts.connect)
            .tcp_nodelay(true);
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &options.tls.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &options.tls.identity {
                tls = tls.identity(Identity::from_pem(cert, key.expose()));
            }
            if let Some(domain) = &options.tls.domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| bad(format!("TLS settings for {target:?}: {e}")))?;
        } else if options.tls.ca_pem.is_some() || options.tls.identity.is_some() {
            return Err(bad(format!(
                "TLS settings are given for {target:?}, which is not an https:// endpoint; write https://{}",
                target.trim_start_matches("http://")
            )));
        }
        let authorization = match &options.token {
            Some(token) => Some(
                MetadataValue::try_from(format!("Bearer {}", token.expose()))
                    .map_err(|_| bad("the bearer token contains characters not allowed in a header".into()))?,
            ),
            None => None,
        };
        Ok(Self {
            target: url,
            channel: endpoint.connect_lazy(),
            timeouts: options.timeouts,
            authorization,
            max_message_bytes: options.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
        })
    }

    /// A request with the operation's deadline, shortened to the deadline of the call
    /// being served when there is one (deadlines propagate through gateways).
    fn request<T>(&self, msg: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        let timeout = match crate::call::CallContext::current_deadline() {
            Some(d) => timeout.min(d.saturating_duration_since(std::time::Instant::now()).max(Duration::from_millis(1))),
            None => timeout,
        };
        r.set_timeout(timeout);
        if let Some(auth) = &self.authorization {
            r.metadata_mut().insert("authorization", auth.clone());
        }
        r
    }

    /// `grpc.health.v1` check of `service` (`Ok(false)`: not serving; `Ok(true)`: serving;
    /// a server without the health service or without `service` registered is probed with
    /// `ListAgents` instead).
    pub async fn check_health(&self, service: &str) -> Result<bool, AgentError> {
        use tonic_health::pb::health_check_response::ServingStatus;
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        let request = self.request(tonic_health::pb::HealthCheckRequest { service: service.to_owned() }, self.timeouts.metadata);
        match health.check(request).await {
            Ok(r) => Ok(r.into_inner().status == ServingStatus::Serving as i32),
            Err(s) if matches!(s.code(), tonic::Code::Unimplemented | tonic::Code::NotFound) => {
                self.list_agents().await.map(|_| true)
            }
            Err(s) => Err(self.err("health check", s)),
        }
    }

    fn async_client(&self) -> AsyncAgentServiceClient<Channel> {
        AsyncAgentServiceClient::new(self.channel.clone()).max_decoding_message_size(self.max_message_bytes)
    }

    fn err(&self, op: &str, status: tonic::Status) -> AgentError {
        let mut e = AgentError::from_status(&status);
        if status.code() == tonic::Code::Unavailable && e.code == codes::REMOTE {
            e.code = codes::TRANSPORT.into();
        }
        // A CANCELLED the server did not send (no Tern header): the connection dropped
        // before an answer came (the server died or restarted).
        if status.code() == tonic::Code::Cancelled && e.code == codes::REMOTE {
            e = AgentError::unavailable(
                codes::TRANSPORT,
                format!("the connection was lost before the server answered ({})", status.message()),
            );
        }
        if status.code() == tonic::Code::Unavailable {
            // "transport error" alone does not say that TLS failed; its source does.
            if let Some(source) = std::error::Error::source(&status) {
                let mut chain = source.to_string();
                let mut next = source.source();
                while let Some(s) = next {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    next = s.source();
                }
                if !e.message.contains(&chain) {
                    e.message = format!("{} ({chain})", e.message);
                }
            }
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
        let mut c = SyncAgentServiceClient::new(self.channel.clone()).max_decoding_message_size(self.max_message_bytes);
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
