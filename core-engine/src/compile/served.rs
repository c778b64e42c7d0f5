//! The last compile check: every node's task type is served by the agent client it
//! routes to. Also fixes each node's execution mode (sync or async) from `ListAgents`.
use tern_agent_api::category::TaskCategory;

use super::{CompileError, CompileErrors, CompiledWorkflow};
use crate::error::codes;
use crate::router::ServedTypes;
use crate::spec::WorkflowSpec;

/// Errors for nodes of `spec` whose task type no reachable agent serves.
pub(crate) fn unserved(spec: &WorkflowSpec, served: &ServedTypes) -> Vec<CompileError> {
    spec.nodes
        .iter()
        .filter_map(|n| {
            let cat = TaskCategory::new(n.task.task_type.clone(), n.task.version);
            served.lookup(&cat).err().map(|why| {
                CompileError::new(codes::UNSERVED_TASK_TYPE, Some(n.id.as_str()), Some("task.type".into()), why)
            })
        })
        .collect()
}

/// Sets each node's mode and endpoint, or fails naming every unserved node.
pub fn check_served(wf: &mut CompiledWorkflow, served: &ServedTypes) -> Result<(), CompileErrors> {
    let errors = unserved(&wf.spec, served);
    if !errors.is_empty() {
        return Err(CompileErrors { workflow: wf.name.clone(), errors });
    }
    for n in &mut wf.nodes {
        let n = std::sync::Arc::make_mut(n);
        if let Ok(s) = served.lookup(&n.category) {
            n.mode = Some(s.mode);
            n.endpoint = Some(s.endpoint.clone());
        }
    }
    Ok(())
}
