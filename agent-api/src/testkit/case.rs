//! [`Case`]: what an agent's test tells the kit about the agent under test.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::agent::{AsyncAgent, SyncAgent};
use crate::category::TaskCategory;
use crate::datastore::DataStore;
use crate::proto::flyteidl::core;
use crate::registry::AgentHandle;
use crate::states::StateTable;

/// A task to send: its template and inputs.
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    pub template: core::TaskTemplate,
    pub inputs: core::LiteralMap,
}

impl TaskSpec {
    pub fn new(template: core::TaskTemplate, inputs: core::LiteralMap) -> Self {
        Self { template, inputs }
    }
}

pub(crate) type JobCounter = Arc<dyn Fn() -> BoxFuture<'static, u64> + Send + Sync>;
pub(crate) type StateDriver = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

/// What the case says about backend states.
#[derive(Clone)]
pub(crate) enum StatesDecl {
    /// Nothing: taken from the agent object, if the case gives one.
    Unsaid,
    Table(StateTable),
    None(String),
}

/// The description of one agent under test. Only the successful task is required; every
/// other piece makes a check stricter (or possible at all).
///
/// Checks run one after another, each with fresh `task_execution_id`s (a new execution
/// name per run), so a case can be run against a long-lived agent or server.
#[derive(Clone)]
pub struct Case {
    pub(crate) success: TaskSpec,
    pub(crate) failure: Option<TaskSpec>,
    pub(crate) long_running: Option<TaskSpec>,
    pub(crate) expected_outputs: Option<core::LiteralMap>,
    pub(crate) poll_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) settle: Duration,
    pub(crate) check_timeout: Option<Duration>,
    pub(crate) count_jobs: Option<JobCounter>,
    pub(crate) agent: Option<AgentHandle>,
    pub(crate) states: StatesDecl,
    pub(crate) drive_state: Option<StateDriver>,
    pub(crate) self_describing: bool,
    pub(crate) output_root: String,
    pub(crate) outputs_store: Option<Arc<dyn DataStore>>,
}

impl Case {
    /// A task the agent runs successfully. Its template's `type` and `task_type_version`
    /// name the agent under test; its `interface` is what outputs are checked against.
    pub fn new(template: core::TaskTemplate, inputs: core::LiteralMap) -> Self {
        Self {
            success: TaskSpec::new(template, inputs),
            failure: None,
            long_running: None,
            expected_outputs: None,
            poll_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(50),
            settle: Duration::from_millis(200),
            check_timeout: None,
            count_jobs: None,
            agent: None,
            states: StatesDecl::Unsaid,
            drive_state: None,
            self_describing: false,
            output_root: "conformance".into(),
            outputs_store: None,
        }
    }

    /// The `(task_type, version)` under test.
    pub fn category(&self) -> TaskCategory {
        TaskCategory::new(self.success.template.r#type.clone(), self.success.template.task_type_version)
    }

    /// The successful task's outputs must equal these exactly (not only fit the interface).
    pub fn expect_outputs(mut self, outputs: core::LiteralMap) -> Self {
        self.expected_outputs = Some(outputs);
        self
    }

    /// A task the agent runs and that fails: it must end `FAILED`/`RETRYABLE_FAILED` with a
    /// message (or be refused at create with a clean user error).
    pub fn failing(mut self, template: core::TaskTemplate, inputs: core::LiteralMap) -> Self {
        self.failure = Some(TaskSpec::new(template, inputs));
        self
    }

    /// A task that stays running for much longer than a check takes (tens of seconds), so
    /// deleting it really deletes a running job, which must then report `ABORTED`. Without
    /// it the successful task is deleted, which may already have finished.
    pub fn long_running(mut self, template: core::TaskTemplate, inputs: core::LiteralMap) -> Self {
        self.long_running = Some(TaskSpec::new(template, inputs));
        self
    }

    /// Longest wait for one task to reach a terminal phase (default 30 s).
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Time between two `GetTask` calls while waiting (default 50 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Longest one check may take before it fails as hung (default: 8 × the poll timeout
    /// + 60 s; the `backend_states` check gets 4 poll timeouts more).
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = Some(timeout);
        self
    }

    /// Counts jobs submitted to the backend (an emulator's job list, lines a command appends
    /// to a file, requests an HTTP sink received). With it, "one job per
    /// `task_execution_id`" is checked by counting; without it, by comparing handles. For a
    /// sync agent, one ExecuteTaskSync must count exactly one.
    pub fn count_jobs<F, Fut>(mut self, count: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = u64> + Send + 'static,
    {
        self.count_jobs = Some(Arc::new(move || count().boxed()));
        self
    }

    /// How long to wait after the last job ended before counting again (default 200 ms),
    /// so a late duplicate job is seen.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// The agent object itself (for its declared backend states, and its mode).
    pub fn agent(mut self, agent: AgentHandle) -> Self {
        self.agent = Some(agent);
        self
    }

    pub fn async_agent(self, agent: Arc<dyn AsyncAgent>) -> Self {
        self.agent(AgentHandle::Async(agent))
    }

    pub fn sync_agent(self, agent: Arc<dyn SyncAgent>) -> Self {
        self.agent(AgentHandle::Sync(agent))
    }

    /// The agent's state table, when the agent object is not at hand (a remote agent).
    pub fn states(mut self, table: StateTable) -> Self {
        self.states = StatesDecl::Table(table);
        self
    }

    /// Says, with the reason, that the agent has no backend states to declare (its jobs run
    /// in-process as a Rust enum, or its backend has no states). Without this, an agent
    /// that declares no [`StateTable`] fails the `backend_states` check.
    pub fn no_backend_states(mut self, reason: impl Into<String>) -> Self {
        self.states = StatesDecl::None(reason.into());
        self
    }

    /// Makes the backend (an emulator) report `state` for every job from now on. With it,
    /// the `backend_states` check creates a job per declared state and one with an
    /// undeclared state, and requires `GetTask` to report the table's phase (and the
    /// explicit retryable failure for the undeclared one). That check runs last.
    pub fn drive_state<F, Fut>(mut self, drive: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.drive_state = Some(Arc::new(move |s| drive(s).boxed()));
        self
    }

    /// The agent's handle carries the whole job (it has no job table to look things up
    /// in, like echo's or sleep's): a well-formed handle nobody created may then report
    /// any phase, and a new retry attempt may get the same bytes.
    pub fn self_describing_handles(mut self) -> Self {
        self.self_describing = true;
        self
    }

    /// The root of the output prefixes the kit sends (default `conformance`, relative to
    /// the agent's data store); each task gets `<root>/<run>/<check>/<attempt>`.
    pub fn output_prefix_root(mut self, root: impl Into<String>) -> Self {
        self.output_root = root.into();
        self
    }

    /// The store to read `<output_prefix>/outputs.pb` from when an agent reports
    /// `SUCCEEDED` without outputs in the `Resource` (propeller then reads that file).
    pub fn outputs_store(mut self, store: Arc<dyn DataStore>) -> Self {
        self.outputs_store = Some(store);
        self
    }
}
