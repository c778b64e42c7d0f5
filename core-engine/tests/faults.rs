//! At most one external job per attempt under faults, and Flyte's retry, deadline,
//! failure-policy and abort semantics. Faults are injected at the agent (a real agent
//! behind a real in-process client) or in the real SQLite state database.
mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{client, engine, fast_config, out_int, Double, Echo, Log};
use tern_agent_api::error::ErrorOrigin;
use tern_core_engine::{codes, AgentRouter, AttemptPhase, Engine, EngineError, ExecutionPhase, WorkflowSpec};

fn spec(text: &str) -> WorkflowSpec {
    WorkflowSpec::parse(text, "test.yaml").unwrap_or_else(|e| panic!("parse: {e}"))
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f).await.expect("test timed out")
}

const ONE: &str = "name: one\nnodes:\n  - id: d\n    task:\n      type: double\n      retries: 2\n      interface: {inputs: {x: integer}, outputs: {y: integer}}\n    inputs: {x: 4}\noutputs: {y: '${d.y}'}\n";

/// Runs `wf` in the background, as a process driving it would.
fn spawn_run(
    engine: &Engine,
    wf: tern_core_engine::CompiledWorkflow,
) -> tokio::task::JoinHandle<Result<tern_core_engine::ExecutionOutcome, EngineError>> {
    let engine = engine.clone();
    tokio::spawn(async move { engine.run(&wf, vec![], None).await })
}

/// Returns once the agent was polled: a job is running.
async fn polled(log: &Log) {
    while log.count("get") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn setup(dir: &std::path::Path, double: Double) -> (Arc<Double>, AgentRouter) {
    let double = Arc::new(double);
    let d = double.clone();
    let c = client(dir, |r| r.register_async(d).unwrap());
    (double, AgentRouter::new(c))
}

#[tokio::test]
async fn an_agent_outage_is_polled_through_without_a_second_job() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("double", log.clone()));
    // Far more failed polls than the old limit of 3 (about 350 ms at the start of an attempt).
    double.get_outage.store(25, Ordering::SeqCst);
    let engine = engine(dir.path(), router).await;
    let wf = engine.compile(&spec(ONE)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 8);
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1);
    assert_eq!(log.count("create"), 1);
    assert_eq!(log.count("delete"), 0);
    assert!(log.count("get") > 25);
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_reissued_with_the_same_key_and_attaches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("double", log.clone()));
    double.lost_create_answers.store(3, Ordering::SeqCst);
    let engine = engine(dir.path(), router).await;
    let wf = engine.compile(&spec(ONE)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    let creates: Vec<_> = log.calls().into_iter().filter(|c| c.op == "create").collect();
    assert_eq!(creates.len(), 4);
    assert!(creates.iter().all(|c| c.attempt == 0 && c.key == creates[0].key), "same attempt, same key");
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1, "one job: the re-issued creates attached");
}

#[tokio::test]
async fn a_job_given_up_after_a_lost_create_answer_is_found_and_deleted_before_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    // Every create answer is lost for longer than the attempt's timeout.
    double.lost_create_answers.store(u32::MAX, Ordering::SeqCst);
    let engine = engine(dir.path(), router).await;
    let text = "name: t\nnodes:\n  - id: s\n    task: {type: slow, timeout: 100ms, retries: 1, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = spawn_run(&engine, wf);
    // Let the first attempt time out while its creates go unanswered, then let answers through.
    tokio::time::sleep(Duration::from_millis(60)).await;
    double.lost_create_answers.store(0, Ordering::SeqCst);
    let outcome = within(run).await.unwrap().unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert_eq!(outcome.error.unwrap().code, codes::NODE_TIMED_OUT);
    // Two attempts, two jobs, both deleted; the second attempt never starts before the
    // first one's job (found by re-issuing its create) is deleted.
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 2);
    assert_eq!(log.count("delete"), 2);
    let ops: Vec<(&str, u32)> = log.calls().iter().filter(|c| c.op != "get").map(|c| (c.op, c.attempt)).collect();
    let first_delete = ops.iter().position(|(op, _)| *op == "delete").unwrap();
    let second_create = ops.iter().position(|(op, a)| *op == "create" && *a == 1).unwrap();
    assert!(first_delete < second_create, "{ops:?}");
}

#[tokio::test]
async fn a_create_cut_short_by_the_attempt_timeout_is_reissued_to_find_the_job_and_delete_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    // The first create starts the job and never answers: the attempt's timeout drops the call.
    double.hang_create.store(true, Ordering::SeqCst);
    let engine = engine(dir.path(), router).await;
    let text = "name: t\nnodes:\n  - id: s\n    task: {type: slow, timeout: 100ms, retries: 0, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = spawn_run(&engine, wf);
    within(double.create_called.notified()).await;
    double.hang_create.store(false, Ordering::SeqCst);
    let outcome = within(run).await.unwrap().unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert_eq!(
        outcome.error.unwrap().code,
        codes::NODE_TIMED_OUT,
        "the job was found and deleted, not left unconfirmed"
    );
    let creates: Vec<_> = log.calls().into_iter().filter(|c| c.op == "create").collect();
    assert_eq!(creates.len(), 2, "re-issued once to learn the handle");
    assert_eq!(creates[0].key, creates[1].key);
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1);
    assert_eq!(log.count("delete"), 1);
}

#[tokio::test]
async fn an_unconfirmed_delete_fails_the_node_instead_of_running_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    double.delete_unavailable.store(true, Ordering::SeqCst);
    let mut config = fast_config(dir.path(), router);
    config.poll.confirm_for = Duration::from_millis(200);
    let engine = Engine::open(config).await.unwrap();
    let text = "name: t\nnodes:\n  - id: s\n    task: {type: slow, timeout: 100ms, retries: 3, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    let err = outcome.error.unwrap();
    assert_eq!(err.code, codes::JOB_UNCONFIRMED, "{err}");
    assert!(err.message.contains("may still be running"), "{err}");
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1, "no second job next to an unconfirmed one");
    assert!(log.count("delete") > 1, "DeleteTask is retried while unanswered");
}

#[tokio::test]
async fn user_and_system_failures_spend_separate_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    // System failures (a backend hiccup) with no user retries: the system budget retries them.
    let mut hiccups = Double::new("double", log.clone());
    hiccups.fail_first_attempts = 2;
    let (_, router) = setup(dir.path(), hiccups);
    let engine = engine(dir.path(), router).await;
    let wf = engine.compile(&spec(&ONE.replace("retries: 2", "retries: 0"))).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    let detail = engine.execution(&outcome.id).await.unwrap();
    assert_eq!(detail.attempts.len(), 3);
    assert!(detail.attempts[..2].iter().all(|a| a.error.as_ref().unwrap().origin == Some(ErrorOrigin::System)));

    // With the system budget at 1, the second hiccup fails the node and says why.
    let mut config = fast_config(dir.path(), engine.router().clone());
    config.retry.system_retries = 1;
    let strict = Engine::open(config).await.unwrap();
    let outcome = within(strict.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert!(outcome.error.unwrap().message.contains("no system retries left: 1 allowed"));

    // User failures spend the task's retries: 2 retries, 3 failing attempts → failed after 3.
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let mut own_errors = Double::new("double", log.clone());
    own_errors.fail_first_attempts = 3;
    own_errors.fail_as_user = true;
    let (_, router) = setup(dir.path(), own_errors);
    let engine = common::engine(dir.path(), router).await;
    let wf = engine.compile(&spec(ONE)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    let err = outcome.error.unwrap();
    assert_eq!(err.code, "TEST-E005");
    let detail = engine.execution(&outcome.id).await.unwrap();
    assert!(err.message.contains("no user retries left: 2 allowed"), "{err} {:#?}", detail.attempts);
    assert_eq!(log.count("create"), 3);
}

#[tokio::test]
async fn the_node_deadline_is_final_and_deletes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    let engine = engine(dir.path(), router).await;
    let text = "name: t\nnodes:\n  - id: s\n    deadline: 250ms\n    task: {type: slow, timeout: 100ms, retries: 50, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    let err = outcome.error.unwrap();
    assert!(
        err.code == codes::NODE_DEADLINE || err.message.contains("deadline leaves no time"),
        "the deadline ends the node however many retries are left: {err}"
    );
    let creates = log.count("create");
    assert!((1..=3).contains(&creates), "{creates} attempts in 250 ms of 100 ms attempts, of the 51 allowed");
    assert_eq!(log.count("delete"), creates, "every attempt's job is deleted");
}

#[tokio::test]
async fn the_workflow_deadline_fails_the_execution_and_deletes_running_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    let engine = engine(dir.path(), router).await;
    let text = "name: t\ndeadline: 200ms\nnodes:\n  - id: a\n    task: {type: slow, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n  - id: b\n    task: {type: slow, interface: {inputs: {x: integer}}}\n    inputs: {x: 2}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert_eq!(outcome.error.as_ref().unwrap().code, codes::WORKFLOW_DEADLINE);
    assert_eq!(outcome.failed_node, None);
    assert_eq!(log.count("delete"), 2);
    let detail = engine.execution(&outcome.id).await.unwrap();
    assert!(detail.attempts.iter().all(|a| a.phase == AttemptPhase::Aborted), "{:?}", detail.attempts);
}

const TWO_BRANCHES: &str = r#"
name: branches
failure_policy: fail_after_executable_nodes_complete
nodes:
  - id: bad
    task: {type: double, interface: {inputs: {x: integer}, outputs: {y: integer}}}
    inputs: {x: 1}
  - id: after_bad
    task: {type: echo}
    depends_on: [bad]
  - id: good
    task: {type: double, interface: {inputs: {x: integer}, outputs: {y: integer}}}
    inputs: {x: 2}
  - id: after_good
    task: {type: echo}
    depends_on: [good]
"#;

#[tokio::test]
async fn finishing_what_can_run_after_a_failure_runs_the_independent_branch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let mut double = Double::new("double", log.clone());
    double.fail_first_attempts = 1;
    double.fail_as_user = true;
    let double = Arc::new(double);
    let d = double.clone();
    let l = log.clone();
    let c = client(dir.path(), |r| {
        r.register_async(d).unwrap();
        r.register_sync(Arc::new(Echo { task_type: "echo", log: l })).unwrap();
    });
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    // Both `double` nodes fail on attempt 0 (no retries): `bad` and `good` alike. Make `good`
    // succeed by giving it retries.
    let text = TWO_BRANCHES
        .replace("inputs: {x: 2}", "inputs: {x: 2}")
        .replace("  - id: good\n    task: {type: double,", "  - id: good\n    task: {type: double, retries: 1,");
    let wf = engine.compile(&spec(&text)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert_eq!(outcome.failed_node.as_deref(), Some("bad"));
    let nodes: Vec<String> = log.calls().iter().map(|c| c.node.clone()).collect();
    assert!(nodes.iter().any(|n| n == "after_good"), "the independent branch finished: {:#?}", log.calls());
    assert!(nodes.iter().all(|n| n != "after_bad"), "nothing downstream of the failure runs");

    // Fail fast (the default) starts nothing after the failure.
    let log2 = Arc::new(Log::default());
    let mut double = Double::new("double", log2.clone());
    double.fail_first_attempts = 1;
    double.fail_as_user = true;
    double.polls = 0;
    let d = Arc::new(double);
    let l = log2.clone();
    let dir2 = tempfile::tempdir().unwrap();
    let c = client(dir2.path(), |r| {
        r.register_async(d).unwrap();
        r.register_sync(Arc::new(Echo { task_type: "echo", log: l })).unwrap();
    });
    let engine = common::engine(dir2.path(), AgentRouter::new(c)).await;
    let wf = engine
        .compile(&spec(&text.replace("failure_policy: fail_after_executable_nodes_complete\n", "")))
        .await
        .unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    assert!(log2.calls().iter().all(|c| c.node != "after_good" && c.node != "after_bad"));
}

#[tokio::test]
async fn interruptible_runs_on_interruptible_capacity_until_the_last_system_retry() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let mut hiccups = Double::new("double", log.clone());
    hiccups.fail_first_attempts = 3;
    let (_, router) = setup(dir.path(), hiccups);
    let engine = engine(dir.path(), router).await;
    let text = ONE.replace("retries: 2", "retries: 0\n      interruptible: true");
    let wf = engine.compile(&spec(&text)).await.unwrap();
    let outcome = within(engine.run(&wf, vec![], None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    let flags: Vec<(u32, bool)> = log
        .calls()
        .iter()
        .filter(|c| c.op == "create")
        .map(|c| (c.attempt, c.execution.as_ref().unwrap().interruptible))
        .collect();
    assert_eq!(flags, [(0, true), (1, true), (2, true), (3, false)], "system_retries = 3");
}

#[tokio::test]
async fn abort_deletes_running_jobs_and_records_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    let engine = engine(dir.path(), router.clone()).await;
    let text = "name: t\nnodes:\n  - id: a\n    task: {type: slow, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n  - id: next\n    task: {type: slow, interface: {inputs: {x: integer}}}\n    inputs: {x: 1}\n    depends_on: [a]\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = spawn_run(&engine, wf);
    polled(&log).await;
    // Another engine over the same state (as `tern abort` in another process).
    let id = engine.executions().await.unwrap()[0].id.clone();
    let other = Engine::open(fast_config(dir.path(), router)).await.unwrap();
    let asked = tokio::spawn(async move { other.abort(&id, None).await });
    let outcome = within(run).await.unwrap().unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Aborted, "{outcome:?}");
    assert_eq!(outcome.error.as_ref().unwrap().code, codes::EXECUTION_ABORTED);
    assert_eq!(log.count("delete"), 1);
    assert!(log.calls().iter().all(|c| c.node != "next"));
    let detail = engine.execution(&outcome.id).await.unwrap();
    assert_eq!(detail.execution.phase, ExecutionPhase::Aborted);
    assert_eq!(detail.attempts[0].phase, AttemptPhase::Aborted);
    eprintln!("asked: {:?}", within(asked).await);
    // Aborting again is refused, naming the phase.
    match engine.abort(&outcome.id, None).await {
        Err(e @ EngineError::NotAbortable { .. }) => assert!(e.to_string().contains("ABORTED")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_state_write_halts_the_execution_and_recover_attaches_to_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("double", log.clone()));
    let engine = engine(dir.path(), router.clone()).await;
    // Every write of a resource_meta fails (the disk is full, the database went away...).
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.path().join("tern.db").display())).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER no_meta BEFORE UPDATE OF resource_meta ON node_attempts \
         BEGIN SELECT RAISE(ABORT, 'injected write failure'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let wf = engine.compile(&spec(ONE)).await.unwrap();
    let err = within(engine.run(&wf, vec![], None)).await.unwrap_err();
    assert!(matches!(err, EngineError::Halted { .. }), "{err:?}");
    assert!(err.to_string().contains("tern recover"), "{err}");
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1);
    assert_eq!(log.count("delete"), 0, "a halt leaves the job alone");
    let id = engine.executions().await.unwrap()[0].id.clone();
    assert_eq!(engine.execution(&id).await.unwrap().execution.phase, ExecutionPhase::Running);

    sqlx::query("DROP TRIGGER no_meta").execute(&db).await.unwrap();
    let outcome = within(engine.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1, "recover attached to the job");
    assert_eq!(out_int(&outcome.outputs, "y"), 8);
}

#[tokio::test]
async fn a_recorded_sync_result_is_never_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let slow = Arc::new(Double::new("slow", log.clone()));
    slow.release.store(false, Ordering::SeqCst);
    let (s, l) = (slow.clone(), log.clone());
    let c = client(dir.path(), |r| {
        r.register_async(s).unwrap();
        r.register_sync(Arc::new(Echo { task_type: "echo", log: l })).unwrap();
    });
    let router = AgentRouter::new(c);
    let engine = engine(dir.path(), router.clone()).await;
    let text = "name: t\nnodes:\n  - id: first\n    task: {type: echo, interface: {inputs: {x: integer}, outputs: {x: integer}}}\n    inputs: {x: 1}\n  - id: wait\n    task: {type: slow, interface: {inputs: {x: integer}, outputs: {y: integer}}}\n    inputs: {x: '${first.x}'}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = spawn_run(&engine, wf);
    polled(&log).await;
    run.abort(); // the driver dies (a crash)
    let _ = run.await;
    let id = engine.executions().await.unwrap()[0].id.clone();
    let detail = engine.execution(&id).await.unwrap();
    let first = detail.attempts.iter().find(|a| a.node_id == "first").unwrap();
    assert_eq!(first.phase, AttemptPhase::Succeeded);

    // Recovery resumes `wait` and does not send `first` again.
    slow.release.store(true, Ordering::SeqCst);
    let outcome = within(engine.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(log.calls().iter().filter(|c| c.node == "first").count(), 1);
    assert_eq!(slow.jobs_started.load(Ordering::SeqCst), 1);

    // A recorded result that can no longer be read fails the node, naming it, rather than
    // sending the task again.
    slow.release.store(false, Ordering::SeqCst);
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = spawn_run(&engine, wf);
    while slow.jobs_started.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    let id = engine.executions().await.unwrap().into_iter().find(|e| e.phase == ExecutionPhase::Running).unwrap().id;
    let detail = engine.execution(&id).await.unwrap();
    let first = detail.attempts.iter().find(|a| a.node_id == "first").unwrap();
    assert_eq!(first.phase, AttemptPhase::Succeeded);
    // Its recorded outputs (inline in the state database) become unreadable.
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.path().join("tern.db").display())).await.unwrap();
    sqlx::query("UPDATE node_attempts SET outputs = '//8=' WHERE execution_id = $1 AND node_id = 'first'")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    let outcome = within(engine.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Failed);
    let err = outcome.error.unwrap();
    assert_eq!(err.code, codes::RESULT_LOST, "{err}");
    assert!(err.message.contains("is not run again"), "{err}");
    assert_eq!(log.calls().iter().filter(|c| c.node == "first").count(), 2, "one send per execution");
}

#[tokio::test]
async fn only_the_lease_holder_drives_an_execution_and_a_stale_lease_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let (double, router) = setup(dir.path(), Double::new("slow", log.clone()));
    double.release.store(false, Ordering::SeqCst);
    let engine = engine(dir.path(), router.clone()).await;
    let text = "name: t\nnodes:\n  - id: s\n    task: {type: slow, interface: {inputs: {x: integer}, outputs: {y: integer}}}\n    inputs: {x: 1}\n";
    let wf = engine.compile(&spec(text)).await.unwrap();
    let run = spawn_run(&engine, wf);
    polled(&log).await;
    let id = engine.executions().await.unwrap()[0].id.clone();
    // A second process cannot drive it while the first renews its lease (well past one TTL).
    let other = Engine::open(fast_config(dir.path(), router.clone())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    match other.recover(&id, None).await {
        Err(e @ EngineError::LeaseHeld { .. }) => {
            assert!(e.to_string().contains(&format!(":{}:", std::process::id())), "names the driver: {e}")
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1);

    // The driver dies without releasing (a SIGKILL: no destructor runs) — simulated by a
    // lease written for a dead owner once the real driver is gone.
    run.abort();
    let _ = run.await;
    let store = tern_core_engine::StateStore::open(dir.path()).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(50)).await; // the dropped driver's release lands first
    assert!(matches!(
        store.acquire_lease(&id, "deadhost:1:dead", now, 300).await.unwrap(),
        tern_core_engine::LeaseOutcome::Acquired { .. }
    ));
    assert!(matches!(other.recover(&id, None).await, Err(EngineError::LeaseHeld { .. })));
    tokio::time::sleep(Duration::from_millis(350)).await;
    double.release.store(true, Ordering::SeqCst);
    let outcome = within(other.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1, "the new driver attached to the job");
    assert_eq!(store.lease(&id).await.unwrap(), None, "released at the end");
}
