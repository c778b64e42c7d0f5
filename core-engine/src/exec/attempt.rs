//! One node attempt, end to end.
//!
//! Order matters for idempotency: the intent row is written before CreateTask, the
//! resource_meta right after it, the inputs before either. A crash anywhere leaves a
//! state `recover` can resume without launching a second job; a failed state write halts
//! the execution instead of running on state that is not saved.
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tern_agent_api::client::AgentClient;
use tern_agent_api::datastore::join_uri;
use tern_agent_api::error::{AgentError, ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::status::{Phase, TaskStatus};
use tern_agent_api::{admin, core};

use super::job::{give_up, JobState};
use super::node_inputs::NodeInputs;
use super::outputs::collect_outputs;
use super::poll::poll;
use super::signal::{self, Interrupt, RunSignal};
use super::{render, NodeStart, RunCtx, TaskExecutionIntent, NAMESPACE};
use crate::compile::{CompiledNode, ExecutionMode};
use crate::error::codes;
use crate::exec::events::ExecutionEvent;
use crate::store::{AttemptPhase, NewAttempt, RecordedError, StoreError, Write};

/// How an attempt ended.
pub(crate) enum AttemptEnd {
    Succeeded(core::LiteralMap),
    /// Failed; retryable or not, user or system, per the error.
    Failed(AgentError),
    /// Given up because the driver said so (another node failed, abort, workflow deadline).
    Aborted(AgentError),
    /// The driver stopped (lease lost, a state write failed: `Some`); nothing was recorded
    /// and the job, if any, was left alone for `recover`.
    Halted(Option<StoreError>),
}

pub(crate) enum Stop {
    Error(AgentError),
    Interrupt(Interrupt),
    Store(StoreError),
}

impl From<AgentError> for Stop {
    fn from(e: AgentError) -> Self {
        Self::Error(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Interrupt> for Stop {
    fn from(i: Interrupt) -> Self {
        Self::Interrupt(i)
    }
}

impl From<tern_agent_api::datastore::DataStoreError> for Stop {
    fn from(e: tern_agent_api::datastore::DataStoreError) -> Self {
        Self::Error(e.into())
    }
}

/// A node and the inputs assembled for it.
pub(crate) struct NodeCtx {
    pub run: Arc<RunCtx>,
    pub node: Arc<CompiledNode>,
    pub inputs: NodeInputs,
}

impl NodeCtx {
    /// `<data root>/<execution id>/<node id>/<attempt>`
    pub fn output_prefix(&self, attempt: u32) -> String {
        join_uri(&self.run.data_root, &format!("{}/{}/{attempt}", self.run.execution_id, self.node.id))
    }

    /// The node's template as propeller would send it for this attempt: container
    /// placeholders rendered (see `render`).
    fn rendered_template(&self, attempt: u32) -> Result<core::TaskTemplate, AgentError> {
        let mut template = self.node.template.clone();
        if template_is_container(&template) {
            let paths = render::AttemptPaths {
                prefix: self.output_prefix(attempt),
                previous: attempt.checked_sub(1).map(|a| self.output_prefix(a)),
                unique_key: render::unique_key(&self.run.execution_id, &self.node.id, attempt),
            };
            render::render_container(&mut template, &paths, &self.inputs.decode()?);
        }
        Ok(template)
    }

    /// The client that owns the attempt's job: the one recorded with it when resuming
    /// (routing may have changed since), else the node's route.
    fn owner(&self, start: &NodeStart) -> Arc<dyn AgentClient> {
        match start {
            NodeStart::Resume { endpoint, .. } | NodeStart::Recreate { endpoint, .. } => {
                self.run.router.owner(&self.node.category.name, endpoint).clone()
            }
            NodeStart::Fresh { .. } => self.run.router.client_for(&self.node.category.name).clone(),
        }
    }

    pub fn category(&self) -> admin::TaskCategory {
        self.node.category.to_proto()
    }
}

pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{s}s")
    }
}

/// The time limits of one attempt.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// The task's `timeout`, counted from this attempt's start: a retryable user failure.
    pub attempt_timeout: Option<Duration>,
    /// The node's deadline (all attempts): final.
    pub node_deadline: Option<Instant>,
    /// Whether the task may run on interruptible capacity this attempt.
    pub interruptible: bool,
    pub interruptible_failure_threshold: i32,
}

impl Limits {
    /// The earliest limit, and the error it ends the attempt with.
    fn earliest(&self, started: Instant) -> Option<(Instant, AgentError)> {
        let timeout = self.attempt_timeout.map(|t| {
            let e = AgentError::new(
                codes::NODE_TIMED_OUT,
                format!("timed out after {} (task timeout)", human(t)),
                ErrorOrigin::User,
                Retry::Retryable,
                ErrorClass::DeadlineExceeded,
            );
            (started + t, e)
        });
        let deadline = self.node_deadline.map(|at| {
            let e = AgentError::new(
                codes::NODE_DEADLINE,
                "the node's deadline passed",
                ErrorOrigin::User,
                Retry::Permanent,
                ErrorClass::DeadlineExceeded,
            );
            (at, e)
        });
        match (timeout, deadline) {
            (Some(a), Some(b)) => Some(if b.0 <= a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

fn interrupted_error(s: RunSignal) -> AgentError {
    let (code, message) = match s {
        RunSignal::Abort => (codes::EXECUTION_ABORTED, "aborted"),
        RunSignal::Deadline => (codes::WORKFLOW_DEADLINE, "cancelled: the workflow's deadline passed"),
        _ => (codes::NODE_CANCELLED, "cancelled because another node failed"),
    };
    AgentError::new(code, message, ErrorOrigin::System, Retry::Permanent, ErrorClass::FailedPrecondition)
}

/// Runs one attempt and records how it ended.
pub(crate) async fn run_attempt(cx: &NodeCtx, start: NodeStart, limits: Limits) -> AttemptEnd {
    let attempt = start.attempt();
    let intent = match &start {
        NodeStart::Fresh { .. } => {
            TaskExecutionIntent::new(cx.node.template.id.as_ref(), &cx.run.execution_id, &cx.node.id, attempt)
        }
        NodeStart::Recreate { intent, .. } | NodeStart::Resume { intent, .. } => intent.clone(),
    };
    let client = cx.owner(&start);
    let mut job = JobState::default();
    let started = Instant::now();
    let body = execute(cx, &client, &start, &intent, &limits, &mut job);
    let result = match limits.earliest(started) {
        Some((at, e)) => match tokio::time::timeout_at(at.into(), body).await {
            Ok(r) => r,
            Err(_) => Err(Stop::Error(e)),
        },
        None => body.await,
    };
    let sync = cx.node.mode == Some(ExecutionMode::Sync);
    let (end, phase) = match result {
        Ok(outputs) => (AttemptEnd::Succeeded(outputs), AttemptPhase::Succeeded),
        Err(Stop::Store(e)) => return AttemptEnd::Halted(Some(e)),
        Err(Stop::Interrupt(Interrupt::Halt)) => return AttemptEnd::Halted(None),
        Err(Stop::Interrupt(Interrupt::GiveUp(s))) => {
            let mut e = interrupted_error(s);
            if !sync {
                if let Err(unconfirmed) = give_up(cx, &client, &mut job).await {
                    e.message = format!("{}; {}", e.message, unconfirmed.message);
                }
            }
            (AttemptEnd::Aborted(e), AttemptPhase::Aborted)
        }
        Err(Stop::Error(e)) => {
            // A job being abandoned (timeout, a permanent GetTask error) is deleted first;
            // if that cannot be confirmed, the failure becomes final: a retry would run
            // the task a second time next to it.
            let e = if !sync && job.may_be_alive() {
                match give_up(cx, &client, &mut job).await {
                    Ok(()) => e,
                    Err(unconfirmed) => unconfirmed,
                }
            } else {
                e
            };
            let phase = if e.is_retryable() { AttemptPhase::RetryableFailed } else { AttemptPhase::Failed };
            (AttemptEnd::Failed(e), phase)
        }
    };
    let (error, outputs) = match &end {
        AttemptEnd::Failed(e) | AttemptEnd::Aborted(e) => (Some(RecordedError::of(e)), None),
        AttemptEnd::Succeeded(o) => (None, inline_outputs(o)),
        AttemptEnd::Halted(_) => (None, None),
    };
    // Not waited for: a later durable write (a downstream intent, the execution's end)
    // covers it, and a failure halts the execution through the journal.
    let _ = cx.run.store.submit(Write::Phase {
        exec: cx.run.execution_id.clone(),
        node: cx.node.id.clone(),
        attempt,
        phase,
        error,
        outputs,
    });
    end
}

/// Outputs small enough to live in the attempt's row (Flyte inlines small outputs too);
/// larger ones were written to `outputs.pb`.
fn inline_outputs(o: &core::LiteralMap) -> Option<Vec<u8>> {
    (o.encoded_len() <= INLINE_OUTPUTS_MAX).then(|| o.encode_to_vec())
}

/// The largest outputs kept inline in the state database.
pub(crate) const INLINE_OUTPUTS_MAX: usize = 64 * 1024;

async fn execute(
    cx: &NodeCtx,
    client: &Arc<dyn AgentClient>,
    start: &NodeStart,
    intent: &TaskExecutionIntent,
    limits: &Limits,
    job: &mut JobState,
) -> Result<core::LiteralMap, Stop> {
    let run = &cx.run;
    let node = &cx.node;
    let attempt = start.attempt();
    let prefix = cx.output_prefix(attempt);
    let outputs_uri = join_uri(&prefix, "outputs.pb");
    let metadata = admin::TaskExecutionMetadata {
        task_execution_id: Some(intent.to_proto()),
        namespace: NAMESPACE.into(),
        max_attempts: i32::try_from(node.retries.saturating_add(1)).unwrap_or(i32::MAX),
        interruptible: limits.interruptible,
        interruptible_failure_threshold: limits.interruptible_failure_threshold,
        ..Default::default()
    };
    let sync = node.mode == Some(ExecutionMode::Sync);
    // What may already exist of the job, before anything else: an abort or a failure
    // elsewhere must give up a job this attempt may have started before a crash.
    match start {
        NodeStart::Resume { meta, .. } => job.meta = Some(meta.clone()),
        NodeStart::Recreate { .. } if !sync => job.maybe_created = true,
        _ => {}
    }
    // The one copy of the request, kept only until the agent returns a handle (to re-issue
    // it while unanswered): an in-flight attempt holds no template.
    let build_request = || {
        Ok(admin::CreateTaskRequest {
            inputs: Some(cx.inputs.decode()?),
            template: Some(cx.rendered_template(attempt)?.into()),
            output_prefix: prefix.clone(),
            task_execution_metadata: Some(metadata.clone().into()),
        })
    };
    if !sync && job.meta.is_none() {
        job.create = Some(Box::new(build_request()?));
    }
    signal::check(&run.signal)?;
    if !matches!(start, NodeStart::Resume { .. }) {
        // Propeller writes inputs.pb for container tasks, whose command line names it
        // (`{{.input}}`); other agents get their inputs in the request.
        if template_is_container(&node.template) {
            run.data.write(&join_uri(&prefix, "inputs.pb"), cx.inputs.encoded()).await?;
        }
        let attempt_row = NewAttempt {
            execution_id: &run.execution_id,
            node_id: &node.id,
            attempt,
            task_type: &node.category.name,
            task_version: node.category.version,
            agent_endpoint: &client.describe(),
            intent: &intent.to_json(),
            output_uri: &outputs_uri,
        };
        if sync {
            // A sync call may be sent again after a crash until its result is recorded:
            // its intent need not be durable first.
            let _ = run.store.submit(attempt_row.write(AttemptPhase::Running));
        } else {
            // The intent is durable before the agent hears of the task.
            run.store.submit(attempt_row.write(AttemptPhase::Queued)).durable().await?;
        }
    }
    let status = if sync {
        emit_running(cx, attempt, String::new()).await;
        let header = admin::CreateRequestHeader {
            template: Some(cx.rendered_template(attempt)?.into()),
            output_prefix: prefix.clone(),
            task_execution_metadata: Some(metadata.into()),
            max_dataset_size_bytes: 0,
        };
        TaskStatus::from_resource(client.execute_task_sync(header, cx.inputs.decode()?).await?)
    } else {
        let meta = match &job.meta {
            Some(meta) => meta.clone(),
            None => {
                let meta = create(cx, client, attempt, job, &build_request).await?;
                job.meta = Some(meta.clone());
                job.create = None;
                // Not waited for: until it is durable, a recovery re-issues the create and
                // the agent returns this same handle.
                let _ = run.store.submit(Write::ResourceMeta {
                    exec: run.execution_id.clone(),
                    node: node.id.clone(),
                    attempt,
                    meta: meta.clone(),
                });
                meta
            }
        };
        emit_running(cx, attempt, String::new()).await;
        poll(cx, client.as_ref(), &prefix, meta, attempt).await?
    };
    if status.phase != Phase::Succeeded {
        let mut e = status.error.clone().unwrap_or_else(|| {
            AgentError::internal(codes::NODE_INTERNAL, format!("task ended in phase {}", status.phase.as_str_name()))
        });
        // Tern agents put "[CODE] " in Resource.message; the code is kept separately.
        if let Some(rest) = e.message.strip_prefix(&format!("[{}] ", e.code)) {
            e.message = rest.to_owned();
        }
        // The job ended by itself: nothing left to give up.
        job.meta = None;
        job.maybe_created = false;
        return Err(Stop::Error(e));
    }
    let outputs = collect_outputs(cx, status, &outputs_uri).await?;
    Ok(outputs)
}

/// CreateTask, re-issued with the same `task_execution_id` while the agent does not
/// answer (the agent deduplicates it, so a create that did land is attached to, not
/// repeated). Bounded by the attempt's limits (the caller's timeout).
async fn create(
    cx: &NodeCtx,
    client: &Arc<dyn AgentClient>,
    attempt: u32,
    job: &mut JobState,
    build_request: &(dyn Fn() -> Result<admin::CreateTaskRequest, AgentError> + Sync),
) -> Result<Vec<u8>, Stop> {
    // The first try sends the kept request itself (it is large: no copy on the common path).
    // Unless the agent answered, the guard keeps a copy again, also when the attempt's
    // timeout drops this future mid-call: give_up re-issues it to attach.
    let Some(first) = job.create.take() else {
        return Err(Stop::Error(AgentError::internal(codes::NODE_INTERNAL, "no CreateTask request")));
    };
    let mut kept = KeepRequest { job, build: build_request, answered: false };
    let mut first = Some(first);
    let backoff = cx.run.poll.backoff();
    let mut ambiguous = false;
    let mut n = 0;
    loop {
        kept.job.maybe_created = true;
        let req = match first.take() {
            Some(req) => *req,
            None => kept.restore()?.clone(),
        };
        match client.create_task(req).await {
            Ok(meta) => {
                kept.answered = true;
                return Ok(meta);
            }
            Err(e) if e.is_retryable() => {
                kept.restore()?;
                ambiguous = true;
                if n == 0 {
                    emit_running(cx, attempt, format!("CreateTask not answered, re-issuing: {}", e.message)).await;
                }
                tracing::warn!(node = %cx.node.id, attempt, error = %e, "CreateTask failed; re-issuing it");
            }
            Err(e) => {
                kept.job.maybe_created = ambiguous;
                return Err(Stop::Error(e));
            }
        }
        signal::sleep(&cx.run.signal, backoff.delay(n)).await?;
        n += 1;
    }
}

/// Puts the CreateTask request back into the job unless the agent answered it.
struct KeepRequest<'a> {
    job: &'a mut JobState,
    build: &'a (dyn Fn() -> Result<admin::CreateTaskRequest, AgentError> + Sync),
    answered: bool,
}

impl KeepRequest<'_> {
    fn restore(&mut self) -> Result<&admin::CreateTaskRequest, AgentError> {
        if self.job.create.is_none() {
            self.job.create = Some(Box::new((self.build)()?));
        }
        self.job.create.as_deref().ok_or_else(|| AgentError::internal(codes::NODE_INTERNAL, "no CreateTask request"))
    }
}

impl Drop for KeepRequest<'_> {
    fn drop(&mut self) {
        if !self.answered {
            // Without a request, give_up reports the job as unconfirmed (TERN-E314).
            let _ = self.restore();
        }
    }
}

pub(crate) async fn emit_running(cx: &NodeCtx, attempt: u32, message: String) {
    cx.run.events.emit(ExecutionEvent::NodeRunning { node: cx.node.id.clone(), attempt, message }).await;
}

fn template_is_container(t: &core::TaskTemplate) -> bool {
    matches!(t.target, Some(core::task_template::Target::Container(_)))
}
