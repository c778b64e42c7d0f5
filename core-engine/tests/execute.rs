//! Execution through real agent-api clients: sync and async paths, concurrency, retries,
//! failures, timeouts, data written, routing and recovery.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, engine, engine_at, int, out_int, Backend, Double, Echo, Fail, Log, Rendezvous};
use prost::Message;
use tern_agent_api::prelude::*;
use tern_core_engine::{
    codes, AgentRouter, AttemptPhase, Engine, EngineError, ExecutionEvent, ExecutionPhase, StateLocation, StateStore,
    WorkflowSpec,
};
use tokio::sync::mpsc;

fn spec(text: &str) -> WorkflowSpec {
    WorkflowSpec::parse(text, "test.yaml").unwrap_or_else(|e| panic!("parse: {e}"))
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.expect("test timed out")
}

fn raw(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

// The run, failure and recovery paths, on both state backends (PostgreSQL: a fresh
// database on TERN_TEST_POSTGRES_URL's server).
on_both_backends!(
    sync_and_async_paths_write_inputs_and_outputs,
    permanent_failure_stops_the_execution_and_is_recorded,
    recovery_reissues_create_with_the_same_task_execution_id,
    recovery_resumes_polling_a_recorded_resource_meta,
);

const PIPELINE: &str = r#"
name: pipeline
inputs:
  x: {type: integer, default: 3}
nodes:
  - id: first
    task:
      type: echo
      interface: {inputs: {x: integer}, outputs: {x: integer}}
    inputs: {x: "${inputs.x}"}
  - id: doubled
    task:
      type: double
      interface: {inputs: {x: integer}, outputs: {y: integer}}
    inputs: {x: "${first.x}"}
outputs:
  y: ${doubled.y}
"#;

async fn sync_and_async_paths_write_inputs_and_outputs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(state) = common::state(backend, dir.path(), "run").await else { return };
    let log = Arc::new(Log::default());
    let double = Arc::new(Double::new("double", log.clone()));
    let c = client(dir.path(), |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(double.clone()).unwrap();
    });
    let engine = engine_at(&state, dir.path(), AgentRouter::new(c)).await;
    let wf = engine.compile(&spec(PIPELINE)).await.unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let outcome = within(engine.run(&wf, raw(&[("x", "21")]), Some(tx))).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 42);

    // Sync: one ExecuteTaskSync. Async: one CreateTask, GetTask polled until done.
    let calls = log.calls();
    assert_eq!(calls.iter().filter(|c| c.op == "execute").count(), 1);
    assert_eq!(calls.iter().filter(|c| c.op == "create").count(), 1);
    assert!(calls.iter().filter(|c| c.op == "get").count() >= 3, "polled until terminal: {calls:?}");
    let create = calls.iter().find(|c| c.op == "create").unwrap();
    let meta = create.execution.as_ref().unwrap();
    assert_eq!(meta.namespace, "tern-development");
    let tid = meta.task_execution_id.as_ref().unwrap();
    let node = tid.node_execution_id.as_ref().unwrap();
    assert_eq!(node.node_id, "doubled");
    let exec = node.execution_id.as_ref().unwrap();
    assert_eq!(
        (exec.project.as_str(), exec.domain.as_str(), exec.name.as_str()),
        ("tern", "development", outcome.id.as_str())
    );
    assert_eq!(tid.task_id.as_ref().unwrap().name, "pipeline.doubled");
    assert_eq!(tid.retry_attempt, 0);
    assert!(create.output_prefix.ends_with(&format!("/{}/doubled/0", outcome.id)), "{}", create.output_prefix);
    assert!(create.key.is_some());

    // Small node outputs live inline in the attempt's row (no file per node; inputs.pb only
    // for container tasks, whose command line names it); the execution's inputs and outputs
    // are files.
    let data = dir.path().join("data").join(&outcome.id);
    assert!(!data.join("doubled/0/inputs.pb").exists() && !data.join("doubled/0/outputs.pb").exists());
    assert!(data.join("outputs.pb").exists() && data.join("inputs.pb").exists());

    // Progress events and the record.
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(matches!(events.first(), Some(ExecutionEvent::Started { .. })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, ExecutionEvent::NodeSucceeded { node, .. } if node == "doubled")));
    assert!(matches!(events.last(), Some(ExecutionEvent::Finished { phase: ExecutionPhase::Succeeded, .. })));
    let detail = engine.execution(&outcome.id).await.unwrap();
    assert_eq!(detail.execution.phase, ExecutionPhase::Succeeded);
    assert_eq!(detail.attempts.len(), 2);
    let d = detail.attempts.iter().find(|a| a.node_id == "doubled").unwrap();
    let outputs = core::LiteralMap::decode(d.outputs.as_deref().expect("inline outputs")).unwrap();
    assert_eq!(out_int(&outputs, "y"), 42);
    assert_eq!(d.phase, AttemptPhase::Succeeded);
    assert!(d.resource_meta.is_some());
    assert_eq!(d.intent["retry_attempt"], 0);
    assert_eq!(engine.executions().await.unwrap()[0].id, outcome.id);
}

#[tokio::test]
async fn outputs_left_in_outputs_pb_are_read_like_propeller_does() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let mut double = Double::new("double", log.clone());
    double.outputs_in_file = true;
    let c = client(dir.path(), |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(Arc::new(double)).unwrap();
    });
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    let wf = engine.compile(&spec(PIPELINE)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 6, "default x = 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_branches_run_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let rv = Arc::new(Rendezvous { log: log.clone(), created: AtomicUsize::new(0), spans: Mutex::default() });
    let c = client(dir.path(), |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(rv.clone()).unwrap();
    });
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    let text = r#"
name: diamond
inputs: {x: integer}
nodes:
  - id: top
    task: {type: echo, interface: {inputs: {x: integer}, outputs: {x: integer}}}
    inputs: {x: "${inputs.x}"}
  - id: left
    task: {type: rendezvous, interface: {inputs: {x: integer}, outputs: {y: integer}}}
    inputs: {x: "${top.x}"}
  - id: right
    task: {type: rendezvous, interface: {inputs: {x: integer}, outputs: {y: integer}}}
    inputs: {x: "${top.x}"}
  - id: bottom
    task: {type: echo, interface: {inputs: {a: integer, b: integer}, outputs: {a: integer, b: integer}}}
    inputs: {a: "${left.y}", b: "${right.y}"}
outputs: {a: "${bottom.a}", b: "${bottom.b}"}
"#;
    let wf = engine.compile(&spec(text)).await.unwrap();
    // Each branch only finishes once both were created: sequential execution would hang.
    let outcome = within(engine.run(&wf, raw(&[("x", "5")]), None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!((out_int(&outcome.outputs, "a"), out_int(&outcome.outputs, "b")), (5, 5));
    let spans = rv.spans.lock().unwrap().clone();
    let (ls, le) = spans["left"];
    let (rs, re) = spans["right"];
    let (le, re) = (le.unwrap(), re.unwrap());
    assert!(ls < re && rs < le, "the branches overlap in time");
    // And `bottom` started only after both finished.
    let bottom = log.calls().into_iter().find(|c| c.node == "bottom").unwrap();
    assert!(bottom.at >= le && bottom.at >= re);
}

#[tokio::test]
async fn retryable_failure_is_retried_as_a_new_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let mut double = Double::new("double", log.clone());
    double.fail_first_attempts = 1;
    let c = client(dir.path(), |r| r.register_async(Arc::new(double)).unwrap());
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    let text = "name: r\nnodes:\n  - id: d\n    task:\n      type: double\n      retries: 2\n      interface: {inputs: {x: integer}, outputs: {y: integer}}\n    inputs: {x: 4}\noutputs: {y: '${d.y}'}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let outcome = within(engine.run(&wf, vec![], Some(tx))).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 8);
    let creates: Vec<_> = log.calls().into_iter().filter(|c| c.op == "create").collect();
    assert_eq!(creates.iter().map(|c| c.attempt).collect::<Vec<_>>(), [0, 1]);
    assert_ne!(creates[0].key, creates[1].key, "each attempt has its own idempotency key");
    let detail = engine.execution(&outcome.id).await.unwrap();
    let phases: Vec<_> = detail.attempts.iter().map(|a| (a.attempt, a.phase)).collect();
    assert_eq!(phases, [(0, AttemptPhase::RetryableFailed), (1, AttemptPhase::Succeeded)]);
    assert_eq!(detail.attempts[0].error.as_ref().unwrap().code, "TEST-E002");
    let mut retried = false;
    while let Ok(e) = rx.try_recv() {
        retried |= matches!(e, ExecutionEvent::NodeRetrying { attempt: 0, ref code, .. } if code == "TEST-E002");
    }
    assert!(retried);

    assert_eq!(
        detail.attempts[0].error.as_ref().unwrap().origin,
        Some(tern_agent_api::error::ErrorOrigin::System),
        "a backend hiccup is a system failure"
    );
}

async fn permanent_failure_stops_the_execution_and_is_recorded(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(state) = common::state(backend, dir.path(), "failure").await else { return };
    let log = Arc::new(Log::default());
    let slow = Arc::new(Double::new("slow", log.clone()));
    slow.release.store(false, Ordering::SeqCst);
    let c = client(dir.path(), |r| {
        r.register_sync(Arc::new(Fail { log: log.clone(), after_get_of: Some(slow.clone()) })).unwrap();
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(slow.clone()).unwrap();
    });
    let engine = engine_at(&state, dir.path(), AgentRouter::new(c)).await;
    let text = r#"
name: failing
nodes:
  - id: running
    task: {type: slow, retries: 3, interface: {inputs: {x: integer}, outputs: {y: integer}}}
    inputs: {x: 1}
  - id: bad
    task: {type: fail, retries: 3}
    depends_on: [gate]
  - id: gate
    task: {type: echo}
  - id: after
    task: {type: echo}
    depends_on: [bad]
"#;
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = engine.run(&wf, vec![], None);
    // `running` is polled forever until the failure of `bad` cancels it.
    let outcome = within(run).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert_eq!(outcome.failed_node.as_deref(), Some("bad"));
    let err = outcome.error.clone().unwrap();
    assert_eq!(err.code, "TEST-E001");
    assert!(err.message.contains("bad") && err.message.contains("refuses negative input"), "{err}");
    // A permanent failure is not retried; the running node was cancelled (DeleteTask).
    assert_eq!(log.calls().iter().filter(|c| c.node == "bad").count(), 1);
    assert_eq!(log.count("delete"), 1);
    assert!(log.calls().iter().all(|c| c.node != "after"), "no new node starts after a failure");

    let detail = engine.execution(&outcome.id).await.unwrap();
    assert_eq!(detail.execution.phase, ExecutionPhase::Failed);
    assert_eq!(detail.execution.failed_node.as_deref(), Some("bad"));
    assert_eq!(detail.execution.error.as_ref().unwrap().code, "TEST-E001");
    let attempt = |n: &str| detail.attempts.iter().find(|a| a.node_id == n).cloned();
    assert_eq!(attempt("bad").unwrap().phase, AttemptPhase::Failed);
    assert_eq!(attempt("bad").unwrap().error.unwrap().message, "refuses negative input");
    assert_eq!(attempt("running").unwrap().phase, AttemptPhase::Aborted);
    assert!(attempt("after").is_none());
    let listed = engine.executions().await.unwrap();
    assert_eq!(listed[0].error.as_ref().unwrap().code, "TEST-E001");
}

#[tokio::test]
async fn an_attempt_timeout_deletes_the_task_and_spends_a_user_retry() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let slow = Arc::new(Double::new("slow", log.clone()));
    slow.release.store(false, Ordering::SeqCst);
    let c = client(dir.path(), |r| r.register_async(slow.clone()).unwrap());
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    let text = "name: t\nnodes:\n  - id: s\n    task: {type: slow, timeout: 150ms, retries: 2, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    let err = outcome.error.unwrap();
    assert_eq!(err.code, codes::NODE_TIMED_OUT);
    assert!(err.message.contains("timed out after 0.15s"), "{err}");
    assert!(err.message.contains("no user retries left: 2 allowed"), "{err}");
    assert_eq!(log.count("create"), 3, "an attempt timeout is retryable, as in Flyte");
    assert_eq!(log.count("delete"), 3, "each timed-out attempt's job is deleted before the next starts");
    let ops: Vec<&str> = log.calls().iter().map(|c| c.op).filter(|op| *op != "get").collect();
    assert_eq!(
        ops,
        ["create", "delete", "create", "delete", "create", "delete"],
        "each timed-out attempt's job is deleted before the next attempt is created"
    );
}

#[tokio::test]
async fn inputs_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let c = client(dir.path(), |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(Arc::new(Double::new("double", log.clone()))).unwrap();
    });
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    let text = format!(
        "{}\n",
        PIPELINE.replace(
            "inputs:\n  x: {type: integer, default: 3}",
            "inputs:\n  x: {type: integer, default: 3}\n  g: string"
        )
    );
    let wf = engine.compile(&spec(&text)).await.unwrap();
    let err = engine.run(&wf, raw(&[("x", "not-a-number"), ("nope", "1")]), None).await.unwrap_err();
    let EngineError::Inputs(errs) = &err else { panic!("{err}") };
    let text = err.to_string();
    assert!(errs.errors.iter().any(|e| e.code == codes::BAD_RUN_INPUT && e.input == "x"), "{text}");
    assert!(errs.errors.iter().any(|e| e.code == codes::UNKNOWN_RUN_INPUT && e.input == "nope"), "{text}");
    assert!(errs.errors.iter().any(|e| e.code == codes::MISSING_RUN_INPUT && e.input == "g"), "{text}");
    assert!(text.contains("not-a-number") && text.contains("integer"), "{text}");
    assert!(err.is_user_error());
    assert!(log.calls().is_empty());
    assert!(engine.executions().await.unwrap().is_empty());
    assert!(matches!(engine.execution("nope").await, Err(EngineError::NotFound { .. })));
}

#[tokio::test]
async fn a_routed_type_goes_to_its_client() {
    let dir = tempfile::tempdir().unwrap();
    let local_log = Arc::new(Log::default());
    let remote_log = Arc::new(Log::default());
    let local = client(dir.path(), |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: local_log.clone() })).unwrap();
        r.register_async(Arc::new(Double::new("double", local_log.clone()))).unwrap();
    });
    let remote = client(dir.path(), |r| r.register_async(Arc::new(Double::new("double", remote_log.clone()))).unwrap());
    let engine = engine(dir.path(), AgentRouter::new(local).with_route("double", remote)).await;
    let wf = engine.compile(&spec(PIPELINE)).await.unwrap();
    let outcome = within(engine.run(&wf, raw(&[("x", "2")]), None)).await.unwrap();
    assert_eq!(out_int(&outcome.outputs, "y"), 4);
    assert_eq!(remote_log.count("create"), 1);
    assert_eq!(local_log.count("create"), 0);
    assert_eq!(local_log.count("execute"), 1, "echo stays on the default client");
}

fn recovery_setup(dir: &std::path::Path) -> (Arc<Log>, Arc<Double>, Arc<InProcessClient>) {
    let log = Arc::new(Log::default());
    let double = Arc::new(Double::new("double", log.clone()));
    let c = client(dir, |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(double.clone()).unwrap();
    });
    (log, double, c)
}

/// Starts a run in the background and kills it once `ready` fires (a crash).
async fn crash_after(
    state: &StateLocation,
    engine: Engine,
    wf: tern_core_engine::CompiledWorkflow,
    ready: impl std::future::Future<Output = ()>,
) -> String {
    let (tx, mut rx) = mpsc::channel(256);
    let observer = engine.clone();
    let task = tokio::spawn(async move { engine.run(&wf, vec![("x".into(), "5".into())], Some(tx)).await });
    within(ready).await;
    // The crash comes after the writes made so far were committed (writes nobody waits
    // for linger for up to 20 ms; reading through the engine commits them).
    let mut id = None;
    while let Ok(e) = rx.try_recv() {
        if let ExecutionEvent::Started { execution_id, .. } = e {
            id = Some(execution_id);
        }
    }
    let id = id.expect("the execution started");
    observer.execution(&id).await.expect("the execution is recorded");
    task.abort();
    let _ = task.await;
    // The aborted driver gives its lease up in the background (a real crash leaves it to
    // expire or to the dead-process check, which this one process cannot show).
    let store = StateStore::connect(state).await.expect("the state opens");
    within(async {
        while store.lease(&id).await.expect("the lease reads").is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    id
}

async fn recovery_reissues_create_with_the_same_task_execution_id(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(state) = common::state(backend, dir.path(), "recover (re-create)").await else { return };
    let (log, double, c) = recovery_setup(dir.path());
    double.hang_create.store(true, Ordering::SeqCst);
    let first = engine_at(&state, dir.path(), AgentRouter::new(c.clone())).await;
    let wf = first.compile(&spec(PIPELINE)).await.unwrap();
    let id = crash_after(&state, first, wf, double.create_called.notified()).await;

    // The crash left an intent without resource_meta.
    let engine = engine_at(&state, dir.path(), AgentRouter::new(c)).await;
    let detail = engine.execution(&id).await.unwrap();
    assert_eq!(detail.execution.phase, ExecutionPhase::Running);
    let pending = detail.attempts.iter().find(|a| a.node_id == "doubled").unwrap();
    assert_eq!(pending.phase, AttemptPhase::Queued);
    assert!(pending.resource_meta.is_none());

    double.hang_create.store(false, Ordering::SeqCst);
    let outcome = within(engine.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.id, id);
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 10);
    let creates: Vec<_> = log.calls().into_iter().filter(|c| c.op == "create").collect();
    assert_eq!(creates.len(), 2, "create re-issued once");
    assert_eq!(creates[0].key, creates[1].key, "with the same idempotency key");
    assert_eq!(
        creates[0].execution.as_ref().unwrap().task_execution_id,
        creates[1].execution.as_ref().unwrap().task_execution_id
    );
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1, "only one job ran");
    assert_eq!(log.count("execute"), 1, "the completed node was not re-run");
    assert_eq!(engine.execution(&id).await.unwrap().execution.phase, ExecutionPhase::Succeeded);
    assert!(matches!(engine.recover(&id, None).await, Err(EngineError::NotRecoverable { .. })));
}

async fn recovery_resumes_polling_a_recorded_resource_meta(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(state) = common::state(backend, dir.path(), "recover (resume polling)").await else { return };
    let (log, double, c) = recovery_setup(dir.path());
    double.release.store(false, Ordering::SeqCst);
    let first = engine_at(&state, dir.path(), AgentRouter::new(c.clone())).await;
    let wf = first.compile(&spec(PIPELINE)).await.unwrap();
    let id = crash_after(&state, first, wf, double.get_called.notified()).await;

    let engine = engine_at(&state, dir.path(), AgentRouter::new(c)).await;
    let detail = engine.execution(&id).await.unwrap();
    let running = detail.attempts.iter().find(|a| a.node_id == "doubled").unwrap();
    assert_eq!(running.phase, AttemptPhase::Running);
    assert!(running.resource_meta.is_some());

    double.release.store(true, Ordering::SeqCst);
    let outcome = within(engine.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 10);
    assert_eq!(log.count("create"), 1, "no second CreateTask: polling resumed");
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1);
    let _ = int(0);
}
