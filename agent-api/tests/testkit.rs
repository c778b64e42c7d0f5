//! The conformance kit checked against itself: a reference agent (with an emulated backend)
//! passes every check, and each deliberately broken agent or server fails exactly the
//! check it breaks. A check that cannot fail would show up here.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::checks::*;
use tern_agent_api::testkit::{self, Case, Outcome, Report};

// ---------------------------------------------------------------------------------------
// An emulated backend: jobs by id, a submission counter, and a state it can be forced into.
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Backend {
    jobs: Mutex<HashMap<String, Job>>,
    submitted: AtomicU64,
    forced: Mutex<Option<String>>,
}

struct Job {
    until: Instant,
    fail: bool,
    cancelled: bool,
}

impl Backend {
    fn submit(&self, id: &str, ms: u64, fail: bool) {
        let mut jobs = self.jobs.lock().unwrap();
        if !jobs.contains_key(id) {
            self.submitted.fetch_add(1, Ordering::SeqCst);
            jobs.insert(id.to_owned(), Job { until: Instant::now() + Duration::from_millis(ms), fail, cancelled: false });
        }
    }

    fn state(&self, id: &str) -> Option<String> {
        let jobs = self.jobs.lock().unwrap();
        let job = jobs.get(id)?;
        if let Some(forced) = self.forced.lock().unwrap().clone() {
            return Some(forced);
        }
        Some(
            if job.cancelled {
                "CANCELLED"
            } else if Instant::now() < job.until {
                "RUNNING"
            } else if job.fail {
                "FAILED"
            } else {
                "DONE"
            }
            .to_owned(),
        )
    }

    fn cancel(&self, id: &str) {
        if let Some(job) = self.jobs.lock().unwrap().get_mut(id) {
            if Instant::now() < job.until {
                job.cancelled = true;
            }
        }
    }

    fn remove(&self, id: &str) -> bool {
        self.jobs.lock().unwrap().remove(id).is_some()
    }
}

// ---------------------------------------------------------------------------------------
// The reference async agent, and its flaws.
// ---------------------------------------------------------------------------------------

static STATES: StateTable = StateTable::new(
    "refjob",
    &[
        ("PENDING", Phase::Queued),
        ("RUNNING", Phase::Running),
        ("DONE", Phase::Succeeded),
        ("FAILED", Phase::Failed),
        ("CANCELLED", Phase::Aborted),
    ],
);

/// Declared twice, and one state mapped to UNDEFINED.
static BAD_STATES: StateTable = StateTable::new(
    "refjob",
    &[("PENDING", Phase::Queued), ("RUNNING", Phase::Running), ("running", Phase::Succeeded), ("DONE", Phase::Undefined)],
);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    None,
    /// Ignores the idempotency key: a new backend job on every create.
    NewJobPerCreate,
    /// The same, and each job's output is its own number.
    NewJobPerCreateNumbered,
    /// Keys jobs by execution and node only: a retry attempt finds the failed attempt's job.
    IgnoresRetryAttempt,
    /// `unwrap()`s the handle.
    PanicsOnGarbage,
    /// Reports an undecodable handle as an internal error.
    InternalOnGarbage,
    /// DeleteTask never looks at the handle.
    AcceptsGarbageDelete,
    /// A job it does not know is reported RUNNING.
    UnknownJobLooksAlive,
    /// Delete removes the job; a second delete (and any get) is NOT_FOUND.
    DeleteNotIdempotent,
    /// A running job survives DeleteTask.
    DeleteIgnored,
    /// Returns its integer output as a string.
    WrongOutputs,
    /// A failed job is reported SUCCEEDED.
    FailureSucceeds,
    /// Maps states with its own `match`, where anything unexpected is RUNNING.
    UnmappedState,
    /// Declares BAD_STATES.
    BadTable,
    /// Declares no states.
    NoTable,
}

struct RefAgent {
    backend: Arc<Backend>,
    flaw: Flaw,
    fresh: AtomicU64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RefHandle {
    job: String,
}

fn int(literals: &core::LiteralMap, name: &str) -> Option<i64> {
    match literals.literals.get(name)?.value.as_ref()? {
        core::literal::Value::Scalar(s) => match s.value.as_ref()? {
            core::scalar::Value::Primitive(core::Primitive { value: Some(P::Integer(i)) }) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

fn lit(v: P) -> core::Literal {
    core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Primitive(core::Primitive { value: Some(v) })),
        }))),
        ..Default::default()
    }
}

fn answer() -> core::LiteralMap {
    core::LiteralMap { literals: [("n".to_owned(), lit(P::Integer(42)))].into() }
}

impl RefAgent {
    fn handle(&self, meta: &ResourceMeta) -> Result<RefHandle, AgentError> {
        match self.flaw {
            Flaw::PanicsOnGarbage => Ok(meta.decode().unwrap()),
            Flaw::InternalOnGarbage => meta.decode().map_err(|e| AgentError::internal("TERN-X999", e.message)),
            _ => meta.decode(),
        }
    }
}

#[async_trait]
impl AsyncAgent for RefAgent {
    fn name(&self) -> &str {
        "refjob"
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("refjob", 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let ms = int(&task.inputs, "ms").unwrap_or(0).max(0) as u64;
        let fail = int(&task.inputs, "fail").unwrap_or(0) != 0;
        let fresh = || format!("anon-{}", self.fresh.fetch_add(1, Ordering::SeqCst));
        let job = match (&ctx.idempotency_key, self.flaw) {
            (_, Flaw::NewJobPerCreate | Flaw::NewJobPerCreateNumbered) | (None, _) => fresh(),
            (Some(_), Flaw::IgnoresRetryAttempt) => {
                let id = ctx.execution.as_ref().and_then(|m| m.task_execution_id.as_ref());
                let node = id.and_then(|i| i.node_execution_id.as_ref());
                format!("{:?}/{:?}", node.and_then(|n| n.execution_id.as_ref()).map(|e| &e.name), node.map(|n| &n.node_id))
            }
            (Some(k), _) => k.as_str().to_owned(),
        };
        self.backend.submit(&job, ms, fail);
        ResourceMeta::encode(&RefHandle { job })
    }

    async fn get(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle = self.handle(meta)?;
        let Some(state) = self.backend.state(&handle.job) else {
            if self.flaw == Flaw::UnknownJobLooksAlive {
                return Ok(TaskStatus::running("still going"));
            }
            return Err(AgentError::not_found("TERN-X001", format!("no job {:?} at the backend", handle.job)));
        };
        let mut status = if self.flaw == Flaw::UnmappedState {
            match state.as_str() {
                "PENDING" => TaskStatus::queued(""),
                "DONE" => TaskStatus::succeeded(None),
                "FAILED" => TaskStatus::failed(AgentError::user("TERN-X002", "failed")),
                "CANCELLED" => TaskStatus::aborted("cancelled"),
                _ => TaskStatus::running(state.clone()),
            }
        } else {
            STATES.classify(&state)
        };
        if self.flaw == Flaw::FailureSucceeds && status.phase == Phase::Failed {
            status = TaskStatus::succeeded(None);
        }
        if status.phase == Phase::Succeeded {
            let mut outputs = answer();
            if self.flaw == Flaw::WrongOutputs {
                outputs.literals.insert("n".into(), lit(P::StringValue("42".into())));
            }
            if self.flaw == Flaw::NewJobPerCreateNumbered {
                let number = handle.job.trim_start_matches("anon-").parse().unwrap_or(-1);
                outputs.literals.insert("n".into(), lit(P::Integer(number)));
            }
            status.outputs = Some(outputs);
        }
        Ok(status)
    }

    async fn delete(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle = match (self.flaw, self.handle(meta)) {
            (Flaw::AcceptsGarbageDelete, Err(_)) => return Ok(()),
            (_, h) => h?,
        };
        match self.flaw {
            Flaw::DeleteNotIdempotent => {
                if !self.backend.remove(&handle.job) {
                    return Err(AgentError::not_found("TERN-X001", format!("no job {:?}", handle.job)));
                }
            }
            Flaw::DeleteIgnored => {}
            _ => self.backend.cancel(&handle.job),
        }
        Ok(())
    }

    fn backend_states(&self) -> Option<&StateTable> {
        match self.flaw {
            Flaw::BadTable => Some(&BAD_STATES),
            Flaw::NoTable => None,
            _ => Some(&STATES),
        }
    }
}

fn template(task_type: &str) -> core::TaskTemplate {
    let int = core::LiteralType { r#type: Some(core::literal_type::Type::Simple(core::SimpleType::Integer as i32)), ..Default::default() };
    core::TaskTemplate {
        r#type: task_type.into(),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap {
                variables: [("n".to_owned(), core::Variable { r#type: Some(int), ..Default::default() })].into(),
            }),
        }),
        ..Default::default()
    }
}

fn inputs(ms: i64, fail: bool) -> core::LiteralMap {
    core::LiteralMap {
        literals: [("ms".to_owned(), lit(P::Integer(ms))), ("fail".to_owned(), lit(P::Integer(fail as i64)))].into(),
    }
}

struct Subject {
    client: Arc<dyn AgentClient>,
    backend: Arc<Backend>,
    agent: Arc<RefAgent>,
    _dir: tempfile::TempDir,
}

fn subject(flaw: Flaw) -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(Backend::default());
    let agent = Arc::new(RefAgent { backend: backend.clone(), flaw, fresh: AtomicU64::new(0) });
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    registry.register_sync(Arc::new(RefSync::default())).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())));
    Subject { client, backend, agent, _dir: dir }
}

/// The full case: counted jobs, a failing and a long-running task, states driven.
fn full_case(s: &Subject) -> Case {
    let (counted, driven) = (s.backend.clone(), s.backend.clone());
    Case::new(template("refjob"), inputs(20, false))
        .expect_outputs(answer())
        .failing(template("refjob"), inputs(10, true))
        .long_running(template("refjob"), inputs(120_000, false))
        .count_jobs(move || {
            let b = counted.clone();
            async move { b.submitted.load(Ordering::SeqCst) }
        })
        .drive_state(move |state| {
            let b = driven.clone();
            async move { *b.forced.lock().unwrap() = Some(state) }
        })
        .async_agent(s.agent.clone())
        .poll_timeout(Duration::from_secs(3))
        .settle(Duration::from_millis(20))
}

fn failed(report: &Report) -> Vec<&'static str> {
    report.failed().map(|r| r.name).collect()
}

/// Runs the full case on an agent with `flaw`; exactly `expected` fail.
async fn fails_exactly(flaw: Flaw, expected: &[&str]) -> Report {
    let s = subject(flaw);
    let report = testkit::run(s.client.clone(), full_case(&s)).await;
    assert_eq!(failed(&report), expected, "{flaw:?}:\n{report}");
    report
}

// ---------------------------------------------------------------------------------------
// The reference passes; each flaw fails its check.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_reference_agent_passes_every_check() {
    let s = subject(Flaw::None);
    let report = testkit::run(s.client.clone(), full_case(&s)).await;
    report.assert_passes();
    for name in ALL {
        assert_eq!(report.outcome(name), Some(Outcome::Passed), "{name}:\n{report}");
    }
    let idem = report.check(IDEMPOTENT_CREATE).unwrap();
    assert!(idem.notes.iter().any(|n| n.contains("rule: count_jobs")), "{report}");
    assert!(report.check(BACKEND_STATES).unwrap().notes.iter().any(|n| n.contains("drove the backend")), "{report}");
}

#[tokio::test]
async fn without_count_jobs_identical_handles_are_the_rule_and_said_so() {
    let s = subject(Flaw::None);
    let case = Case::new(template("refjob"), inputs(20, false)).async_agent(s.agent.clone()).poll_timeout(Duration::from_secs(3));
    let report = testkit::run(s.client.clone(), case).await;
    report.assert_passes();
    let idem = report.check(IDEMPOTENT_CREATE).unwrap();
    assert!(idem.notes.iter().any(|n| n.contains("rule: identical resource_meta")), "{report}");
    assert_eq!(report.outcome(FAILURE_REPORTED), Some(Outcome::Skipped));
}

#[tokio::test]
async fn a_new_job_per_create_fails_idempotent_create_by_count() {
    let r = fails_exactly(Flaw::NewJobPerCreate, &[IDEMPOTENT_CREATE]).await;
    let text = r.check(IDEMPOTENT_CREATE).unwrap().failures.join("\n");
    assert!(text.contains("expected exactly 1 job") && text.contains("counted 3"), "{r}");
}

#[tokio::test]
async fn a_new_job_per_create_fails_idempotent_create_without_a_counter_too() {
    let s = subject(Flaw::NewJobPerCreate);
    let case = Case::new(template("refjob"), inputs(20, false))
        .long_running(template("refjob"), inputs(120_000, false))
        .async_agent(s.agent.clone())
        .poll_timeout(Duration::from_millis(500));
    let report = testkit::run(s.client.clone(), case).await;
    assert_eq!(failed(&report), [IDEMPOTENT_CREATE], "{report}");
    let c = report.check(IDEMPOTENT_CREATE).unwrap();
    assert!(c.notes.iter().any(|n| n.contains("rule: cancel through one handle")), "{report}");
    assert!(c.failures.iter().any(|f| f.contains("made two jobs")), "{report}");
}

#[tokio::test]
async fn a_retry_attempt_finding_the_old_job_fails_idempotent_create() {
    let r = fails_exactly(Flaw::IgnoresRetryAttempt, &[IDEMPOTENT_CREATE]).await;
    assert!(r.check(IDEMPOTENT_CREATE).unwrap().failures.iter().any(|f| f.contains("retry attempt 1 must be exactly one new job")), "{r}");
    // Without a counter: the same handle for another attempt.
    let s = subject(Flaw::IgnoresRetryAttempt);
    let case = Case::new(template("refjob"), inputs(20, false)).async_agent(s.agent.clone()).poll_timeout(Duration::from_secs(3));
    let report = testkit::run(s.client.clone(), case).await;
    assert_eq!(failed(&report), [IDEMPOTENT_CREATE], "{report}");
    assert!(report.check(IDEMPOTENT_CREATE).unwrap().failures[0].contains("returned the resource_meta of attempt 0"), "{report}");
}

#[tokio::test]
async fn with_neither_counter_nor_long_task_differing_results_fail_idempotent_create() {
    let s = subject(Flaw::NewJobPerCreateNumbered);
    let case = Case::new(template("refjob"), inputs(20, false)).async_agent(s.agent.clone()).poll_timeout(Duration::from_secs(3));
    let report = testkit::run(s.client.clone(), case).await;
    assert_eq!(failed(&report), [IDEMPOTENT_CREATE], "{report}");
    let c = report.check(IDEMPOTENT_CREATE).unwrap();
    assert!(c.notes.iter().any(|n| n.contains("rule: same terminal result") && n.contains("weaker")), "{report}");
    assert!(c.failures[0].contains("reached different results"), "{report}");
    // The weak rule is weak: jobs with equal results pass it, and the report says which rule held.
    let s = subject(Flaw::NewJobPerCreate);
    let case = Case::new(template("refjob"), inputs(20, false)).async_agent(s.agent.clone()).poll_timeout(Duration::from_secs(3));
    let report = testkit::run(s.client.clone(), case).await;
    assert_eq!(report.outcome(IDEMPOTENT_CREATE), Some(Outcome::Passed), "{report}");
}

#[tokio::test]
async fn a_panic_on_a_garbled_handle_fails_bad_resource_meta() {
    let r = fails_exactly(Flaw::PanicsOnGarbage, &[BAD_RESOURCE_META]).await;
    let text = r.check(BAD_RESOURCE_META).unwrap().failures.join("\n");
    assert!(text.contains("panicked") && text.contains("TERN-A012"), "{r}");
}

#[tokio::test]
async fn internal_errors_for_garbled_handles_fail_bad_resource_meta() {
    let r = fails_exactly(Flaw::InternalOnGarbage, &[BAD_RESOURCE_META]).await;
    assert!(r.check(BAD_RESOURCE_META).unwrap().failures.iter().any(|f| f.contains("Internal")), "{r}");
}

#[tokio::test]
async fn a_delete_that_accepts_garbage_fails_bad_resource_meta() {
    let r = fails_exactly(Flaw::AcceptsGarbageDelete, &[BAD_RESOURCE_META]).await;
    assert!(r.check(BAD_RESOURCE_META).unwrap().failures.iter().any(|f| f.contains("DeleteTask answered OK for a garbled handle")), "{r}");
}

#[tokio::test]
async fn an_unknown_job_reported_running_fails_bad_resource_meta() {
    let r = fails_exactly(Flaw::UnknownJobLooksAlive, &[BAD_RESOURCE_META]).await;
    assert!(r.check(BAD_RESOURCE_META).unwrap().failures.iter().any(|f| f.contains("for a job nobody created")), "{r}");
}

#[tokio::test]
async fn a_delete_that_is_not_idempotent_fails_delete_idempotent() {
    let r = fails_exactly(Flaw::DeleteNotIdempotent, &[DELETE_IDEMPOTENT]).await;
    assert!(r.check(DELETE_IDEMPOTENT).unwrap().failures.iter().any(|f| f.contains("DeleteTask #2")), "{r}");
}

#[tokio::test]
async fn a_delete_that_does_not_cancel_fails_delete_idempotent() {
    let r = fails_exactly(Flaw::DeleteIgnored, &[DELETE_IDEMPOTENT]).await;
    assert!(r.check(DELETE_IDEMPOTENT).unwrap().failures.iter().any(|f| f.contains("never reached a terminal phase")), "{r}");
}

#[tokio::test]
async fn outputs_off_the_interface_fail_outputs_match_interface() {
    // The dispatcher itself fails a finished job whose outputs are off its interface (the
    // interface travels in the handle), so the backend's DONE state no longer reads SUCCEEDED
    // either: backend_states fails with it.
    let r = fails_exactly(Flaw::WrongOutputs, &[OUTPUTS_MATCH_INTERFACE, BACKEND_STATES]).await;
    let named = |f: &String| f.contains("TERN-A006") && f.contains("expected integer, got string");
    assert!(r.check(OUTPUTS_MATCH_INTERFACE).unwrap().failures.iter().any(named), "{r}");
}

#[tokio::test]
async fn outputs_other_than_expected_fail_outputs_match_interface() {
    let s = subject(Flaw::None);
    let other = core::LiteralMap { literals: [("n".to_owned(), lit(P::Integer(7)))].into() };
    let report = testkit::run(s.client.clone(), full_case(&s).expect_outputs(other)).await;
    assert_eq!(failed(&report), [OUTPUTS_MATCH_INTERFACE], "{report}");
    assert!(report.check(OUTPUTS_MATCH_INTERFACE).unwrap().failures[0].contains("differ from the expected"), "{report}");
}

#[tokio::test]
async fn a_failure_reported_as_success_fails_failure_reported() {
    // The driven FAILED state is mis-reported too, which the state check sees.
    fails_exactly(Flaw::FailureSucceeds, &[FAILURE_REPORTED, BACKEND_STATES]).await;
}

#[tokio::test]
async fn an_unmapped_backend_state_fails_backend_states() {
    let r = fails_exactly(Flaw::UnmappedState, &[BACKEND_STATES]).await;
    let text = r.check(BACKEND_STATES).unwrap().failures.join("\n");
    assert!(text.contains("an undeclared backend state \"TERN_CONFORMANCE_UNDECLARED_STATE\" must be RETRYABLE_FAILED"), "{r}");
}

#[tokio::test]
async fn a_broken_state_table_fails_backend_states() {
    let r = fails_exactly(Flaw::BadTable, &[BACKEND_STATES]).await;
    let text = r.check(BACKEND_STATES).unwrap().failures.join("\n");
    assert!(text.contains("declared twice") && text.contains("UNDEFINED"), "{r}");
}

#[tokio::test]
async fn silence_about_backend_states_fails_backend_states() {
    fails_exactly(Flaw::NoTable, &[BACKEND_STATES]).await;
    let s = subject(Flaw::NoTable);
    let case = full_case(&s).no_backend_states("it has none");
    let report = testkit::run(s.client.clone(), case).await;
    report.assert_passes();
    assert_eq!(report.outcome(BACKEND_STATES), Some(Outcome::Skipped));
    // Saying "none" while declaring a table is a contradiction.
    let s = subject(Flaw::None);
    let report = testkit::run(s.client.clone(), full_case(&s).no_backend_states("wrongly")).await;
    assert_eq!(failed(&report), [BACKEND_STATES], "{report}");
}

// ---------------------------------------------------------------------------------------
// A sync agent, and servers that break the protocol around a correct agent.
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct RefSync {
    calls: Arc<AtomicU64>,
    /// Calls its backend twice per execution.
    twice: bool,
}

#[async_trait]
impl SyncAgent for RefSync {
    fn name(&self) -> &str {
        "refsync"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("refsync", 0)]
    }
    async fn execute(&self, _ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        self.calls.fetch_add(if self.twice { 2 } else { 1 }, Ordering::SeqCst);
        if int(&task.inputs, "fail").unwrap_or(0) != 0 {
            return Ok(TaskStatus::failed(AgentError::user("TERN-X002", "asked to fail")));
        }
        Ok(TaskStatus::succeeded(Some(answer())))
    }
}

fn sync_case() -> Case {
    Case::new(template("refsync"), inputs(0, false))
        .expect_outputs(answer())
        .failing(template("refsync"), inputs(0, true))
        .sync_agent(Arc::new(RefSync::default()))
        .no_backend_states("answers in-process")
}

/// A client serving only `agent`, and a case counting its backend calls.
fn counted_sync(agent: RefSync) -> (Arc<dyn AgentClient>, Case, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let calls = agent.calls.clone();
    let agent = Arc::new(agent);
    let mut registry = AgentRegistry::new();
    registry.register_sync(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())));
    let case = sync_case().sync_agent(agent).count_jobs(move || {
        let calls = calls.clone();
        async move { calls.load(Ordering::SeqCst) }
    });
    (client, case, dir)
}

#[tokio::test]
async fn a_sync_agent_calling_its_backend_twice_fails_execution_mode() {
    let (client, case, _dir) = counted_sync(RefSync::default());
    let report = testkit::run(client, case).await;
    report.assert_passes();
    assert!(report.check(EXECUTION_MODE).unwrap().notes.iter().any(|n| n.contains("counted 1 call")), "{report}");
    let (client, case, _dir) = counted_sync(RefSync { twice: true, ..Default::default() });
    let report = testkit::run(client, case).await;
    assert_eq!(failed(&report), [EXECUTION_MODE], "{report}");
}

#[tokio::test]
async fn the_reference_sync_agent_passes_and_skips_what_needs_a_job() {
    let s = subject(Flaw::None);
    let report = testkit::run(s.client.clone(), sync_case()).await;
    report.assert_passes();
    for name in [IDEMPOTENT_CREATE, DELETE_IDEMPOTENT, BACKEND_STATES] {
        assert_eq!(report.outcome(name), Some(Outcome::Skipped), "{name}:\n{report}");
    }
    for name in [AGENT_METADATA, BAD_RESOURCE_META, OUTPUTS_MATCH_INTERFACE, FAILURE_REPORTED, EXECUTION_MODE, UNKNOWN_TASK_TYPE] {
        assert_eq!(report.outcome(name), Some(Outcome::Passed), "{name}:\n{report}");
    }
}

#[derive(Clone, Copy, PartialEq)]
enum ServerFlaw {
    /// Wrong-mode calls answered INTERNAL (as flytekit's server does).
    InternalForWrongMode,
    /// NOT_FOUND without naming what was not found.
    AnonymousNotFound,
    /// ListAgents lists nothing.
    ListsNothing,
    /// CreateTask on a sync agent returns a handle.
    SyncCreates,
    /// Panics in DeleteTask, outside any guard.
    PanicsOnDelete,
    /// ListAgents never answers.
    HangsOnListAgents,
}

/// A server around a correct agent that breaks one rule.
struct Bent {
    inner: Arc<dyn AgentClient>,
    flaw: ServerFlaw,
}

impl Bent {
    fn bend(&self, e: AgentError) -> AgentError {
        match self.flaw {
            ServerFlaw::InternalForWrongMode if e.code == codes::WRONG_EXECUTION_MODE => AgentError::new(
                codes::REMOTE,
                format!("failed with error: Traceback ... {}", e.message),
                ErrorOrigin::System,
                Retry::Retryable,
                ErrorClass::Internal,
            ),
            ServerFlaw::AnonymousNotFound if e.class == ErrorClass::NotFound => AgentError::not_found(codes::REMOTE, "not found"),
            _ => e,
        }
    }
}

#[async_trait]
impl AgentClient for Bent {
    fn describe(&self) -> String {
        "bent".into()
    }
    async fn list_agents(&self) -> Result<Vec<admin::Agent>, AgentError> {
        if self.flaw == ServerFlaw::ListsNothing {
            return Ok(Vec::new());
        }
        if self.flaw == ServerFlaw::HangsOnListAgents {
            std::future::pending::<()>().await;
        }
        self.inner.list_agents().await
    }
    async fn get_agent(&self, name: &str) -> Result<admin::Agent, AgentError> {
        self.inner.get_agent(name).await
    }
    async fn create_task(&self, request: admin::CreateTaskRequest) -> Result<Vec<u8>, AgentError> {
        let sync = request.template.as_ref().is_some_and(|t| t.r#type == "refsync" && t.task_type_version == 0);
        if self.flaw == ServerFlaw::SyncCreates && sync {
            return Ok(b"{\"v\":1}".to_vec());
        }
        self.inner.create_task(request).await.map_err(|e| self.bend(e))
    }
    async fn get_task(&self, request: admin::GetTaskRequest) -> Result<admin::Resource, AgentError> {
        self.inner.get_task(request).await.map_err(|e| self.bend(e))
    }
    async fn delete_task(&self, request: admin::DeleteTaskRequest) -> Result<(), AgentError> {
        if self.flaw == ServerFlaw::PanicsOnDelete {
            panic!("delete exploded");
        }
        self.inner.delete_task(request).await.map_err(|e| self.bend(e))
    }
    async fn execute_task_sync(&self, header: admin::CreateRequestHeader, inputs: core::LiteralMap) -> Result<admin::Resource, AgentError> {
        self.inner.execute_task_sync(header, inputs).await.map_err(|e| self.bend(e))
    }
    async fn get_task_metrics(&self, request: admin::GetTaskMetricsRequest) -> Result<admin::GetTaskMetricsResponse, AgentError> {
        self.inner.get_task_metrics(request).await
    }
    async fn get_task_logs(&self, request: admin::GetTaskLogsRequest) -> Result<Vec<admin::GetTaskLogsResponse>, AgentError> {
        self.inner.get_task_logs(request).await
    }
}

async fn bent_run(flaw: ServerFlaw, sync: bool) -> Report {
    let s = subject(Flaw::None);
    let client = Arc::new(Bent { inner: s.client.clone(), flaw });
    let case = if sync { sync_case() } else { full_case(&s) };
    testkit::run(client, case).await
}

#[tokio::test]
async fn internal_wrong_mode_answers_fail_execution_mode() {
    let r = bent_run(ServerFlaw::InternalForWrongMode, false).await;
    assert_eq!(failed(&r), [EXECUTION_MODE], "{r}");
    let r = bent_run(ServerFlaw::InternalForWrongMode, true).await;
    // For a sync agent every async call is the wrong mode: GetTask/DeleteTask probes fail too.
    assert_eq!(failed(&r), [BAD_RESOURCE_META, EXECUTION_MODE], "{r}");
}

#[tokio::test]
async fn a_sync_agent_accepting_create_fails_execution_mode() {
    let r = bent_run(ServerFlaw::SyncCreates, true).await;
    assert_eq!(failed(&r), [EXECUTION_MODE], "{r}");
}

#[tokio::test]
async fn not_found_without_the_name_fails_unknown_task_type() {
    let r = bent_run(ServerFlaw::AnonymousNotFound, false).await;
    assert_eq!(failed(&r), [UNKNOWN_TASK_TYPE], "{r}");
}

#[tokio::test]
async fn an_agent_missing_from_list_agents_fails_agent_metadata() {
    let r = bent_run(ServerFlaw::ListsNothing, false).await;
    assert_eq!(failed(&r), [AGENT_METADATA], "{r}");
}

#[tokio::test]
async fn a_panicking_client_fails_checks_instead_of_the_run() {
    let r = bent_run(ServerFlaw::PanicsOnDelete, false).await;
    assert!(!r.passed());
    assert!(r.failed().any(|c| c.failures.iter().any(|f| f.contains("the check panicked") && f.contains("delete exploded"))), "{r}");
    assert_eq!(r.results.len(), ALL.len(), "every check still ran:\n{r}");
}

#[tokio::test]
async fn a_hanging_call_fails_its_check_after_the_time_budget() {
    let s = subject(Flaw::None);
    let client = Arc::new(Bent { inner: s.client.clone(), flaw: ServerFlaw::HangsOnListAgents });
    let report = testkit::run(client, full_case(&s).check_timeout(Duration::from_secs(2))).await;
    assert_eq!(failed(&report), [AGENT_METADATA], "{report}");
    assert!(report.check(AGENT_METADATA).unwrap().failures[0].contains("did not finish within 2s"), "{report}");
}

#[tokio::test]
#[should_panic(expected = "agent conformance failed")]
async fn assert_passes_fails_the_test() {
    fails_exactly(Flaw::FailureSucceeds, &[FAILURE_REPORTED, BACKEND_STATES]).await.assert_passes();
}
