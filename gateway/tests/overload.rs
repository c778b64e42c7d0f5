//! The server under overload and during shutdown, over real gRPC: the global in-flight
//! limit, the per-call deadline, and the drain (health, refusals, calls past the deadline).
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::error::ErrorClass;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_gateway::metrics::GatewayMetrics;
use tern_gateway::overload::ServerLimits;
use tern_gateway::serve::{serve_with, ServeOptions};
use tern_gateway::ServeHandle;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A sync agent that sleeps for a fixed time per task type.
struct Sleeper {
    task_type: &'static str,
    takes: Duration,
}

#[async_trait::async_trait]
impl SyncAgent for Sleeper {
    fn name(&self) -> &str {
        self.task_type
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(self.task_type, 0)]
    }
    async fn execute(&self, _ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
        tokio::time::sleep(self.takes).await;
        Ok(TaskStatus::succeeded(None))
    }
}

async fn serve_sleepers(dir: &std::path::Path, limits: ServerLimits) -> (ServeHandle, Arc<GatewayMetrics>) {
    let mut registry = AgentRegistry::new();
    for (task_type, takes) in [("quick", Duration::from_millis(300)), ("stuck", Duration::from_secs(3600))] {
        registry.register_sync(Arc::new(Sleeper { task_type, takes })).unwrap();
    }
    let agents: Arc<dyn AgentClient> = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir)));
    let metrics = Arc::new(GatewayMetrics::new());
    let options = ServeOptions { limits, metrics: Some(metrics.clone()), ..Default::default() };
    (serve_with(agents, "127.0.0.1:0", options).await.unwrap(), metrics)
}

/// The value of one series in the metrics text.
fn metric(metrics: &GatewayMetrics, series: &str) -> f64 {
    let text = metrics.encode();
    let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
    line.and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} in\n{text}"))
}

fn header(task_type: &str) -> admin::CreateRequestHeader {
    admin::CreateRequestHeader {
        template: Some((core::TaskTemplate { r#type: task_type.into(), ..Default::default() }).into()),
        ..Default::default()
    }
}

fn client(addr: &str) -> GrpcAgentClient {
    GrpcAgentClient::connect_lazy(addr, ClientTimeouts::default()).unwrap()
}

/// The overall health status a fresh connection reads (a load balancer's probe).
async fn health(addr: &str) -> i32 {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status
}

fn limits(max_in_flight: usize, call_timeout: Duration, drain_timeout: Duration) -> ServerLimits {
    ServerLimits { max_in_flight, call_timeout, drain_timeout }
}

#[tokio::test]
async fn a_flood_beyond_the_limit_is_answered_ok_or_resource_exhausted_with_a_retry_hint() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, metrics) =
        serve_sleepers(dir.path(), limits(2, Duration::from_secs(60), Duration::from_secs(5))).await;
    let addr = handle.local_addr.to_string();
    let c = client(&addr);
    let calls = (0..20).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task_sync(header("quick"), Default::default()).await })
    });
    let results = futures::future::join_all(calls).await;
    let (mut ok, mut refused) = (0, 0);
    for r in results {
        match r.unwrap() {
            Ok(resource) => {
                assert_eq!(resource.phase, Phase::Succeeded as i32);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.class, ErrorClass::ResourceExhausted, "{e}");
                assert_eq!(e.code, codes::RESOURCE_EXHAUSTED, "{e}");
                assert!(e.message.contains("max_in_flight"), "{e}");
                assert_eq!(e.retry_after, Some(Duration::from_secs(1)), "the retry hint: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!(ok + refused, 20);
    assert!(ok >= 2 && refused >= 1, "ok {ok}, refused {refused}");
    assert_eq!(metric(&metrics, r#"tern_server_calls_shed_total{reason="max_in_flight"}"#), refused as f64);
    assert_eq!(metric(&metrics, "tern_server_calls_in_flight"), 0.0);
    // Health is outside the limit, and the slots come back.
    assert_eq!(health(&addr).await, ServingStatus::Serving as i32);
    assert_eq!(c.execute_task_sync(header("quick"), Default::default()).await.unwrap().phase, Phase::Succeeded as i32);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_past_the_gateways_deadline_ends_deadline_exceeded_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, metrics) =
        serve_sleepers(dir.path(), limits(1, Duration::from_millis(500), Duration::from_secs(5))).await;
    let c = client(&handle.local_addr.to_string());
    let err = c.execute_task_sync(header("stuck"), Default::default()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::DeadlineExceeded, "{err}");
    assert_eq!(err.code, codes::DEADLINE_EXCEEDED, "{err}");
    assert!(err.message.contains("0.5s") && err.message.contains("call_timeout"), "{err}");
    assert_eq!(metric(&metrics, r#"tern_server_calls_shed_total{reason="deadline"}"#), 1.0);
    // The only slot is free again.
    assert_eq!(c.execute_task_sync(header("quick"), Default::default()).await.unwrap().phase, Phase::Succeeded as i32);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_refuses_new_calls_and_ends_calls_past_the_drain_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, metrics) =
        serve_sleepers(dir.path(), limits(8, Duration::from_secs(3600), Duration::from_secs(2))).await;
    let addr = handle.local_addr.to_string();
    let c = client(&addr);
    assert_eq!(health(&addr).await, ServingStatus::Serving as i32);
    let stuck = {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task_sync(header("stuck"), Default::default()).await })
    };
    // Let the stuck call get in flight before the shutdown starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shutdown = tokio::spawn(handle.shutdown());

    // Health turns NOT_SERVING while the listener still accepts (load balancers read it).
    let mut status = ServingStatus::Serving as i32;
    for _ in 0..50 {
        status = health(&addr).await;
        if status == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, ServingStatus::NotServing as i32);
    // A new call is refused at once, naming the shutdown.
    let err = client(&addr).execute_task_sync(header("quick"), Default::default()).await.unwrap_err();
    assert_eq!((err.class, err.code.as_ref()), (ErrorClass::Unavailable, "TERN-G040"), "{err}");
    assert!(err.message.contains("shutting down") && err.is_retryable(), "{err}");

    // The stuck call outlives the drain deadline: it ends UNAVAILABLE, saying so.
    let err = stuck.await.unwrap().unwrap_err();
    assert_eq!((err.class, err.code.as_ref()), (ErrorClass::Unavailable, "TERN-G041"), "{err}");
    assert!(err.message.contains("gateway shutting down (drain deadline 2s passed)"), "{err}");
    shutdown.await.unwrap().unwrap();
    assert_eq!(metric(&metrics, r#"tern_server_calls_shed_total{reason="drain_deadline"}"#), 1.0);
    assert_eq!(metric(&metrics, r#"tern_server_calls_shed_total{reason="draining"}"#), 1.0);
    // The listener is closed.
    assert!(client(&addr).list_agents().await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn calls_that_finish_within_the_drain_deadline_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, _metrics) =
        serve_sleepers(dir.path(), limits(8, Duration::from_secs(3600), Duration::from_secs(30))).await;
    let c = client(&handle.local_addr.to_string());
    let quick: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.execute_task_sync(header("quick"), Default::default()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.shutdown().await.unwrap();
    for call in quick {
        assert_eq!(call.await.unwrap().unwrap().phase, Phase::Succeeded as i32);
    }
}
