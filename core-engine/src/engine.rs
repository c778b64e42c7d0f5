//! [`Engine`]: the API the CLI (and any Rust caller) uses.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tern_agent_api::core;
use tern_agent_api::datastore::{join_uri, DataStore};
use tern_agent_api::error::AgentError;
use tokio::sync::{mpsc, watch};

use crate::compile::{self, BindingSource, CompileErrors, CompiledWorkflow};
use crate::config::{EngineConfig, PollConfig, RetryConfig};
use crate::error::{codes, EngineError};
use crate::exec::events::{Events, ExecutionEvent};
use crate::exec::inputs::{complete_inputs, resolve_inputs};
use crate::exec::node::NodeHistory;
use crate::exec::scheduler::{schedule, NodeInit, Plan};
use crate::exec::signal::RunSignal;
use crate::exec::{NodeStart, RunCtx, TaskExecutionIntent};
use crate::lease::{self, LeaseHold, Monitor};
use crate::router::{AgentRouter, ServedTypes};
use crate::spec::WorkflowSpec;
use crate::store::{
    AttemptPhase, ExecutionPhase, ExecutionRecord, LeaseGrant, LeaseOutcome, NewExecution, NodeAttemptRecord,
    RecordedError, StateStore, StoreError,
};

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutcome {
    pub id: String,
    pub phase: ExecutionPhase,
    /// The workflow outputs (empty unless it succeeded).
    pub outputs: core::LiteralMap,
    /// The node whose failure failed the execution.
    pub failed_node: Option<String>,
    /// That node's error: the agent's code and message (or a TERN-E3xx of the engine).
    pub error: Option<RecordedError>,
}

/// An execution and its node attempts, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub execution: ExecutionRecord,
    pub attempts: Vec<NodeAttemptRecord>,
}

/// The engine. Cheap to clone; every clone shares the state store and agents.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: StateStore,
    data: Arc<dyn DataStore>,
    data_root: String,
    router: AgentRouter,
    max_parallel: usize,
    poll: PollConfig,
    retry: RetryConfig,
    lease_ttl: std::time::Duration,
    /// Who this engine is when it holds an execution's lease: host, pid and a random part.
    owner: String,
}

fn new_execution_id() -> String {
    // Flyte execution names start with a letter and stay short (they end up in k8s names).
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}", &u[..19])
}

impl Engine {
    /// Opens the state store (creating `<state_dir>/tern.db` if needed, or connecting to
    /// PostgreSQL) and applies its migrations.
    pub async fn open(config: EngineConfig) -> Result<Self, EngineError> {
        let store = StateStore::connect(&config.state).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                data: config.data_store,
                data_root: config.data_root,
                router: config.router,
                max_parallel: config.max_parallel.max(1),
                poll: config.poll,
                retry: config.retry,
                lease_ttl: config.lease_ttl,
                owner: lease::owner_id(),
            }),
        })
    }

    /// Reads and parses a workflow file.
    pub fn load_workflow(path: impl AsRef<Path>) -> Result<WorkflowSpec, EngineError> {
        Ok(WorkflowSpec::load(path.as_ref())?)
    }

    /// Parses workflow YAML; `source_name` labels error locations.
    pub fn parse_workflow(text: &str, source_name: &str) -> Result<WorkflowSpec, EngineError> {
        Ok(WorkflowSpec::parse(text, source_name)?)
    }

    /// The state store (for the engine's other `impl` blocks, e.g. `cache.rs`).
    pub(crate) fn state(&self) -> &StateStore {
        &self.inner.store
    }

    pub fn router(&self) -> &AgentRouter {
        &self.inner.router
    }

    /// Asks every agent client what it serves.
    pub async fn discover(&self) -> ServedTypes {
        self.inner.router.discover().await
    }

    /// Type-checks the workflow and checks every task type is served by a reachable
    /// agent (which also fixes each node's sync/async mode). All errors are returned.
    pub async fn compile(&self, spec: &WorkflowSpec) -> Result<CompiledWorkflow, CompileErrors> {
        let served = self.discover().await;
        Self::compile_against(spec, &served)
    }

    fn compile_against(spec: &WorkflowSpec, served: &ServedTypes) -> Result<CompiledWorkflow, CompileErrors> {
        match compile::compile(spec) {
            Ok(mut wf) => {
                compile::check_served(&mut wf, served)?;
                Ok(wf)
            }
            Err(mut errors) => {
                errors.errors.extend(compile::unserved(spec, served));
                Err(errors)
            }
        }
    }

    /// Compiles a recorded workflow once its agents answer: an agent server that cannot be
    /// reached (restarting, an outage) is waited for, with backoff, for up to
    /// `PollConfig.confirm_for`, instead of failing a recovery on an outage.
    async fn compile_when_reachable(
        &self,
        spec: &WorkflowSpec,
        events: &Option<mpsc::Sender<ExecutionEvent>>,
    ) -> Result<CompiledWorkflow, CompileErrors> {
        let started = std::time::Instant::now();
        let backoff = self.inner.poll.backoff();
        let mut n = 0;
        loop {
            let served = self.discover().await;
            let unreachable: Vec<String> = served
                .clients
                .iter()
                .filter_map(|c| {
                    c.served.as_ref().err().filter(|e| e.is_retryable()).map(|e| format!("{}: {e}", c.endpoint))
                })
                .collect();
            if unreachable.is_empty() || started.elapsed() >= self.inner.poll.confirm_for {
                return Self::compile_against(spec, &served);
            }
            if n == 0 {
                let message = format!("waiting for unreachable agent servers: {}", unreachable.join("; "));
                if let Some(tx) = events {
                    let _ = tx.send(ExecutionEvent::Waiting { message }).await;
                }
            }
            tokio::time::sleep(backoff.delay(n)).await;
            n += 1;
        }
    }

    /// Runs a compiled workflow with `name=value` inputs (parsed against the declared
    /// input types; defaults fill the rest). Input problems are returned before anything
    /// runs; a node failure is an `Ok` outcome with phase `FAILED`, also recorded.
    pub async fn run(
        &self,
        wf: &CompiledWorkflow,
        raw_inputs: Vec<(String, String)>,
        events: Option<mpsc::Sender<ExecutionEvent>>,
    ) -> Result<ExecutionOutcome, EngineError> {
        let inputs = resolve_inputs(wf, &raw_inputs)?;
        self.run_literals(wf, inputs, events).await
    }

    /// Like [`Engine::run`] with inputs already as literals (missing ones get defaults).
    pub async fn run_literals(
        &self,
        wf: &CompiledWorkflow,
        inputs: core::LiteralMap,
        events: Option<mpsc::Sender<ExecutionEvent>>,
    ) -> Result<ExecutionOutcome, EngineError> {
        let inputs = complete_inputs(wf, inputs)?;
        // Modes are fixed by discovery; a workflow compiled without it is completed here (a
        // cheap copy: its nodes are shared).
        let checked;
        let wf = if wf.nodes.iter().any(|n| n.mode.is_none()) {
            let mut w = wf.clone();
            let served = self.discover().await;
            compile::check_served(&mut w, &served)?;
            checked = w;
            &checked
        } else {
            wf
        };
        let id = new_execution_id();
        let input_bytes = inputs.encode_to_vec();
        self.inner
            .store
            .insert_execution(&NewExecution {
                id: &id,
                workflow_name: &wf.name,
                workflow_yaml: &wf.spec.to_yaml(),
                workflow_ir: &wf.summary_json().to_string(),
                inputs: &input_bytes,
            })
            .await?;
        let hold = self.take_lease(&id).await?;
        let events = Events(events);
        events.emit(ExecutionEvent::Started { execution_id: id.clone(), workflow: wf.name.clone() }).await;
        let exec_root = join_uri(&self.inner.data_root, &id);
        if let Err(e) = self.inner.data.write(&join_uri(&exec_root, "inputs.pb"), Bytes::from(input_bytes)).await {
            let e = AgentError::from(e);
            return self.finish_failed(&id, None, &e, &events).await;
        }
        let init = wf
            .nodes
            .iter()
            .map(|n| (n.id.clone(), NodeInit::Pending(NodeStart::Fresh { attempt: 0 }, NodeHistory::default())))
            .collect();
        self.execute(&id, &wf, &inputs, init, std::time::SystemTime::now(), events, hold).await
    }

    /// Recorded executions, newest first.
    pub async fn executions(&self) -> Result<Vec<ExecutionRecord>, EngineError> {
        Ok(self.inner.store.list_executions().await?)
    }

    /// One execution with its node attempts (errors included), or `NotFound`.
    pub async fn execution(&self, id: &str) -> Result<ExecutionDetail, EngineError> {
        match self.inner.store.get_execution(id).await? {
            Some((execution, attempts)) => Ok(ExecutionDetail { execution, attempts }),
            None => Err(EngineError::NotFound { id: id.to_owned() }),
        }
    }

    /// Resumes an execution interrupted by a crash: succeeded nodes are not re-run;
    /// attempts with an intent but no resource_meta re-issue CreateTask with the same
    /// `task_execution_id` (the agent deduplicates it); attempts with a resource_meta
    /// resume polling.
    pub async fn recover(
        &self,
        id: &str,
        events: Option<mpsc::Sender<ExecutionEvent>>,
    ) -> Result<ExecutionOutcome, EngineError> {
        let detail = self.execution(id).await?;
        if detail.execution.phase.is_terminal() {
            return Err(EngineError::NotRecoverable { id: id.to_owned(), phase: detail.execution.phase.to_string() });
        }
        let hold = self.take_lease(id).await?;
        // Read again under the lease: the previous driver may have moved on meanwhile.
        let detail = self.execution(id).await?;
        if detail.execution.phase.is_terminal() {
            return Err(EngineError::NotRecoverable { id: id.to_owned(), phase: detail.execution.phase.to_string() });
        }
        let (yaml, input_bytes) =
            self.inner.store.execution_source(id).await?.ok_or_else(|| EngineError::NotFound { id: id.to_owned() })?;
        let spec = WorkflowSpec::parse(&yaml, &format!("execution {id}"))?;
        let wf = self.compile_when_reachable(&spec, &events).await?;
        let inputs = core::LiteralMap::decode(input_bytes.as_slice())
            .map_err(|e| StoreError::Corrupt { what: format!("inputs of execution {id}: {e}") })?;
        let mut by_node: HashMap<&str, Vec<&NodeAttemptRecord>> = HashMap::new();
        for a in &detail.attempts {
            by_node.entry(a.node_id.as_str()).or_default().push(a);
        }
        let mut init = HashMap::new();
        for n in &wf.nodes {
            let state = match by_node.get_mut(n.id.as_str()) {
                None => NodeInit::Pending(NodeStart::Fresh { attempt: 0 }, NodeHistory::default()),
                Some(attempts) => {
                    attempts.sort_by_key(|a| a.attempt);
                    self.resume_state(attempts, n.retries).await?
                }
            };
            init.insert(n.id.clone(), state);
        }
        let events = Events(events);
        events.emit(ExecutionEvent::Started { execution_id: id.to_owned(), workflow: wf.name.clone() }).await;
        let created = chrono::DateTime::parse_from_rfc3339(&detail.execution.created_at)
            .map(std::time::SystemTime::from)
            .unwrap_or_else(|_| std::time::SystemTime::now());
        self.execute(id, &wf, &inputs, init, created, events, hold).await
    }

    /// Takes the execution's lease for this engine, or says who holds it.
    async fn take_lease(&self, id: &str) -> Result<LeaseHold, EngineError> {
        let ttl = self.inner.lease_ttl;
        let now = lease::now_ms();
        let mut outcome = self.inner.store.acquire_lease(id, &self.inner.owner, now, lease::ms(ttl)).await?;
        if let LeaseOutcome::Held { owner, expires_at_ms } = &outcome {
            // A driver on this host whose process is gone (SIGKILL, a crash) will never renew:
            // its lease is stale now, not only once it expires.
            if lease::holder_is_gone(owner) {
                let at = (*expires_at_ms).max(now) + 1;
                tracing::warn!(execution = id, holder = %owner, "the lease holder's process is gone; taking over");
                outcome = self
                    .inner
                    .store
                    .acquire_lease(id, &self.inner.owner, at, (lease::ms(ttl) - (at - now)).max(1_000))
                    .await?;
            }
        }
        match outcome {
            LeaseOutcome::Acquired { how, .. } => {
                if let LeaseGrant::TakenOver { previous_owner, .. } = how {
                    tracing::warn!(execution = id, %previous_owner, "took the execution over from a stale driver");
                }
                Ok(LeaseHold::new(self.inner.store.clone(), id, &self.inner.owner))
            }
            LeaseOutcome::Held { owner, expires_at_ms } => {
                Err(EngineError::LeaseHeld { id: id.to_owned(), owner, until: lease::rfc3339(expires_at_ms) })
            }
        }
    }

    /// Aborts an execution: its phase becomes ABORTING; the process driving it (seeing
    /// that within a second) deletes every running node's job and records ABORTED. When no
    /// process drives it, this call does so itself, like `recover` would, giving up every
    /// attempt left in flight (re-issuing a create whose answer was lost, to find and
    /// delete its job).
    pub async fn abort(
        &self,
        id: &str,
        events: Option<mpsc::Sender<ExecutionEvent>>,
    ) -> Result<ExecutionOutcome, EngineError> {
        match self.inner.store.request_abort(id).await? {
            None => return Err(EngineError::NotFound { id: id.to_owned() }),
            Some(phase) if phase.is_terminal() => {
                return Err(EngineError::NotAbortable { id: id.to_owned(), phase: phase.to_string() })
            }
            Some(_) => {}
        }
        loop {
            match self.recover(id, events.clone()).await {
                // A live driver carries the abort out: wait for it to record the end.
                Err(EngineError::LeaseHeld { .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let detail = self.execution(id).await?;
                    if detail.execution.phase.is_terminal() {
                        return Ok(outcome_of(detail.execution));
                    }
                }
                // It finished meanwhile (aborted, or it ended before seeing the request).
                Err(EngineError::NotRecoverable { .. }) => return Ok(outcome_of(self.execution(id).await?.execution)),
                other => return other,
            }
        }
    }

    /// Gives up driving `id` from this engine without touching its jobs (Ctrl-C in `tern
    /// run`): releases the lease this engine holds, so `tern recover` or `tern abort` can
    /// take over at once. Call it after dropping the run's future.
    pub async fn detach(&self, id: &str) -> Result<(), EngineError> {
        self.inner.store.release_lease(id, &self.inner.owner).await?;
        Ok(())
    }

    /// Where a node resumes, from its attempts (sorted by attempt number, at least one).
    async fn resume_state(&self, attempts: &[&NodeAttemptRecord], retries: u32) -> Result<NodeInit, EngineError> {
        let Some(a) = attempts.last() else {
            return Ok(NodeInit::Pending(NodeStart::Fresh { attempt: 0 }, NodeHistory::default()));
        };
        let mut history = NodeHistory {
            began: attempts
                .first()
                .and_then(|f| chrono::DateTime::parse_from_rfc3339(&f.created_at).ok())
                .map(std::time::SystemTime::from),
            ..Default::default()
        };
        for f in attempts.iter().filter(|f| matches!(f.phase, AttemptPhase::RetryableFailed | AttemptPhase::Failed)) {
            match f.error.as_ref().and_then(|e| e.origin) {
                Some(tern_agent_api::error::ErrorOrigin::System) => history.system_failures += 1,
                _ => history.user_failures += 1,
            }
        }
        let intent = || -> Result<TaskExecutionIntent, EngineError> {
            serde_json::from_value(a.intent.clone()).map_err(|e| {
                StoreError::Corrupt { what: format!("intent of {} attempt {}: {e}", a.node_id, a.attempt) }.into()
            })
        };
        let recorded_error = || {
            let e = a.error.clone().unwrap_or(RecordedError::new(codes::NODE_INTERNAL, "failed"));
            AgentError::internal(e.code, e.message)
        };
        let endpoint = a.agent_endpoint.clone();
        Ok(match a.phase {
            // A recorded result is never re-run (a sync task would be sent twice): unreadable
            // outputs fail the node, naming them.
            AttemptPhase::Succeeded => {
                let bytes = match &a.outputs {
                    Some(inline) => Ok(Bytes::from(inline.clone())),
                    None => self.inner.data.read(&a.output_uri).await.map_err(|e| e.to_string()),
                };
                match bytes.and_then(|b| core::LiteralMap::decode(b).map_err(|e| e.to_string())) {
                    Ok(m) => NodeInit::Done(m),
                    Err(e) => NodeInit::Failed(result_lost(a, &e)),
                }
            }
            AttemptPhase::Queued => {
                NodeInit::Pending(NodeStart::Recreate { attempt: a.attempt, intent: intent()?, endpoint }, history)
            }
            AttemptPhase::Running => match &a.resource_meta {
                Some(meta) => NodeInit::Pending(
                    NodeStart::Resume { attempt: a.attempt, intent: intent()?, meta: meta.clone(), endpoint },
                    history,
                ),
                None => {
                    NodeInit::Pending(NodeStart::Recreate { attempt: a.attempt, intent: intent()?, endpoint }, history)
                }
            },
            AttemptPhase::RetryableFailed => {
                let left = match a.error.as_ref().and_then(|e| e.origin) {
                    Some(tern_agent_api::error::ErrorOrigin::System) => {
                        history.system_failures <= self.inner.retry.system_retries
                    }
                    _ => history.user_failures <= retries,
                };
                if left {
                    NodeInit::Pending(NodeStart::Fresh { attempt: a.attempt + 1 }, history)
                } else {
                    NodeInit::Failed(recorded_error())
                }
            }
            AttemptPhase::Aborted => NodeInit::Pending(NodeStart::Fresh { attempt: a.attempt + 1 }, history),
            AttemptPhase::Failed => NodeInit::Failed(recorded_error()),
        })
    }

    async fn execute(
        &self,
        id: &str,
        wf: &CompiledWorkflow,
        inputs: &core::LiteralMap,
        init: HashMap<String, NodeInit>,
        created: std::time::SystemTime,
        events: Events,
        hold: LeaseHold,
    ) -> Result<ExecutionOutcome, EngineError> {
        let result = self.drive(id, wf, inputs, init, created, events, &hold).await;
        hold.release().await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        id: &str,
        wf: &CompiledWorkflow,
        inputs: &core::LiteralMap,
        init: HashMap<String, NodeInit>,
        created: std::time::SystemTime,
        events: Events,
        hold: &LeaseHold,
    ) -> Result<ExecutionOutcome, EngineError> {
        self.inner.store.clear_write_failure(id);
        let (signal_tx, signal_rx) = watch::channel(RunSignal::Run);
        let signal_tx = Arc::new(signal_tx);
        let run = Arc::new(RunCtx {
            store: self.inner.store.clone(),
            data: self.inner.data.clone(),
            data_root: self.inner.data_root.clone(),
            router: self.inner.router.clone(),
            poll: self.inner.poll.clone(),
            retry: self.inner.retry.clone(),
            execution_id: id.to_owned(),
            events: events.clone(),
            signal: signal_rx,
        });
        let deadline = wf.deadline.map(|d| {
            let elapsed = std::time::SystemTime::now().duration_since(created).unwrap_or_default();
            std::time::Instant::now() + d.saturating_sub(elapsed)
        });
        // An abort requested while nobody drove the execution is carried out now.
        if self.inner.store.execution_phase(id).await? == Some(ExecutionPhase::Aborting) {
            let _ = signal_tx.send(RunSignal::Abort);
        }
        let monitor = Monitor::start(hold, self.inner.lease_ttl, signal_tx.clone());
        let plan = Plan { wf, wf_inputs: inputs, init, max_parallel: self.inner.max_parallel, deadline };
        let result = schedule(run, signal_tx, plan).await;
        // Writes nobody waited for are committed now: one that fails halts the execution
        // here, before its end is recorded on state that is not saved.
        self.inner.store.flush().await;
        if let Some(source) = result.store_error.or_else(|| self.inner.store.write_failure(id)) {
            return Err(EngineError::Halted { id: id.to_owned(), source });
        }
        match result.stopped_by {
            Some(RunSignal::Abort) => return self.finish_aborted(id, &events).await,
            Some(RunSignal::Halt) => {
                let owner = monitor.lost_to().unwrap_or_else(|| "another process".into());
                return Err(EngineError::LeaseLost { id: id.to_owned(), owner });
            }
            _ => {}
        }
        if let Some((node, e)) = result.failure {
            return self.finish_failed(id, node.as_deref(), &e, &events).await;
        }
        let mut literals = std::collections::BTreeMap::new();
        for o in &wf.outputs {
            let lit = match &o.source {
                BindingSource::WorkflowInput(name) => inputs.literals.get(name).cloned(),
                BindingSource::NodeOutput { node, output } => {
                    result.outputs.get(node).and_then(|m| m.literals.get(output)).cloned()
                }
                BindingSource::Constant(l) => Some(l.as_ref().clone()),
            };
            match lit {
                Some(l) => {
                    literals.insert(o.name.clone(), l);
                }
                None => {
                    let e = AgentError::internal(
                        codes::NODE_INTERNAL,
                        format!("workflow output {:?} has no value", o.name),
                    );
                    return self.finish_failed(id, None, &e, &events).await;
                }
            }
        }
        let outputs = core::LiteralMap { literals };
        let uri = join_uri(&join_uri(&self.inner.data_root, id), "outputs.pb");
        if let Err(e) = self.inner.data.write(&uri, Bytes::from(outputs.encode_to_vec())).await {
            return self.finish_failed(id, None, &AgentError::from(e), &events).await;
        }
        self.inner.store.finish_execution(id, ExecutionPhase::Succeeded, None, None, Some(&uri)).await?;
        events.emit(ExecutionEvent::Finished { execution_id: id.to_owned(), phase: ExecutionPhase::Succeeded }).await;
        Ok(ExecutionOutcome {
            id: id.to_owned(),
            phase: ExecutionPhase::Succeeded,
            outputs,
            failed_node: None,
            error: None,
        })
    }

    async fn finish_aborted(&self, id: &str, events: &Events) -> Result<ExecutionOutcome, EngineError> {
        let error = RecordedError::new(codes::EXECUTION_ABORTED, "aborted; running jobs were deleted");
        self.inner.store.finish_execution(id, ExecutionPhase::Aborted, None, Some(&error), None).await?;
        events.emit(ExecutionEvent::Finished { execution_id: id.to_owned(), phase: ExecutionPhase::Aborted }).await;
        Ok(ExecutionOutcome {
            id: id.to_owned(),
            phase: ExecutionPhase::Aborted,
            outputs: core::LiteralMap::default(),
            failed_node: None,
            error: Some(error),
        })
    }

    async fn finish_failed(
        &self,
        id: &str,
        node: Option<&str>,
        e: &AgentError,
        events: &Events,
    ) -> Result<ExecutionOutcome, EngineError> {
        let message = match node {
            Some(n) => format!("node `{n}` failed: {}", e.message),
            None => e.message.clone(),
        };
        let error = RecordedError::new(e.code.to_string(), message);
        self.inner.store.finish_execution(id, ExecutionPhase::Failed, node, Some(&error), None).await?;
        events.emit(ExecutionEvent::Finished { execution_id: id.to_owned(), phase: ExecutionPhase::Failed }).await;
        Ok(ExecutionOutcome {
            id: id.to_owned(),
            phase: ExecutionPhase::Failed,
            outputs: core::LiteralMap::default(),
            failed_node: node.map(str::to_owned),
            error: Some(error),
        })
    }
}

fn result_lost(a: &NodeAttemptRecord, why: &str) -> AgentError {
    AgentError::new(
        codes::RESULT_LOST,
        format!(
            "attempt {} of node {} succeeded but its recorded outputs ({}) cannot be read back: {why}; \
             the node is not run again",
            a.attempt, a.node_id, a.output_uri
        ),
        tern_agent_api::error::ErrorOrigin::System,
        tern_agent_api::error::Retry::Permanent,
        tern_agent_api::error::ErrorClass::Internal,
    )
}

/// The outcome of an execution another process drove, as recorded.
fn outcome_of(x: ExecutionRecord) -> ExecutionOutcome {
    ExecutionOutcome {
        id: x.id,
        phase: x.phase,
        outputs: core::LiteralMap::default(),
        failed_node: x.failed_node,
        error: x.error,
    }
}
