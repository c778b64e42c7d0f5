//! The deadline an agent sees (`TaskContext.deadline`) over real gRPC: the caller's
//! `grpc-timeout`, the task template's `metadata.timeout`, and the earlier of the two when
//! both are set — for ExecuteTaskSync and CreateTask.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::server::AgentGrpcService;

/// Milliseconds left until the context's deadline, -1 without one.
fn left_ms(ctx: &TaskContext) -> i64 {
    ctx.deadline.map_or(-1, |d| d.saturating_duration_since(Instant::now()).as_millis() as i64)
}

struct SyncProbe;

#[async_trait]
impl SyncAgent for SyncProbe {
    fn name(&self) -> &str {
        "deadline-sync"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("deadline-sync", 0)]
    }
    async fn execute(&self, ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
        let left = core::Literal {
            value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
                value: Some(core::scalar::Value::Primitive(core::Primitive {
                    value: Some(core::primitive::Value::Integer(left_ms(ctx))),
                })),
            }))),
            ..Default::default()
        };
        Ok(TaskStatus::succeeded(Some(core::LiteralMap { literals: [("left_ms".to_owned(), left)].into() })))
    }
}

struct AsyncProbe;

#[derive(serde::Serialize, serde::Deserialize)]
struct Seen {
    left_ms: i64,
}

#[async_trait]
impl AsyncAgent for AsyncProbe {
    fn name(&self) -> &str {
        "deadline-async"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("deadline-async", 0)]
    }
    async fn create(&self, ctx: &TaskContext, _task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        ResourceMeta::encode(&Seen { left_ms: left_ms(ctx) })
    }
    async fn get(&self, _ctx: &TaskContext, _meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        Ok(TaskStatus::succeeded(None))
    }
    async fn delete(&self, _ctx: &TaskContext, _meta: &ResourceMeta) -> Result<(), AgentError> {
        Ok(())
    }
}

/// Serves both probes on a local port; returns its address.
async fn serve() -> String {
    let mut registry = AgentRegistry::new();
    registry.register_sync(Arc::new(SyncProbe)).unwrap();
    registry.register_async(Arc::new(AsyncProbe)).unwrap();
    let dir = std::env::temp_dir();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir)));
    let service = AgentGrpcService::new(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.sync_server())
            .add_service(service.async_server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn template(task_type: &str, timeout: Option<Duration>) -> core::TaskTemplate {
    let integer = core::LiteralType {
        r#type: Some(core::literal_type::Type::Simple(core::SimpleType::Integer as i32)),
        ..Default::default()
    };
    let output = core::Variable { r#type: Some(integer), ..Default::default() };
    core::TaskTemplate {
        r#type: task_type.into(),
        metadata: timeout.map(|t| core::TaskMetadata {
            timeout: Some(prost_types::Duration::try_from(t).unwrap()),
            ..Default::default()
        }),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("left_ms".to_owned(), output)].into() }),
        }),
        ..Default::default()
    }
}

/// What the agents saw: (sync, async) milliseconds left.
async fn seen(addr: &str, grpc_timeout: Duration, task_timeout: Option<Duration>) -> (i64, i64) {
    let timeouts = ClientTimeouts { execute_sync: grpc_timeout, create: grpc_timeout, ..Default::default() };
    let client = GrpcAgentClient::connect_lazy(addr, timeouts).unwrap();
    let header = admin::CreateRequestHeader {
        template: Some(template("deadline-sync", task_timeout).into()),
        output_prefix: "out".into(),
        ..Default::default()
    };
    let status = TaskStatus::from_resource(client.execute_task_sync(header, Default::default()).await.unwrap());
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let sync = match status.outputs.unwrap().literals["left_ms"].value.as_ref() {
        Some(core::literal::Value::Scalar(s)) => match &s.value {
            Some(core::scalar::Value::Primitive(core::Primitive {
                value: Some(core::primitive::Value::Integer(i)),
            })) => *i,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let request = admin::CreateTaskRequest {
        template: Some(template("deadline-async", task_timeout).into()),
        output_prefix: "out".into(),
        ..Default::default()
    };
    let meta = client.create_task(request).await.unwrap();
    let seen: Seen = serde_json::from_slice(&meta).unwrap();
    (sync, seen.left_ms)
}

#[tokio::test]
async fn agents_see_the_earlier_of_the_callers_deadline_and_the_tasks_timeout() {
    let addr = serve().await;
    // Only the caller's grpc-timeout.
    for left in <[i64; 2]>::from(seen(&addr, Duration::from_secs(20), None).await) {
        assert!((10_000..=20_000).contains(&left), "grpc-timeout 20 s: {left} ms left");
    }
    // The task's timeout comes first.
    for left in <[i64; 2]>::from(seen(&addr, Duration::from_secs(60), Some(Duration::from_secs(5))).await) {
        assert!((1..=5_000).contains(&left), "timeout 5 s under grpc-timeout 60 s: {left} ms left");
    }
    // The caller's deadline comes first.
    for left in <[i64; 2]>::from(seen(&addr, Duration::from_secs(20), Some(Duration::from_secs(600))).await) {
        assert!((10_000..=20_000).contains(&left), "grpc-timeout 20 s, timeout 600 s: {left} ms left");
    }
    // A zero timeout is Flyte's "none".
    for left in <[i64; 2]>::from(seen(&addr, Duration::from_secs(20), Some(Duration::ZERO)).await) {
        assert!((10_000..=20_000).contains(&left), "grpc-timeout 20 s, timeout 0: {left} ms left");
    }
}
