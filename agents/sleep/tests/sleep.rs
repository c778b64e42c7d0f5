//! The sleep agent through `InProcessClient`, the path the gateway uses.
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::prelude::*;

struct Harness {
    client: InProcessClient,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = AgentRegistry::new();
    registry.register_async(tern_agent_sleep::agent()).unwrap();
    Harness { client: InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())), _dir: dir }
}

fn duration_input(v: P) -> core::LiteralMap {
    let lit = core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Primitive(core::Primitive { value: Some(v) })),
        }))),
        ..Default::default()
    };
    core::LiteralMap { literals: [("duration".to_owned(), lit)].into() }
}

fn execution(node: &str, attempt: u32) -> admin::TaskExecutionMetadata {
    admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "sleepy".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier { name: "e1".into(), ..Default::default() }),
            }),
            retry_attempt: attempt,
        }),
        ..Default::default()
    }
}

fn category() -> admin::TaskCategory {
    admin::TaskCategory { name: "sleep".into(), version: 0 }
}

impl Harness {
    async fn create(&self, inputs: core::LiteralMap, execution: Option<admin::TaskExecutionMetadata>) -> Result<Vec<u8>, AgentError> {
        self.client
            .create_task(admin::CreateTaskRequest {
                inputs: Some(inputs),
                template: Some((core::TaskTemplate { r#type: "sleep".into(), ..Default::default() }).into()),
                output_prefix: "out/sleep".into(),
                task_execution_metadata: execution.map(Box::new),
            })
            .await
    }

    async fn get(&self, meta: &[u8]) -> TaskStatus {
        let resource = self
            .client
            .get_task(admin::GetTaskRequest { resource_meta: meta.to_vec(), task_category: Some(category()), ..Default::default() })
            .await
            .unwrap();
        TaskStatus::from_resource(resource)
    }

    async fn delete(&self, meta: &[u8]) {
        self.client
            .delete_task(admin::DeleteTaskRequest { resource_meta: meta.to_vec(), task_category: Some(category()), ..Default::default() })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn runs_then_succeeds() {
    let h = harness();
    let meta = h.create(duration_input(P::FloatValue(0.3)), None).await.unwrap();
    let text = String::from_utf8(meta.clone()).unwrap();
    assert!(text.contains("\"until_unix_ms\"") && text.contains("\"v\":1"), "{text}");
    assert_eq!(h.get(&meta).await.phase, Phase::Running);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let done = h.get(&meta).await;
    assert_eq!(done.phase, Phase::Succeeded);
    assert!(done.outputs.is_none_or(|o| o.literals.is_empty()));
    // Deleting a finished sleep does not turn it into an abort.
    h.delete(&meta).await;
    assert_eq!(h.get(&meta).await.phase, Phase::Succeeded);
}

#[tokio::test]
async fn create_is_idempotent_per_attempt() {
    let h = harness();
    let first = h.create(duration_input(P::Integer(30)), Some(execution("n0", 0))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Same attempt, even with other inputs: the first handle, byte for byte.
    let again = h.create(duration_input(P::Integer(1)), Some(execution("n0", 0))).await.unwrap();
    assert_eq!(first, again);
    let retry = h.create(duration_input(P::Integer(30)), Some(execution("n0", 1))).await.unwrap();
    assert_ne!(first, retry);
    let anonymous = [
        h.create(duration_input(P::Integer(30)), None).await.unwrap(),
        h.create(duration_input(P::Integer(30)), None).await.unwrap(),
    ];
    assert_ne!(anonymous[0], anonymous[1], "without an execution identity every create is a new task");
}

#[tokio::test]
async fn delete_aborts() {
    let h = harness();
    let d = prost_types::Duration { seconds: 30, nanos: 0 };
    let meta = h.create(duration_input(P::Duration(d)), Some(execution("n1", 0))).await.unwrap();
    assert_eq!(h.get(&meta).await.phase, Phase::Running);
    h.delete(&meta).await;
    let status = h.get(&meta).await;
    assert_eq!(status.phase, Phase::Aborted, "{status:?}");
}

#[tokio::test]
async fn bad_inputs_and_handles_are_invalid_arguments() {
    let h = harness();
    let err = h.create(core::LiteralMap::default(), None).await.unwrap_err();
    assert_eq!(err.code, tern_agent_sleep::codes::BAD_DURATION);
    assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
    assert!(err.message.contains("duration"), "{err}");
    let err = h.create(duration_input(P::Boolean(true)), None).await.unwrap_err();
    assert!(err.message.contains("a boolean"), "{err}");
    let err = h.create(duration_input(P::Integer(-5)), None).await.unwrap_err();
    assert!(err.message.contains("-5"), "{err}");

    let err = h
        .client
        .get_task(admin::GetTaskRequest { resource_meta: b"{}".to_vec(), task_category: Some(category()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
}
