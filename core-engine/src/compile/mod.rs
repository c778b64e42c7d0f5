//! The compiler: a [`WorkflowSpec`] becomes one typed IR, [`CompiledWorkflow`], or a
//! list of every problem found ([`CompileErrors`]). Nothing runs before this passes.
mod compiler;
mod graph;
mod served;
mod template;

use std::fmt;
use std::time::Duration;

use tern_agent_api::category::TaskCategory;
use tern_agent_api::core;

use crate::binding::Reference;
use crate::spec::WorkflowSpec;

pub use compiler::compile;
pub use served::check_served;
pub(crate) use served::unserved;
pub use template::{task_identifier, DOMAIN, PROJECT};

/// How the serving agent runs a task type (from `ListAgents`' `is_sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// CreateTask, then GetTask until terminal.
    Async,
    /// ExecuteTaskSync once.
    Sync,
}

/// Where a bound value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingSource {
    WorkflowInput(String),
    NodeOutput { node: String, output: String },
    Constant(Box<core::Literal>),
}

impl From<&Reference> for BindingSource {
    fn from(r: &Reference) -> Self {
        match r {
            Reference::WorkflowInput { name } => Self::WorkflowInput(name.clone()),
            Reference::NodeOutput { node, output } => Self::NodeOutput { node: node.clone(), output: output.clone() },
        }
    }
}

/// One task input of a node and where its value comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct InputBinding {
    pub name: String,
    pub ty: core::LiteralType,
    pub source: BindingSource,
}

/// A node ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledNode {
    pub id: String,
    pub category: TaskCategory,
    pub template: core::TaskTemplate,
    pub inputs: Vec<InputBinding>,
    /// Nodes that must succeed first (data dependencies and `depends_on`), sorted.
    pub upstream: Vec<String>,
    pub retries: u32,
    /// One attempt's limit (retryable).
    pub timeout: Option<Duration>,
    /// All attempts' limit (final).
    pub deadline: Option<Duration>,
    /// Set by [`check_served`]; `None` until agents were discovered.
    pub mode: Option<ExecutionMode>,
    /// Description of the agent client the node is routed to (set with `mode`).
    pub endpoint: Option<String>,
}

/// A workflow input with its type and default.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowInput {
    pub name: String,
    pub ty: core::LiteralType,
    pub default: Option<core::Literal>,
    /// True when the run must provide it (no default and not optional).
    pub required: bool,
}

/// A workflow output and the node output (or workflow input) it returns.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOutput {
    pub name: String,
    pub ty: core::LiteralType,
    pub source: BindingSource,
}

/// The IR: everything the executor needs, type-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledWorkflow {
    pub name: String,
    pub description: Option<String>,
    /// The source, kept so an execution can record and later recover it.
    pub spec: WorkflowSpec,
    pub inputs: Vec<WorkflowInput>,
    /// In topological order: every node comes after its upstream nodes.
    /// Shared: every run and node task refers to them, none copies them.
    pub nodes: Vec<std::sync::Arc<CompiledNode>>,
    pub outputs: Vec<WorkflowOutput>,
    pub interface: core::TypedInterface,
    pub failure_policy: crate::spec::FailurePolicy,
    /// The whole execution's limit (final).
    pub deadline: Option<Duration>,
}

impl CompiledWorkflow {
    pub fn node(&self, id: &str) -> Option<&CompiledNode> {
        self.nodes.iter().find(|n| n.id == id).map(|n| &**n)
    }

    /// A JSON summary of the IR (node order, task identities, dependencies), stored with
    /// each execution for inspection.
    pub fn summary_json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "id": n.id,
                    "task_type": n.category.name,
                    "task_version": n.category.version,
                    "task_id": n.template.id.as_ref().map(|i| format!("{}:{}", i.name, i.version)),
                    "upstream": n.upstream,
                    "retries": n.retries,
                    "timeout_s": n.timeout.map(|t| t.as_secs_f64()),
                    "mode": n.mode,
                    "endpoint": n.endpoint,
                })
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "inputs": self.inputs.iter().map(|i| (i.name.clone(), tern_type_transformers::types::type_expr(&i.ty))).collect::<std::collections::BTreeMap<_, _>>(),
            "outputs": self.outputs.iter().map(|o| (o.name.clone(), tern_type_transformers::types::type_expr(&o.ty))).collect::<std::collections::BTreeMap<_, _>>(),
            "nodes": nodes,
        })
    }
}

/// One compile problem, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub code: &'static str,
    /// The node concerned, if any.
    pub node: Option<String>,
    /// The field concerned (`inputs.x`, `depends_on`, `outputs.y`, `task.type`).
    pub field: Option<String>,
    pub message: String,
}

impl CompileError {
    pub(crate) fn new(code: &'static str, node: Option<&str>, field: Option<String>, message: String) -> Self {
        Self { code, node: node.map(str::to_owned), field, message }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.code)?;
        match (&self.node, &self.field) {
            (Some(n), Some(fl)) => write!(f, "node `{n}` {fl}: ")?,
            (Some(n), None) => write!(f, "node `{n}`: ")?,
            (None, Some(fl)) => write!(f, "{fl}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a workflow (never just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileErrors {
    pub workflow: String,
    pub errors: Vec<CompileError>,
}

impl std::error::Error for CompileErrors {}

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(f, "workflow {:?} is invalid ({n} error{}):", self.workflow, if n == 1 { "" } else { "s" })?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}
