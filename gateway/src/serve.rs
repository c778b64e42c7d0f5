//! Binds the listener and serves the agent services, health and reflection, behind the
//! overload layer (`[server] max_in_flight`, `call_timeout`), with a bounded drain on
//! shutdown: health turns NOT_SERVING, new calls are refused, in-flight calls get until
//! `drain_timeout`, then the listener closes (see [`crate::overload`]).
//!
//! With TLS configured every connection is TLS (plaintext clients fail their handshake);
//! with tokens configured every agent and reflection call needs one, while health stays
//! open for load balancers and kubelet probes.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::client::AgentClient;
use tern_agent_api::server::{AgentGrpcService, DEFAULT_MAX_REQUEST_BYTES, SERVICE_NAMES};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::ServerTlsConfig;
use tonic_health::ServingStatus;

use crate::error::GatewayError;
use crate::metrics::GatewayMetrics;
use crate::overload::{drain, Overload, OverloadLayer, ServerLimits};
use crate::security::Authenticator;
use crate::Gateway;

/// A running server.
pub struct ServeHandle {
    pub local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), GatewayError>>,
    /// The longest a shutdown may take (the drain and its graces).
    shutdown_bound: Duration,
}

impl ServeHandle {
    /// Drains (health NOT_SERVING, new calls refused, in-flight calls finish or are ended
    /// at `drain_timeout`), closes the listener, returns the server's result. Connections
    /// still open after that (a client holding a health watch) are left behind.
    pub async fn shutdown(mut self) -> Result<(), GatewayError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(self.shutdown_bound, &mut self.task).await {
            Ok(done) => done.map_err(|e| GatewayError::Transport(e.to_string()))?,
            Err(_) => {
                tracing::warn!("connections still open after the drain: stopping without them");
                self.task.abort();
                Ok(())
            }
        }
    }

    /// Waits until the server stops on its own (an error).
    pub async fn wait(&mut self) -> Result<(), GatewayError> {
        (&mut self.task).await.map_err(|e| GatewayError::Transport(e.to_string()))?
    }
}

/// How the listener is protected.
#[derive(Clone, Default)]
pub struct ServeOptions {
    pub tls: Option<ServerTlsConfig>,
    pub authenticator: Option<Authenticator>,
    /// Largest decoded request (default 16 MiB).
    pub max_message_bytes: Option<usize>,
    /// In-flight limit, call deadline, drain deadline.
    pub limits: ServerLimits,
    /// Where the overload layer counts (unset: counted nowhere).
    pub metrics: Option<Arc<GatewayMetrics>>,
}

/// Serves `agents` on `addr` (`host:port`; port 0 picks a free one), plaintext, no auth.
pub async fn serve(agents: Arc<dyn AgentClient>, addr: &str) -> Result<ServeHandle, GatewayError> {
    serve_with(agents, addr, ServeOptions::default()).await
}

/// Serves a built [`Gateway`] with its TLS, tokens and limits.
pub async fn serve_gateway(gateway: &Gateway, addr: &str) -> Result<ServeHandle, GatewayError> {
    let options = ServeOptions {
        tls: gateway.tls.clone(),
        authenticator: gateway.authenticator.clone(),
        max_message_bytes: Some(gateway.max_message_bytes),
        limits: gateway.limits,
        metrics: Some(gateway.metrics.clone()),
    };
    serve_with(gateway.router.clone(), addr, options).await
}

/// Passes every request through, or checks its token.
#[derive(Clone)]
struct Gate(Option<Authenticator>);

impl tonic::service::Interceptor for Gate {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &mut self.0 {
            Some(auth) => auth.call(request),
            None => Ok(request),
        }
    }
}

pub async fn serve_with(agents: Arc<dyn AgentClient>, addr: &str, options: ServeOptions) -> Result<ServeHandle, GatewayError> {
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e: std::net::AddrParseError| GatewayError::BadAddress { addr: addr.to_owned(), message: e.to_string() })?;
    let listener = TcpListener::bind(sock).await.map_err(|source| GatewayError::Bind { addr: addr.to_owned(), source })?;
    let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind { addr: addr.to_owned(), source })?;

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, ServingStatus::Serving).await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tern_agent_api::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| GatewayError::Transport(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tern_agent_api::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| GatewayError::Transport(format!("reflection: {e}")))?;

    let service = AgentGrpcService::new(agents)
        .with_max_request_bytes(options.max_message_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES));
    let gate = Gate(options.authenticator.clone());
    options.limits.check().map_err(GatewayError::Transport)?;
    let series = options.metrics.as_ref().map(|m| m.server_series()).unwrap_or_default();
    let overload = Overload::new(options.limits, series);
    let (tx, rx) = oneshot::channel::<()>();
    let drain_state = overload.clone();
    // The listener stays open until this resolves: during the drain new connections can
    // still read health (NOT_SERVING) and are refused calls with a clear status.
    let on_shutdown = async move {
        let _ = rx.await;
        drain::drain(&drain_state, &reporter).await;
        tracing::info!("shutting down: closing the listener");
    };
    let mut builder = tonic::transport::Server::builder().tcp_nodelay(true);
    if let Some(tls) = options.tls {
        builder = builder.tls_config(tls).map_err(|e| GatewayError::Tls(e.to_string()))?;
    }
    let mut router = builder.layer(OverloadLayer::new(overload)).add_service(health);
    // Without tokens, no interceptor layer at all (it costs on every call).
    router = match gate.0.is_some() {
        true => router
            .add_service(InterceptedService::new(reflection_v1, gate.clone()))
            .add_service(InterceptedService::new(reflection_v1alpha, gate.clone()))
            .add_service(InterceptedService::new(service.async_server(), gate.clone()))
            .add_service(InterceptedService::new(service.sync_server(), gate.clone()))
            .add_service(InterceptedService::new(service.metadata_server(), gate)),
        false => router
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(service.async_server())
            .add_service(service.sync_server())
            .add_service(service.metadata_server()),
    };
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), on_shutdown)
            .await
            .map_err(|e| GatewayError::Transport(e.to_string()))
    });
    let shutdown_bound = drain::shutdown_bound(options.limits.drain_timeout);
    Ok(ServeHandle { local_addr, shutdown: Some(tx), task, shutdown_bound })
}
