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
use crate::config::{EngineConfig, PollConfig};
use crate::error::{codes, EngineError};
use crate::exec::events::{Events, ExecutionEvent};
use crate::exec::inputs::{complete_inputs, resolve_inputs};
use crate::exec::scheduler::{schedule, NodeInit};
use crate::exec::{NodeStart, RunCtx, TaskExecutionIntent};
use crate::router::{AgentRouter, ServedTypes};
use crate::spec::WorkflowSpec;
use crate::store::{
    AttemptPhase, ExecutionPhase, ExecutionRecord, NewExecution, NodeAttemptRecord, RecordedError, StateStore,
    StoreError,
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
}

fn new_execution_id() -> String {
    // Flyte execution names start with a letter and stay short (they end up in k8s names).
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}", &u[..19])
}

impl Engine {
    /// Opens the state store (creating `<state_dir>/tern.db` if needed).
    pub async fn open(config: EngineConfig) -> Result<Self, EngineError> {
        let store = StateStore::open(&config.state_dir).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                data: config.data_store,
                data_root: config.data_root,
                router: config.router,
                max_parallel: config.max_parallel.max(1),
                poll: config.poll,
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
        match compile::compile(spec) {
            Ok(mut wf) => {
                compile::check_served(&mut wf, &served)?;
                Ok(wf)
            }
            Err(mut errors) => {
                errors.errors.extend(compile::unserved(spec, &served));
                Err(errors)
            }
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
        let mut wf = wf.clone();
        if wf.nodes.iter().any(|n| n.mode.is_none()) {
            let served = self.discover().await;
            compile::check_served(&mut wf, &served)?;
        }
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
        let events = Events(events);
        events.emit(ExecutionEvent::Started { execution_id: id.clone(), workflow: wf.name.clone() }).await;
        let exec_root = join_uri(&self.inner.data_root, &id);
        if let Err(e) = self.inner.data.write(&join_uri(&exec_root, "inputs.pb"), Bytes::from(input_bytes)).await {
            let e = AgentError::from(e);
            return self.finish_failed(&id, None, &e, &events).await;
        }
        let init =
            wf.nodes.iter().map(|n| (n.id.clone(), NodeInit::Pending(NodeStart::Fresh { attempt: 0 }))).collect();
        self.execute(&id, &wf, &inputs, init, events).await
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
        let (yaml, input_bytes) =
            self.inner.store.execution_source(id).await?.ok_or_else(|| EngineError::NotFound { id: id.to_owned() })?;
        let spec = WorkflowSpec::parse(&yaml, &format!("execution {id}"))?;
        let wf = self.compile(&spec).await?;
        let inputs = core::LiteralMap::decode(input_bytes.as_slice())
            .map_err(|e| StoreError::Corrupt { what: format!("inputs of execution {id}: {e}") })?;
        let mut latest: HashMap<&str, &NodeAttemptRecord> = HashMap::new();
        for a in &detail.attempts {
            if latest.get(a.node_id.as_str()).is_none_or(|b| a.attempt > b.attempt) {
                latest.insert(&a.node_id, a);
            }
        }
        let mut init = HashMap::new();
        for n in &wf.nodes {
            let state = match latest.get(n.id.as_str()) {
                None => NodeInit::Pending(NodeStart::Fresh { attempt: 0 }),
                Some(a) => self.resume_state(a, n.retries).await?,
            };
            init.insert(n.id.clone(), state);
        }
        let events = Events(events);
        events.emit(ExecutionEvent::Started { execution_id: id.to_owned(), workflow: wf.name.clone() }).await;
        self.execute(id, &wf, &inputs, init, events).await
    }

    async fn resume_state(&self, a: &NodeAttemptRecord, retries: u32) -> Result<NodeInit, EngineError> {
        let intent = || -> Result<TaskExecutionIntent, EngineError> {
            serde_json::from_value(a.intent.clone()).map_err(|e| {
                StoreError::Corrupt { what: format!("intent of {} attempt {}: {e}", a.node_id, a.attempt) }.into()
            })
        };
        let recorded_error = || {
            let e = a
                .error
                .clone()
                .unwrap_or(RecordedError { code: codes::NODE_INTERNAL.into(), message: "failed".into() });
            AgentError::internal(e.code, e.message)
        };
        Ok(match a.phase {
            AttemptPhase::Succeeded => match self.inner.data.read(&a.output_uri).await {
                Ok(bytes) => match core::LiteralMap::decode(bytes) {
                    Ok(m) => NodeInit::Done(m),
                    Err(_) => NodeInit::Pending(NodeStart::Fresh { attempt: a.attempt + 1 }),
                },
                // Outputs lost: run the node again as a new attempt.
                Err(_) => NodeInit::Pending(NodeStart::Fresh { attempt: a.attempt + 1 }),
            },
            AttemptPhase::Queued => NodeInit::Pending(NodeStart::Recreate { attempt: a.attempt, intent: intent()? }),
            AttemptPhase::Running => match &a.resource_meta {
                Some(meta) => {
                    NodeInit::Pending(NodeStart::Resume { attempt: a.attempt, intent: intent()?, meta: meta.clone() })
                }
                None => NodeInit::Pending(NodeStart::Recreate { attempt: a.attempt, intent: intent()? }),
            },
            AttemptPhase::RetryableFailed if a.attempt < retries => {
                NodeInit::Pending(NodeStart::Fresh { attempt: a.attempt + 1 })
            }
            AttemptPhase::Aborted => NodeInit::Pending(NodeStart::Fresh { attempt: a.attempt + 1 }),
            AttemptPhase::RetryableFailed | AttemptPhase::Failed => NodeInit::Failed(recorded_error()),
        })
    }

    async fn execute(
        &self,
        id: &str,
        wf: &CompiledWorkflow,
        inputs: &core::LiteralMap,
        init: HashMap<String, NodeInit>,
        events: Events,
    ) -> Result<ExecutionOutcome, EngineError> {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let run = Arc::new(RunCtx {
            store: self.inner.store.clone(),
            data: self.inner.data.clone(),
            data_root: self.inner.data_root.clone(),
            router: self.inner.router.clone(),
            poll: self.inner.poll.clone(),
            execution_id: id.to_owned(),
            events: events.clone(),
            cancel: cancel_rx,
        });
        let result = schedule(run, cancel_tx, wf, inputs, init, self.inner.max_parallel).await;
        if let Some((node, e)) = result.failure {
            return self.finish_failed(id, Some(&node), &e, &events).await;
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
        let error = RecordedError { code: e.code.to_string(), message };
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
