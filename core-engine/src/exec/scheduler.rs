//! Starts nodes whose upstream nodes succeeded, at most `max_parallel` at once, in
//! topological order (a ready set fed by upstream counts: O(nodes + edges) per run).
//!
//! The failure policy decides what a failed node does to the rest: fail fast (no new node
//! starts, running ones are cancelled and their jobs deleted; Flyte's
//! `FAIL_IMMEDIATELY`) or let everything that does not depend on the failure finish
//! (`FAIL_AFTER_EXECUTABLE_NODES_COMPLETE`). The first failure is the execution's error.
//! The driver's own signal (abort, halt) and the workflow's deadline stop it too.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use tern_agent_api::core;
use tern_agent_api::error::{AgentError, ErrorClass, ErrorOrigin, Retry};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::attempt::NodeCtx;
use super::node::{run_node, NodeEnd, NodeHistory};
use super::node_inputs::NodeInputs;
use super::signal::RunSignal;
use super::{NodeStart, RunCtx};
use crate::compile::{BindingSource, CompiledNode, CompiledWorkflow};
use crate::error::codes;
use crate::spec::FailurePolicy;
use crate::store::StoreError;

/// A node's state when the scheduler starts (fresh run or recovery).
#[derive(Debug, Clone)]
pub(crate) enum NodeInit {
    Pending(NodeStart, NodeHistory),
    /// Already succeeded (recovery): its outputs.
    Done(core::LiteralMap),
    /// Already failed permanently (recovery).
    Failed(AgentError),
}

pub(crate) struct ScheduleResult {
    pub outputs: HashMap<String, core::LiteralMap>,
    /// The first node that failed (or `None`: the workflow itself, e.g. its deadline), and why.
    pub failure: Option<(Option<String>, AgentError)>,
    /// Set when the driver was told to stop: `Abort` or `Halt`.
    pub stopped_by: Option<RunSignal>,
    /// A state write that failed (the execution halted on it).
    pub store_error: Option<StoreError>,
}

/// A node's inputs from workflow inputs, upstream outputs and constants.
fn assemble_inputs(
    node: &CompiledNode,
    wf_inputs: &core::LiteralMap,
    outputs: &HashMap<String, core::LiteralMap>,
) -> Result<core::LiteralMap, AgentError> {
    let mut literals = std::collections::BTreeMap::new();
    for b in &node.inputs {
        let lit = match &b.source {
            BindingSource::Constant(l) => Some(l.as_ref().clone()),
            BindingSource::WorkflowInput(name) => wf_inputs.literals.get(name).cloned(),
            BindingSource::NodeOutput { node: up, output } => {
                outputs.get(up).and_then(|m| m.literals.get(output)).cloned()
            }
        };
        let lit = lit.ok_or_else(|| {
            AgentError::internal(
                codes::NODE_INTERNAL,
                format!("input {:?} has no value at run time ({:?})", b.name, b.source),
            )
        })?;
        literals.insert(b.name.clone(), lit);
    }
    Ok(core::LiteralMap { literals })
}

/// How one run of the scheduler is set up.
pub(crate) struct Plan<'a> {
    pub wf: &'a CompiledWorkflow,
    pub wf_inputs: &'a core::LiteralMap,
    pub init: HashMap<String, NodeInit>,
    pub max_parallel: usize,
    /// When the workflow's deadline passes (final).
    pub deadline: Option<Instant>,
}

fn workflow_deadline_error() -> AgentError {
    AgentError::new(
        codes::WORKFLOW_DEADLINE,
        "the workflow's deadline passed",
        ErrorOrigin::User,
        Retry::Permanent,
        ErrorClass::DeadlineExceeded,
    )
}

/// `run` is built with a receiver of `signal`; the scheduler sends `Cancel` / `Deadline`
/// on it, and stops on `Abort` / `Halt` sent by the driver.
pub(crate) async fn schedule(
    run: Arc<RunCtx>,
    signal: Arc<watch::Sender<RunSignal>>,
    plan: Plan<'_>,
) -> ScheduleResult {
    let Plan { wf, wf_inputs, mut init, max_parallel, deadline } = plan;
    let max_parallel = max_parallel.max(1);
    let n = wf.nodes.len();
    let index: HashMap<&str, usize> = wf.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in wf.nodes.iter().enumerate() {
        for u in &node.upstream {
            if let Some(&j) = index.get(u.as_str()) {
                downstream[j].push(i);
            }
        }
    }
    let mut outputs: HashMap<String, core::LiteralMap> = HashMap::new();
    let mut pending: Vec<Option<(NodeStart, NodeHistory)>> = vec![None; n];
    let mut failure: Option<(Option<String>, AgentError)> = None;
    for (i, node) in wf.nodes.iter().enumerate() {
        match init.remove(&node.id).unwrap_or(NodeInit::Pending(NodeStart::Fresh { attempt: 0 }, Default::default())) {
            NodeInit::Pending(s, h) => pending[i] = Some((s, h)),
            NodeInit::Done(o) => {
                outputs.insert(node.id.clone(), o);
            }
            NodeInit::Failed(e) => {
                failure.get_or_insert((Some(node.id.clone()), e));
            }
        }
    }
    let mut waiting_on: Vec<usize> =
        wf.nodes.iter().map(|node| node.upstream.iter().filter(|u| !outputs.contains_key(*u)).count()).collect();
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| pending[i].is_some() && waiting_on[i] == 0).collect();
    let fail_fast = wf.failure_policy == FailurePolicy::FailImmediately;
    if failure.is_some() && fail_fast {
        let _ = signal.send(RunSignal::Cancel);
    }
    let mut signal_rx = signal.subscribe();
    let mut write_failures = run.store.write_failures();
    // The driver may have signalled before this subscription (an abort found at start).
    let mut stopped_by =
        Some(*signal_rx.borrow_and_update()).filter(|s| matches!(s, RunSignal::Abort | RunSignal::Halt));
    let mut store_error = None;
    let mut running: JoinSet<(usize, NodeEnd)> = JoinSet::new();
    let mut running_ids: HashMap<tokio::task::Id, usize> = HashMap::new();
    let deadline_at = deadline.map(tokio::time::Instant::from_std);
    loop {
        let now = *signal.borrow();
        let may_start = now == RunSignal::Run && (failure.is_none() || !fail_fast);
        if !may_start && matches!(now, RunSignal::Cancel | RunSignal::Abort | RunSignal::Deadline) {
            // Attempts a crash left in flight still have jobs to give up (recovery of a
            // failed or aborted execution): start them, whatever the parallelism, to do so.
            let in_flight: Vec<usize> = ready
                .iter()
                .copied()
                .filter(|&i| matches!(pending[i], Some((NodeStart::Recreate { .. } | NodeStart::Resume { .. }, _))))
                .collect();
            for i in in_flight {
                ready.remove(&i);
                let Some((start, history)) = pending[i].take() else {
                    continue;
                };
                match assemble_inputs(&wf.nodes[i], wf_inputs, &outputs) {
                    Ok(inputs) => {
                        let cx =
                            NodeCtx { run: run.clone(), node: wf.nodes[i].clone(), inputs: NodeInputs::new(&inputs) };
                        let handle = running.spawn(async move { (i, run_node(cx, start, history).await) });
                        running_ids.insert(handle.id(), i);
                    }
                    Err(e) => {
                        tracing::error!(node = %wf.nodes[i].id, error = %e, "cannot give up an attempt left in flight")
                    }
                }
            }
        }
        while may_start && running.len() < max_parallel {
            let Some(i) = ready.pop_first() else { break };
            let Some((start, history)) = pending[i].take() else {
                continue;
            };
            let node = &wf.nodes[i];
            match assemble_inputs(node, wf_inputs, &outputs) {
                Ok(inputs) => {
                    let cx = NodeCtx { run: run.clone(), node: node.clone(), inputs: NodeInputs::new(&inputs) };
                    let handle = running.spawn(async move { (i, run_node(cx, start, history).await) });
                    running_ids.insert(handle.id(), i);
                }
                Err(e) => {
                    failure.get_or_insert((Some(node.id.clone()), e));
                    if fail_fast {
                        let _ = signal.send(RunSignal::Cancel);
                        break;
                    }
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            _ = async { match deadline_at { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } },
                if *signal.borrow() == RunSignal::Run => {
                failure = Some((None, workflow_deadline_error()));
                let _ = signal.send(RunSignal::Deadline);
                continue;
            }
            _ = write_failures.changed() => {
                // A batch with this execution's writes failed: halt, as on any state write.
                if let Some(e) = run.store.write_failure(&run.execution_id) {
                    store_error.get_or_insert(e);
                    stopped_by = Some(RunSignal::Halt);
                    let _ = signal.send(RunSignal::Halt);
                }
                continue;
            }
            changed = signal_rx.changed() => {
                if changed.is_ok() {
                    let s = *signal_rx.borrow_and_update();
                    if matches!(s, RunSignal::Abort | RunSignal::Halt) {
                        stopped_by = Some(s);
                    }
                }
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let (i, end) = match joined {
            Ok((task_id, (i, end))) => {
                running_ids.remove(&task_id);
                (i, end)
            }
            Err(join_err) => {
                let i = running_ids.remove(&join_err.id()).unwrap_or_default();
                let e = AgentError::internal(codes::NODE_INTERNAL, format!("node task ended abnormally: {join_err}"));
                (i, NodeEnd::Failed(e))
            }
        };
        let id = wf.nodes.get(i).map(|n| n.id.clone()).unwrap_or_default();
        match end {
            NodeEnd::Succeeded(o) => {
                outputs.insert(id, o);
                for &d in &downstream[i] {
                    waiting_on[d] = waiting_on[d].saturating_sub(1);
                    if waiting_on[d] == 0 && pending[d].is_some() {
                        ready.insert(d);
                    }
                }
            }
            NodeEnd::Failed(e) => {
                if failure.is_none() {
                    failure = Some((Some(id), e));
                    if fail_fast {
                        let _ = signal.send(RunSignal::Cancel);
                    }
                }
            }
            // Cancellations that follow the failure (or the abort) that caused them.
            NodeEnd::Aborted => {}
            NodeEnd::Halted(e) => {
                if let Some(e) = e {
                    store_error.get_or_insert(e);
                    let _ = signal.send(RunSignal::Halt);
                }
                stopped_by = Some(RunSignal::Halt);
            }
        }
    }
    // The last node may have ended on the abort before the loop saw the signal change.
    let last = *signal.borrow();
    if stopped_by.is_none() && matches!(last, RunSignal::Abort | RunSignal::Halt) {
        stopped_by = Some(last);
    }
    if failure.is_none() && stopped_by.is_none() {
        // Unreachable for a compiled (acyclic) workflow; never report success regardless.
        if let Some(i) = (0..n).find(|&i| pending[i].is_some()) {
            let e = AgentError::internal(
                codes::NODE_INTERNAL,
                "node never became ready (its upstream nodes did not all succeed)",
            );
            failure = Some((Some(wf.nodes[i].id.clone()), e));
        }
    }
    ScheduleResult { outputs, failure, stopped_by, store_error }
}
