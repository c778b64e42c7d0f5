//! Starts nodes whose upstream nodes succeeded, at most `max_parallel` at once. When a
//! node fails permanently no new node starts and running ones are cancelled (their
//! tasks deleted); the first failure is the execution's error.
use std::collections::HashMap;
use std::sync::Arc;

use tern_agent_api::core;
use tern_agent_api::error::AgentError;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::attempt::NodeCtx;
use super::node::run_node;
use super::{NodeStart, RunCtx};
use crate::compile::{BindingSource, CompiledNode, CompiledWorkflow};
use crate::error::codes;

/// A node's state when the scheduler starts (fresh run or recovery).
#[derive(Debug, Clone)]
pub(crate) enum NodeInit {
    Pending(NodeStart),
    /// Already succeeded (recovery): its outputs.
    Done(core::LiteralMap),
    /// Already failed permanently (recovery).
    Failed(AgentError),
}

pub(crate) struct ScheduleResult {
    pub outputs: HashMap<String, core::LiteralMap>,
    /// The first node that failed, and why.
    pub failure: Option<(String, AgentError)>,
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

/// `run` is built with `cancel_rx`; `cancel_tx` is how this function stops running nodes.
pub(crate) async fn schedule(
    run: Arc<RunCtx>,
    cancel_tx: watch::Sender<bool>,
    wf: &CompiledWorkflow,
    wf_inputs: &core::LiteralMap,
    mut init: HashMap<String, NodeInit>,
    max_parallel: usize,
) -> ScheduleResult {
    let max_parallel = max_parallel.max(1);
    let mut outputs: HashMap<String, core::LiteralMap> = HashMap::new();
    let mut pending: HashMap<String, NodeStart> = HashMap::new();
    let mut failure: Option<(String, AgentError)> = None;
    for n in &wf.nodes {
        match init.remove(&n.id).unwrap_or(NodeInit::Pending(NodeStart::Fresh { attempt: 0 })) {
            NodeInit::Pending(s) => {
                pending.insert(n.id.clone(), s);
            }
            NodeInit::Done(o) => {
                outputs.insert(n.id.clone(), o);
            }
            NodeInit::Failed(e) => {
                if failure.is_none() {
                    failure = Some((n.id.clone(), e));
                }
            }
        }
    }
    let mut running: JoinSet<(String, Result<core::LiteralMap, AgentError>)> = JoinSet::new();
    let mut running_ids: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        if failure.is_none() {
            // Topological order: upstream nodes are always considered first.
            for n in &wf.nodes {
                if running.len() >= max_parallel {
                    break;
                }
                if !pending.contains_key(&n.id) || !n.upstream.iter().all(|u| outputs.contains_key(u)) {
                    continue;
                }
                let Some(start) = pending.remove(&n.id) else { continue };
                match assemble_inputs(n, wf_inputs, &outputs) {
                    Ok(inputs) => {
                        let cx = NodeCtx { run: run.clone(), node: n.clone(), inputs };
                        let id = n.id.clone();
                        let handle = running.spawn(async move { (id, run_node(cx, start).await) });
                        running_ids.insert(handle.id(), n.id.clone());
                    }
                    Err(e) => {
                        failure = Some((n.id.clone(), e));
                        break;
                    }
                }
            }
            if failure.is_some() {
                let _ = cancel_tx.send(true);
            }
        }
        let Some(joined) = running.join_next_with_id().await else { break };
        let (node, result) = match joined {
            Ok((task_id, (node, result))) => {
                running_ids.remove(&task_id);
                (node, result)
            }
            Err(join_err) => {
                let node = running_ids.remove(&join_err.id()).unwrap_or_default();
                let e = AgentError::internal(codes::NODE_INTERNAL, format!("node task ended abnormally: {join_err}"));
                (node, Err(e))
            }
        };
        match result {
            Ok(o) => {
                outputs.insert(node, o);
            }
            Err(e) => {
                // The first failure is the execution's; later ones are its cancellations.
                if failure.is_none() {
                    failure = Some((node, e));
                    let _ = cancel_tx.send(true);
                }
            }
        }
    }
    if failure.is_none() {
        // Unreachable for a compiled (acyclic) workflow; never report success regardless.
        if let Some(n) = wf.nodes.iter().find(|n| pending.contains_key(&n.id)) {
            let e = AgentError::internal(
                codes::NODE_INTERNAL,
                "node never became ready (its upstream nodes did not all succeed)",
            );
            failure = Some((n.id.clone(), e));
        }
    }
    ScheduleResult { outputs, failure }
}
