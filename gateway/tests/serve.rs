//! The gateway's server over a real socket: the protocol services through our gRPC
//! client, health, and graceful shutdown.
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A sync agent that takes a while, to observe in-flight calls during shutdown.
struct Slow;

#[async_trait::async_trait]
impl SyncAgent for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("slow", 0)]
    }
    async fn execute(&self, _ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(TaskStatus::succeeded(None))
    }
}

fn client_for(dir: &std::path::Path) -> Arc<dyn AgentClient> {
    let mut registry = AgentRegistry::new();
    registry.register_sync(Arc::new(Slow)).unwrap();
    Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir)))
}

fn header(task_type: &str) -> admin::CreateRequestHeader {
    admin::CreateRequestHeader {
        template: Some((core::TaskTemplate { r#type: task_type.into(), ..Default::default() }).into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn serves_health_and_protocol_then_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let handle = tern_gateway::serve(client_for(dir.path()), "127.0.0.1:0").await.unwrap();
    let addr = handle.local_addr.to_string();

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "flyteidl.service.AsyncAgentService", "flyteidl.service.SyncAgentService", "flyteidl.service.AgentMetadataService"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let client = GrpcAgentClient::connect_lazy(&addr, ClientTimeouts::default()).unwrap();
    let agents = client.list_agents().await.unwrap();
    assert_eq!(agents.len(), 1);
    assert!(agents[0].is_sync);
    let err = client.execute_task_sync(header("missing"), Default::default()).await.unwrap_err();
    assert_eq!(err.class, tern_agent_api::error::ErrorClass::NotFound);
    assert_eq!(err.code, codes::AGENT_NOT_FOUND);

    // Start a slow call, then shut down while it is in flight: it must still succeed.
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { client.execute_task_sync(header("slow"), Default::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    handle.shutdown().await.unwrap();
    let resource = in_flight.await.unwrap().unwrap();
    assert_eq!(resource.phase, Phase::Succeeded as i32);

    // After shutdown, new connections are refused.
    let fresh = GrpcAgentClient::connect_lazy(&addr, ClientTimeouts::default()).unwrap();
    let err = fresh.list_agents().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
