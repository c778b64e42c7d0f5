//! Spec → IR, collecting every error.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use tern_agent_api::category::TaskCategory;
use tern_agent_api::core;
use tern_type_transformers::compat::check_assignable;
use tern_type_transformers::parse::literal_from_json;
use tern_type_transformers::types::type_expr;

use super::graph::topo_order;
use super::template::build_template;
use super::{
    BindingSource, CompileError, CompileErrors, CompiledNode, CompiledWorkflow, InputBinding, WorkflowInput,
    WorkflowOutput,
};
use crate::binding::{parse_binding, yaml_to_json, BindingExpr, Reference};
use crate::error::codes;
use crate::spec::{NodeSpec, WorkflowSpec};

struct Ctx<'a> {
    spec: &'a WorkflowSpec,
    /// Node id → its spec (first occurrence when duplicated).
    nodes: HashMap<&'a str, &'a NodeSpec>,
    errors: Vec<CompileError>,
}

impl<'a> Ctx<'a> {
    fn err(&mut self, code: &'static str, node: Option<&str>, field: Option<String>, message: String) {
        self.errors.push(CompileError::new(code, node, field, message));
    }

    /// The type a reference produces, or an error (pushed) naming what is missing.
    /// `user` is the node using it (`None` for workflow outputs), `field` where it is used.
    fn resolve(
        &mut self,
        r: &Reference,
        user: Option<&str>,
        field: &str,
        code_override: Option<&'static str>,
    ) -> Option<core::LiteralType> {
        match r {
            Reference::WorkflowInput { name } => match self.spec.inputs.get(name) {
                Some(i) => Some(i.ty.ty.clone()),
                None => {
                    let known: Vec<&String> = self.spec.inputs.keys().collect();
                    self.err(
                        code_override.unwrap_or(codes::UNKNOWN_WORKFLOW_INPUT),
                        user,
                        Some(field.into()),
                        format!("{r} refers to workflow input {name:?}, which is not declared (declared: {known:?})"),
                    );
                    None
                }
            },
            Reference::NodeOutput { node, output } => {
                let Some(n) = self.nodes.get(node.as_str()).copied() else {
                    let known: Vec<&str> = self.spec.nodes.iter().map(|n| n.id.as_str()).collect();
                    self.err(
                        code_override.unwrap_or(codes::UNKNOWN_NODE),
                        user,
                        Some(field.into()),
                        format!("{r} refers to node {node:?}, which does not exist (nodes: {known:?})"),
                    );
                    return None;
                };
                match n.task.interface.outputs.get(output) {
                    Some(t) => Some(t.ty.clone()),
                    None => {
                        let known: Vec<&String> = n.task.interface.outputs.keys().collect();
                        self.err(
                            code_override.unwrap_or(codes::UNKNOWN_NODE_OUTPUT),
                            user,
                            Some(field.into()),
                            format!("{r} refers to output {output:?} of node `{node}`, which declares no such output (outputs: {known:?})"),
                        );
                        None
                    }
                }
            }
        }
    }
}

fn is_optional(ty: &core::LiteralType) -> bool {
    use core::literal_type::Type as T;
    matches!(&ty.r#type, Some(T::UnionType(u)) if u.variants.iter().any(|v| v.r#type == Some(T::Simple(core::SimpleType::None as i32))))
}

/// `task.cache`: a version (flytekit refuses a cache without one), and only declared inputs ignored.
fn check_cache(
    cx: &mut Ctx<'_>,
    id: &str,
    cache: &crate::spec::CacheSpec,
    declared: &BTreeMap<String, crate::spec::TypeSpec>,
) {
    if cache.version.as_deref().is_none_or(|v| v.trim().is_empty()) {
        cx.err(
            codes::CACHE_WITHOUT_VERSION,
            Some(id),
            Some("task.cache.version".into()),
            "a cached task needs a cache version (e.g. `cache: {version: \"1\"}`); change it to stop reusing earlier results".into(),
        );
    }
    for name in &cache.ignore_inputs {
        if !declared.contains_key(name) {
            let known: Vec<&String> = declared.keys().collect();
            cx.err(
                codes::UNKNOWN_CACHE_INPUT,
                Some(id),
                Some("task.cache.ignore_inputs".into()),
                format!("ignores input {name:?}, which the task does not declare (declared: {known:?})"),
            );
        }
    }
}

/// Compiles a spec. Every error is collected; served task types are checked separately
/// by [`super::check_served`] (they need the agents).
pub fn compile(spec: &WorkflowSpec) -> Result<CompiledWorkflow, CompileErrors> {
    let mut cx = Ctx { spec, nodes: HashMap::new(), errors: Vec::new() };

    // Workflow inputs and their defaults.
    let mut inputs = Vec::new();
    for (name, i) in &spec.inputs {
        let default = match &i.default {
            None => None,
            Some(v) => match literal_from_json(&yaml_to_json(v), &i.ty.ty) {
                Ok(l) => Some(l),
                Err(e) => {
                    cx.err(codes::BAD_CONSTANT, None, Some(format!("inputs.{name}.default")), e.to_string());
                    None
                }
            },
        };
        let optional = is_optional(&i.ty.ty);
        // An optional input without a default defaults to none, as in flytekit.
        let default = default.or_else(|| {
            (optional && i.default.is_none())
                .then(|| literal_from_json(&serde_json::Value::Null, &i.ty.ty).ok())
                .flatten()
        });
        inputs.push(WorkflowInput {
            name: name.clone(),
            ty: i.ty.ty.clone(),
            required: default.is_none() && i.default.is_none(),
            default,
        });
    }

    // Node ids.
    for n in &spec.nodes {
        if cx.nodes.insert(n.id.as_str(), n).is_some() {
            cx.err(
                codes::DUPLICATE_NODE,
                Some(n.id.as_str()),
                Some("id".into()),
                format!("node id `{}` is used more than once", n.id),
            );
        }
    }

    // Nodes: bindings, types, dependencies.
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut compiled: HashMap<String, CompiledNode> = HashMap::new();
    for n in &spec.nodes {
        let id = n.id.as_str();
        let declared = &n.task.interface.inputs;
        let mut bindings = Vec::new();
        let mut upstream = BTreeSet::new();
        for (input, value) in &n.inputs {
            let field = format!("inputs.{input}");
            let Some(to) = declared.get(input) else {
                let known: Vec<&String> = declared.keys().collect();
                cx.err(
                    codes::UNKNOWN_INPUT,
                    Some(id),
                    Some(field),
                    format!("the task declares no input {input:?} (declared: {known:?})"),
                );
                continue;
            };
            match parse_binding(value) {
                Err((code, msg)) => cx.err(code, Some(id), Some(field), msg),
                Ok(BindingExpr::Constant(v)) => match literal_from_json(&yaml_to_json(&v), &to.ty) {
                    Ok(lit) => bindings.push(InputBinding {
                        name: input.clone(),
                        ty: to.ty.clone(),
                        source: BindingSource::Constant(Box::new(lit)),
                    }),
                    Err(e) => {
                        cx.err(codes::BAD_CONSTANT, Some(id), Some(field), format!("constant for {}: {e}", to.text))
                    }
                },
                Ok(BindingExpr::Reference(r)) => {
                    if let Reference::NodeOutput { node, .. } = &r {
                        upstream.insert(node.clone());
                    }
                    if let Some(from) = cx.resolve(&r, Some(id), &field, None) {
                        match check_assignable(&from, &to.ty) {
                            Ok(()) => bindings.push(InputBinding {
                                name: input.clone(),
                                ty: to.ty.clone(),
                                source: (&r).into(),
                            }),
                            Err(why) => cx.err(
                                codes::TYPE_MISMATCH,
                                Some(id),
                                Some(field),
                                format!(
                                    "{r} has type {} but the input is declared {}: {why}",
                                    type_expr(&from),
                                    type_expr(&to.ty)
                                ),
                            ),
                        }
                    }
                }
            }
        }
        for (input, ty) in declared {
            if !n.inputs.contains_key(input) {
                cx.err(
                    codes::MISSING_INPUT,
                    Some(id),
                    Some(format!("inputs.{input}")),
                    format!("task input {input:?} ({}) has no binding; bind it to ${{inputs.NAME}}, ${{NODE.OUTPUT}} or a constant", ty.text),
                );
            }
        }
        if let Some(cache) = &n.task.cache {
            check_cache(&mut cx, id, cache, declared);
        }
        for d in &n.depends_on {
            if cx.nodes.contains_key(d.as_str()) {
                upstream.insert(d.clone());
            } else {
                let known: Vec<&str> = spec.nodes.iter().map(|n| n.id.as_str()).collect();
                cx.err(
                    codes::UNKNOWN_NODE,
                    Some(id),
                    Some("depends_on".into()),
                    format!("depends on node {d:?}, which does not exist (nodes: {known:?})"),
                );
            }
        }
        upstream.retain(|u| cx.nodes.contains_key(u.as_str()));
        deps.insert(id.to_owned(), upstream.clone());
        if !compiled.contains_key(id) {
            compiled.insert(
                id.to_owned(),
                CompiledNode {
                    id: id.to_owned(),
                    category: TaskCategory::new(n.task.task_type.clone(), n.task.version),
                    template: build_template(&spec.name, n),
                    inputs: bindings,
                    upstream: upstream.into_iter().collect(),
                    retries: n.task.retries.unwrap_or(0),
                    timeout: n.task.timeout.as_ref().map(|d| d.duration),
                    deadline: n.deadline.as_ref().map(|d| d.duration),
                    mode: None,
                    endpoint: None,
                },
            );
        }
    }

    // Order, or the cycles that prevent one.
    let mut ids: Vec<String> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for n in &spec.nodes {
        if listed.insert(n.id.as_str()) {
            ids.push(n.id.to_string());
        }
    }
    let order = match topo_order(&ids, &deps) {
        Ok(o) => o,
        Err(cycles) => {
            for c in cycles {
                cx.err(
                    codes::CYCLE,
                    c.first().map(String::as_str),
                    None,
                    format!(
                        "dependency cycle {} (each node needs the next one's outputs or lists it in depends_on)",
                        c.join(" -> ")
                    ),
                );
            }
            Vec::new()
        }
    };

    // Workflow outputs.
    let mut outputs = Vec::new();
    for (name, value) in &spec.outputs {
        let field = format!("outputs.{name}");
        match parse_binding(value) {
            Ok(BindingExpr::Reference(r)) => {
                if let Some(ty) = cx.resolve(&r, None, &field, Some(codes::BAD_WORKFLOW_OUTPUT)) {
                    outputs.push(WorkflowOutput { name: name.clone(), ty, source: (&r).into() });
                }
            }
            Ok(BindingExpr::Constant(_)) => cx.err(
                codes::BAD_WORKFLOW_OUTPUT,
                None,
                Some(field),
                format!(
                    "a workflow output must reference ${{NODE.OUTPUT}} or ${{inputs.NAME}}, got {}",
                    yaml_to_json(value)
                ),
            ),
            Err((_, msg)) => cx.err(codes::BAD_WORKFLOW_OUTPUT, None, Some(field), msg),
        }
    }

    if !cx.errors.is_empty() {
        return Err(CompileErrors { workflow: spec.name.clone(), errors: cx.errors });
    }
    let nodes = order.iter().filter_map(|id| compiled.remove(id)).map(std::sync::Arc::new).collect();
    let var = |ty: &core::LiteralType| core::Variable { r#type: Some(ty.clone()), ..Default::default() };
    let interface = core::TypedInterface {
        inputs: Some(core::VariableMap { variables: inputs.iter().map(|i| (i.name.clone(), var(&i.ty))).collect() }),
        outputs: Some(core::VariableMap { variables: outputs.iter().map(|o| (o.name.clone(), var(&o.ty))).collect() }),
    };
    Ok(CompiledWorkflow {
        name: spec.name.clone(),
        description: spec.description.clone(),
        spec: spec.clone(),
        inputs,
        nodes,
        outputs,
        interface,
        failure_policy: spec.failure_policy,
        deadline: spec.deadline.as_ref().map(|d| d.duration),
    })
}
