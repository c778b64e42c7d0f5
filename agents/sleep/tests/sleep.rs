//! The sleep agent through `InProcessClient`, the path the gateway uses.
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::prelude::*;
use tern_agent_sleep::SleepAgent;

struct Harness {
    client: InProcessClient,
    agent: Arc<SleepAgent>,
    dir: Arc<tempfile::TempDir>,
}

fn harness() -> Harness {
    over(Arc::new(tempfile::tempdir().unwrap()))
}

/// A new agent instance over the state directory of `dir`: what a restarted gateway is.
fn over(dir: Arc<tempfile::TempDir>) -> Harness {
    let agent = Arc::new(SleepAgent::new(&dir.path().join("state"), tern_agent_sleep::agent::KEEP_RECORDS));
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    Harness { client: InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())), agent, dir }
}

impl Harness {
    fn restarted(&self) -> Harness {
        over(self.dir.clone())
    }
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
    async fn create(
        &self,
        inputs: core::LiteralMap,
        execution: Option<admin::TaskExecutionMetadata>,
    ) -> Result<Vec<u8>, AgentError> {
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
            .get_task(admin::GetTaskRequest {
                resource_meta: meta.to_vec(),
                task_category: Some(category()),
                ..Default::default()
            })
            .await
            .unwrap();
        TaskStatus::from_resource(resource)
    }

    async fn delete(&self, meta: &[u8]) {
        self.client
            .delete_task(admin::DeleteTaskRequest {
                resource_meta: meta.to_vec(),
                task_category: Some(category()),
                ..Default::default()
            })
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
        .get_task(admin::GetTaskRequest {
            resource_meta: b"{}".to_vec(),
            task_category: Some(category()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_repeated_create_after_a_restart_attaches_and_is_no_new_submission() {
    let h = harness();
    let first = h.create(duration_input(P::Integer(30)), Some(execution("n0", 0))).await.unwrap();
    assert_eq!(h.agent.records().list().len(), 1);
    let after = h.restarted();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = after.create(duration_input(P::Integer(30)), Some(execution("n0", 0))).await.unwrap();
    assert_eq!(first, again, "the first handle, byte for byte");
    let records = after.agent.records().list();
    assert_eq!(records.len(), 1, "an attach is no submission: {records:?}");
    let r = &records[0];
    assert_eq!((r.execution.as_str(), r.node.as_str(), r.attempt, r.task.as_str()), ("e1", "n0", 0, "sleepy"));
    assert_eq!(r.resource_meta.as_bytes(), first.as_slice());
    // A retry attempt is a new job, recorded as such.
    after.create(duration_input(P::Integer(30)), Some(execution("n0", 1))).await.unwrap();
    assert_eq!(after.agent.records().list().len(), 2);
}

#[tokio::test]
async fn a_cancellation_survives_a_restart() {
    let h = harness();
    let meta = h.create(duration_input(P::Integer(30)), Some(execution("n2", 0))).await.unwrap();
    h.delete(&meta).await;
    let after = h.restarted();
    assert_eq!(after.get(&meta).await.phase, Phase::Aborted);
    // Created again (the engine re-issuing it): the same cancelled job, not a fresh one.
    let again = after.create(duration_input(P::Integer(30)), Some(execution("n2", 0))).await.unwrap();
    assert_eq!(again, meta);
    assert_eq!(after.get(&again).await.phase, Phase::Aborted);
}

#[tokio::test]
async fn concurrent_creates_of_one_attempt_on_two_instances_make_one_job() {
    let h = harness();
    let other = h.restarted();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = if i % 2 == 0 { h.client.clone() } else { other.client.clone() };
        tasks.push(tokio::spawn(async move {
            client
                .create_task(admin::CreateTaskRequest {
                    inputs: Some(duration_input(P::Integer(30))),
                    template: Some((core::TaskTemplate { r#type: "sleep".into(), ..Default::default() }).into()),
                    output_prefix: "out/sleep".into(),
                    task_execution_metadata: Some(Box::new(execution("n3", 0))),
                })
                .await
                .unwrap()
        }));
    }
    let mut metas = Vec::new();
    for t in tasks {
        metas.push(t.await.unwrap());
    }
    assert!(metas.windows(2).all(|w| w[0] == w[1]), "every create returns the one handle");
    assert_eq!(h.agent.records().list().len(), 1);
}

#[tokio::test]
async fn records_of_sleeps_that_ended_long_ago_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let agent = SleepAgent::new(dir.path(), Duration::from_secs(60));
    let mut registry = AgentRegistry::new();
    let agent = Arc::new(agent);
    registry.register_async(agent.clone()).unwrap();
    let client = InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path()));
    let create = |node: &'static str, d: i64| {
        let client = client.clone();
        async move {
            client
                .create_task(admin::CreateTaskRequest {
                    inputs: Some(duration_input(P::Integer(d))),
                    template: Some((core::TaskTemplate { r#type: "sleep".into(), ..Default::default() }).into()),
                    output_prefix: "out/sleep".into(),
                    task_execution_metadata: Some(Box::new(execution(node, 0))),
                })
                .await
                .unwrap()
        }
    };
    create("short", 0).await;
    let long = create("long", 3600).await;
    client
        .delete_task(admin::DeleteTaskRequest {
            resource_meta: long,
            task_category: Some(category()),
            ..Default::default()
        })
        .await
        .unwrap();
    let records = agent.records();
    // Make every file look old, as if written two hours ago.
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    for e in std::fs::read_dir(records.dir()).unwrap() {
        std::fs::File::options().write(true).open(e.unwrap().path()).unwrap().set_modified(two_hours_ago).unwrap();
    }
    let now = tern_agent_sleep::records::now_unix_ms();
    assert_eq!(records.remove_ended(now + 600_000), 1, "only the sleep that ended more than keep_records ago");
    let left: Vec<_> = records.list().into_iter().map(|r| r.node).collect();
    assert_eq!(left, ["long"]);
    assert!(records.dir().read_dir().unwrap().count() == 2, "the long sleep's record and its cancellation stay");
    assert_eq!(records.remove_ended(now + 2 * 3600 * 1000), 1);
    assert_eq!(records.dir().read_dir().unwrap().count(), 0);
}
