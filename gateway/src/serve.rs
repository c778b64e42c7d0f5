//! Binds the listener and serves the agent services, health and reflection, with a
//! graceful shutdown: on shutdown health turns NOT_SERVING, the listener closes (new
//! connections are refused) and in-flight calls are allowed to finish.
use std::net::SocketAddr;
use std::sync::Arc;

use tern_agent_api::client::AgentClient;
use tern_agent_api::server::{AgentGrpcService, SERVICE_NAMES};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

use crate::error::GatewayError;

/// A running server.
pub struct ServeHandle {
    pub local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), GatewayError>>,
}

impl ServeHandle {
    /// Stops accepting, waits for in-flight calls, returns the server's result.
    pub async fn shutdown(mut self) -> Result<(), GatewayError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops on its own (an error).
    pub async fn wait(&mut self) -> Result<(), GatewayError> {
        (&mut self.task).await.map_err(|e| GatewayError::Transport(e.to_string()))?
    }
}

/// Serves `agents` on `addr` (`host:port`; port 0 picks a free one).
pub async fn serve(agents: Arc<dyn AgentClient>, addr: &str) -> Result<ServeHandle, GatewayError> {
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

    let service = AgentGrpcService::new(agents);
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown_reporter = reporter.clone();
    let on_shutdown = async move {
        let _ = rx.await;
        shutdown_reporter.set_service_status("", ServingStatus::NotServing).await;
        for name in SERVICE_NAMES {
            shutdown_reporter.set_service_status(name, ServingStatus::NotServing).await;
        }
        tracing::info!("shutting down: refusing new connections, finishing in-flight calls");
    };
    let router = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service.async_server())
        .add_service(service.sync_server())
        .add_service(service.metadata_server());
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), on_shutdown)
            .await
            .map_err(|e| GatewayError::Transport(e.to_string()))
    });
    Ok(ServeHandle { local_addr, shutdown: Some(tx), task })
}
