//! Small test agents (real agent-api agents behind a real InProcessClient) and helpers.
#![allow(dead_code)]
pub mod pg;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::prelude::*;
use tern_core_engine::{AgentRouter, Backoff, Engine, EngineConfig, PollConfig, RetryConfig, StateLocation};
use tokio::sync::Notify;

pub fn int(i: i64) -> core::Literal {
    core::Literal {
        value: Some(LitValue::Scalar(Box::new(core::Scalar {
            value: Some(ScalarValue::Primitive(core::Primitive { value: Some(Prim::Integer(i)) })),
        }))),
        ..Default::default()
    }
}

pub fn as_int(l: &core::Literal) -> Option<i64> {
    match &l.value {
        Some(LitValue::Scalar(s)) => match &s.value {
            Some(ScalarValue::Primitive(core::Primitive { value: Some(Prim::Integer(i)) })) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

pub fn out_int(m: &core::LiteralMap, name: &str) -> i64 {
    m.literals.get(name).and_then(as_int).unwrap_or_else(|| panic!("no integer output {name:?} in {m:?}"))
}

/// One call an agent received.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: &'static str,
    pub node: String,
    pub attempt: u32,
    pub key: Option<String>,
    pub execution: Option<admin::TaskExecutionMetadata>,
    pub output_prefix: String,
    pub at: Instant,
}

#[derive(Debug, Default)]
pub struct Log {
    calls: Mutex<Vec<Call>>,
}

impl Log {
    pub fn push(&self, op: &'static str, ctx: &TaskContext) {
        let id = ctx.execution.as_ref().and_then(|m| m.task_execution_id.as_ref());
        self.calls.lock().unwrap().push(Call {
            op,
            node: id.and_then(|i| i.node_execution_id.as_ref()).map(|n| n.node_id.clone()).unwrap_or_default(),
            attempt: id.map(|i| i.retry_attempt).unwrap_or_default(),
            key: ctx.idempotency_key.as_ref().map(|k| k.to_string()),
            execution: ctx.execution.as_deref().cloned(),
            output_prefix: ctx.output_prefix.clone(),
            at: Instant::now(),
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| c.op == op).count()
    }
}

fn declared_outputs(template: &core::TaskTemplate) -> Vec<String> {
    template
        .interface
        .as_ref()
        .and_then(|i| i.outputs.as_ref())
        .map(|o| o.variables.keys().cloned().collect())
        .unwrap_or_default()
}

/// Sync: returns its inputs under the declared output names that match.
pub struct Echo {
    pub task_type: &'static str,
    pub log: Arc<Log>,
}

#[async_trait::async_trait]
impl SyncAgent for Echo {
    fn name(&self) -> &str {
        self.task_type
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(self.task_type, 0)]
    }
    async fn execute(&self, ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        self.log.push("execute", ctx);
        let names = declared_outputs(&task.template);
        let literals = task.inputs.literals.into_iter().filter(|(k, _)| names.contains(k)).collect();
        Ok(TaskStatus::succeeded(Some(core::LiteralMap { literals })))
    }
}

/// Sync: always fails permanently with a user error.
pub struct Fail {
    pub log: Arc<Log>,
    /// Fail only once this agent was polled (so a sibling task surely exists).
    pub after_get_of: Option<Arc<Double>>,
}

#[async_trait::async_trait]
impl SyncAgent for Fail {
    fn name(&self) -> &str {
        "fail"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("fail", 0)]
    }
    async fn execute(&self, ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
        if let Some(d) = &self.after_get_of {
            d.get_called.notified().await;
        }
        self.log.push("execute", ctx);
        Ok(TaskStatus::failed(AgentError::user("TEST-E001", "refuses negative input")))
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Handle {
    key: String,
}

struct Job {
    x: i64,
    polls: u32,
}

/// Async: `y = 2 * x`, Running for `polls` GetTask calls first. Idempotent by key.
/// `fail_first_attempts`: attempts below this report RETRYABLE_FAILED.
/// `hang_create`: create registers the job then never returns (a crash mid-create).
/// `release`: when false, the job stays Running forever.
/// `outputs_in_file`: write outputs.pb itself and return none in the Resource.
pub struct Double {
    pub task_type: &'static str,
    pub log: Arc<Log>,
    pub polls: u32,
    pub fail_first_attempts: u32,
    pub hang_create: AtomicBool,
    pub release: AtomicBool,
    pub outputs_in_file: bool,
    pub create_called: Notify,
    pub get_called: Notify,
    jobs: Mutex<HashMap<String, Job>>,
    pub jobs_started: AtomicUsize,
    /// Faults: the next N GetTask calls fail with UNAVAILABLE (an agent outage).
    pub get_outage: AtomicU32,
    /// The next N CreateTask calls start (or find) the job, then answer UNAVAILABLE (a
    /// create whose answer was lost).
    pub lost_create_answers: AtomicU32,
    /// DeleteTask answers UNAVAILABLE.
    pub delete_unavailable: AtomicBool,
    /// Failed attempts fail as the user's error (INVALID_ARGUMENT) instead of a system one.
    pub fail_as_user: bool,
}

impl Double {
    pub fn new(task_type: &'static str, log: Arc<Log>) -> Self {
        Self {
            task_type,
            log,
            polls: 2,
            fail_first_attempts: 0,
            hang_create: AtomicBool::new(false),
            release: AtomicBool::new(true),
            outputs_in_file: false,
            create_called: Notify::new(),
            get_called: Notify::new(),
            jobs: Mutex::new(HashMap::new()),
            jobs_started: AtomicUsize::new(0),
            get_outage: AtomicU32::new(0),
            lost_create_answers: AtomicU32::new(0),
            delete_unavailable: AtomicBool::new(false),
            fail_as_user: false,
        }
    }
}

#[async_trait::async_trait]
impl AsyncAgent for Double {
    fn name(&self) -> &str {
        self.task_type
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(self.task_type, 0)]
    }
    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        self.log.push("create", ctx);
        let key =
            ctx.idempotency_key.as_ref().map(|k| k.to_string()).ok_or_else(|| AgentError::user("TEST", "no key"))?;
        let x = task.inputs.literals.get("x").and_then(as_int).unwrap_or(0);
        let attempt =
            ctx.execution.as_ref().and_then(|m| m.task_execution_id.as_ref()).map(|i| i.retry_attempt).unwrap_or(0);
        {
            let mut jobs = self.jobs.lock().unwrap();
            if !jobs.contains_key(&key) {
                self.jobs_started.fetch_add(1, Ordering::SeqCst);
                let polls = if attempt < self.fail_first_attempts { 0 } else { self.polls };
                jobs.insert(key.clone(), Job { x: if attempt < self.fail_first_attempts { -1 } else { x }, polls });
            }
        }
        self.create_called.notify_one();
        if self.hang_create.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if take_one(&self.lost_create_answers) {
            return Err(AgentError::unavailable("TEST-E003", "the answer to CreateTask was lost"));
        }
        // The output prefix travels in the handle so get can write outputs.pb.
        ResourceMeta::encode(&serde_json::json!({"key": key, "prefix": ctx.output_prefix}))
    }
    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        self.log.push("get", ctx);
        self.get_called.notify_one();
        if take_one(&self.get_outage) {
            return Err(AgentError::unavailable("TEST-E004", "agent outage"));
        }
        let h: serde_json::Value = meta.decode()?;
        let key = h["key"].as_str().unwrap_or_default().to_owned();
        let prefix = h["prefix"].as_str().unwrap_or_default().to_owned();
        if !self.release.load(Ordering::SeqCst) {
            return Ok(TaskStatus::running("waiting for release"));
        }
        let x = {
            let mut jobs = self.jobs.lock().unwrap();
            let job = jobs.get_mut(&key).ok_or_else(|| AgentError::not_found("TEST", "unknown job"))?;
            if job.polls > 0 {
                job.polls -= 1;
                return Ok(TaskStatus::running(format!("{} polls to go", job.polls)));
            }
            job.x
        };
        if x < 0 && self.fail_as_user {
            // Like a task raising an exception: the user's failure, retried with its retries.
            let e = AgentError::new(
                "TEST-E005",
                "the task's own error",
                tern_agent_api::error::ErrorOrigin::User,
                tern_agent_api::error::Retry::Retryable,
                tern_agent_api::error::ErrorClass::Internal,
            );
            return Ok(TaskStatus::failed(e));
        }
        if x < 0 {
            return Ok(TaskStatus::failed(AgentError::unavailable("TEST-E002", "backend hiccup")));
        }
        let outputs = core::LiteralMap { literals: [("y".to_owned(), int(2 * x))].into() };
        if self.outputs_in_file {
            let uri = join_uri(&prefix, "outputs.pb");
            ctx.data_store().write(&uri, prost::Message::encode_to_vec(&outputs).into()).await?;
            return Ok(TaskStatus::succeeded(None));
        }
        Ok(TaskStatus::succeeded(Some(outputs)))
    }
    async fn delete(&self, ctx: &TaskContext, _meta: &ResourceMeta) -> Result<(), AgentError> {
        self.log.push("delete", ctx);
        if self.delete_unavailable.load(Ordering::SeqCst) {
            return Err(AgentError::unavailable("TEST-E006", "DeleteTask not answered"));
        }
        Ok(())
    }
}

/// Decrements `n` if positive; true when it did.
fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

/// Async: both branches must be created before either finishes, so they can only
/// succeed if the engine runs them concurrently. Records start/end per key.
pub struct Rendezvous {
    pub log: Arc<Log>,
    pub created: AtomicUsize,
    pub spans: Mutex<HashMap<String, (Instant, Option<Instant>)>>,
}

#[async_trait::async_trait]
impl AsyncAgent for Rendezvous {
    fn name(&self) -> &str {
        "rendezvous"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("rendezvous", 0)]
    }
    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        self.log.push("create", ctx);
        let node = ctx
            .execution
            .as_ref()
            .and_then(|m| m.task_execution_id.as_ref())
            .and_then(|i| i.node_execution_id.as_ref())
            .map(|n| n.node_id.clone())
            .unwrap_or_default();
        self.spans.lock().unwrap().entry(node.clone()).or_insert((Instant::now(), None));
        self.created.fetch_add(1, Ordering::SeqCst);
        let x = task.inputs.literals.get("x").and_then(as_int).unwrap_or(0);
        ResourceMeta::encode(&serde_json::json!({"node": node, "x": x}))
    }
    async fn get(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let h: serde_json::Value = meta.decode()?;
        let node = h["node"].as_str().unwrap_or_default().to_owned();
        if self.created.load(Ordering::SeqCst) < 2 {
            return Ok(TaskStatus::running("waiting for the other branch"));
        }
        if let Some(span) = self.spans.lock().unwrap().get_mut(&node) {
            span.1.get_or_insert_with(Instant::now);
        }
        let outputs = core::LiteralMap { literals: [("y".to_owned(), int(h["x"].as_i64().unwrap_or(0)))].into() };
        Ok(TaskStatus::succeeded(Some(outputs)))
    }
    async fn delete(&self, _ctx: &TaskContext, _meta: &ResourceMeta) -> Result<(), AgentError> {
        Ok(())
    }
}

pub fn client(dir: &Path, register: impl FnOnce(&mut AgentRegistry)) -> Arc<InProcessClient> {
    let mut registry = AgentRegistry::new();
    register(&mut registry);
    Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.join("data"))))
}

pub fn fast_poll() -> PollConfig {
    PollConfig {
        initial: Duration::from_millis(5),
        factor: 2,
        max: Duration::from_millis(20),
        confirm_for: Duration::from_secs(2),
    }
}

pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        system_retries: 3,
        backoff: Backoff { initial: Duration::from_millis(5), factor: 2, max: Duration::from_millis(20) },
        interruptible_failure_threshold: None,
    }
}

pub fn fast_config(dir: &Path, router: AgentRouter) -> EngineConfig {
    let mut config = EngineConfig::new(dir, router);
    config.poll = fast_poll();
    config.retry = fast_retry();
    config.lease_ttl = Duration::from_millis(600);
    config
}

pub async fn engine(dir: &Path, router: AgentRouter) -> Engine {
    Engine::open(fast_config(dir, router)).await.expect("engine opens")
}

/// The state backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh state location for one test: SQLite in `dir`, or a new database on the test
/// PostgreSQL server (`None`: no server, skip; see [`pg`]).
pub async fn state(backend: Backend, dir: &Path, test: &str) -> Option<StateLocation> {
    match backend {
        Backend::Sqlite => Some(StateLocation::Sqlite(dir.to_owned())),
        Backend::Postgres => Some(StateLocation::parse(&pg::fresh_database(test).await?)),
    }
}

/// An engine with its state at `state` and its data in `<dir>/data` (where [`client`]'s
/// agents write too).
pub async fn engine_at(state: &StateLocation, dir: &Path, router: AgentRouter) -> Engine {
    let mut config = EngineConfig::at(state.clone(), router);
    let data = tern_agent_api::datastore::LocalDataStore::new(dir.join("data"));
    config.data_root = data.canonical_uri("");
    config.data_store = Arc::new(data);
    config.poll = fast_poll();
    Engine::open(config).await.expect("engine opens")
}

/// Generates `<name>::sqlite` and `<name>::postgres` tests from `async fn <name>(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}
