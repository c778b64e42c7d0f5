//! Every compile error kind, each naming node, field and types.
mod common;

use std::sync::Arc;

use common::{client, engine, Double, Echo, Log};
use tern_core_engine::compile::compile;
use tern_core_engine::{codes, AgentRouter, CompileErrors, Engine, ExecutionMode, WorkflowSpec};

fn spec(text: &str) -> WorkflowSpec {
    WorkflowSpec::parse(text, "test.yaml").unwrap_or_else(|e| panic!("parse: {e}"))
}

fn errors(text: &str) -> CompileErrors {
    compile(&spec(text)).expect_err("compile should fail")
}

/// The error with `code`, whose rendering contains every needle.
fn has(errs: &CompileErrors, code: &str, needles: &[&str]) {
    let text = errs.to_string();
    let found = errs.errors.iter().any(|e| e.code == code && needles.iter().all(|n| e.to_string().contains(n)));
    assert!(found, "no {code} error containing {needles:?} in:\n{text}");
}

const HEADER: &str = "name: wf\ninputs:\n  x: integer\n";

fn node(id: &str, inputs: &str, outputs: &str, bindings: &str) -> String {
    format!(
        "  - id: {id}\n    task:\n      type: echo\n      interface:\n        inputs: {{{inputs}}}\n        outputs: {{{outputs}}}\n    inputs: {{{bindings}}}\n"
    )
}

#[test]
fn valid_workflow_compiles_in_topological_order() {
    let text = format!(
        "{HEADER}nodes:\n{}{}{}outputs:\n  out: ${{c.x}}\n",
        node("c", "a: integer, b: integer", "x: integer", "a: '${a.x}', b: '${b.x}'"),
        node("b", "x: integer", "x: integer", "x: '${a.x}'"),
        node("a", "x: integer", "x: integer", "x: '${inputs.x}'"),
    );
    let wf = compile(&spec(&text)).unwrap();
    let order: Vec<&str> = wf.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"]);
    let t = &wf.nodes[0].template;
    let id = t.id.as_ref().unwrap();
    assert_eq!((id.project.as_str(), id.domain.as_str(), id.name.as_str()), ("tern", "development", "wf.a"));
    assert!(!id.version.is_empty());
    // Same definition, same version (it is part of the idempotency key).
    assert_eq!(compile(&spec(&text)).unwrap().nodes[0].template.id.as_ref().unwrap().version, id.version);
    assert_eq!(wf.nodes[2].upstream, ["a", "b"]);
}

#[test]
fn type_mismatch_names_node_field_and_both_types() {
    let text = format!(
        "{HEADER}nodes:\n{}{}",
        node("first", "x: integer", "x: integer", "x: '${inputs.x}'"),
        node("second", "n: string", "n: string", "n: '${first.x}'"),
    );
    has(&errors(&text), codes::TYPE_MISMATCH, &["second", "inputs.n", "integer", "string", "${first.x}"]);
    // No implicit integer -> float either.
    let text = format!("{HEADER}nodes:\n{}", node("f", "v: float", "", "v: '${inputs.x}'"));
    has(&errors(&text), codes::TYPE_MISMATCH, &["`f`", "inputs.v", "integer", "float"]);
}

#[test]
fn missing_unknown_and_dangling_bindings() {
    let text = format!(
        "{HEADER}nodes:\n{}{}{}{}",
        node("a", "x: integer, y: string", "x: integer", "x: '${inputs.x}'"),
        node("b", "x: integer", "x: integer", "x: '${inputs.nope}', extra: 1"),
        node("c", "x: integer", "x: integer", "x: '${ghost.x}'"),
        node("d", "x: integer", "x: integer", "x: '${a.missing}'"),
    );
    let errs = errors(&text);
    has(&errs, codes::MISSING_INPUT, &["`a`", "inputs.y", "string"]);
    has(&errs, codes::UNKNOWN_INPUT, &["`b`", "inputs.extra"]);
    has(&errs, codes::UNKNOWN_WORKFLOW_INPUT, &["`b`", "inputs.x", "nope"]);
    has(&errs, codes::UNKNOWN_NODE, &["`c`", "ghost"]);
    has(&errs, codes::UNKNOWN_NODE_OUTPUT, &["`d`", "missing", "`a`"]);
    assert_eq!(errs.errors.len(), 5, "all errors are collected:\n{errs}");
}

#[test]
fn cycles_are_named_with_their_path() {
    let text = format!(
        "name: wf\nnodes:\n{}{}{}",
        node("a", "x: integer", "x: integer", "x: '${b.x}'"),
        node("b", "x: integer", "x: integer", "x: '${a.x}'"),
        node("c", "x: integer", "x: integer", "x: 1")
            .replace("\n    inputs: {", "\n    depends_on: [c]\n    inputs: {"),
    );
    let errs = errors(&text);
    has(&errs, codes::CYCLE, &["a -> b -> a"]);
    has(&errs, codes::CYCLE, &["c -> c"]);
}

#[test]
fn duplicate_ids_bad_constants_and_unknown_depends_on() {
    let text = format!(
        "name: wf\ninputs:\n  d: {{type: integer, default: 1.5}}\nnodes:\n{}{}{}",
        node("a", "x: integer", "x: integer", "x: 1"),
        node("a", "x: integer", "x: integer", "x: 2"),
        node("b", "x: integer, l: list<string>", "x: integer", "x: \"nine\", l: [1, 2]")
            .replace("\n    inputs: {", "\n    depends_on: [zz]\n    inputs: {"),
    );
    let errs = errors(&text);
    has(&errs, codes::DUPLICATE_NODE, &["`a`"]);
    has(&errs, codes::BAD_CONSTANT, &["`b`", "inputs.x", "integer", "nine"]);
    has(&errs, codes::BAD_CONSTANT, &["`b`", "inputs.l", "list<string>"]);
    has(&errs, codes::BAD_CONSTANT, &["inputs.d.default", "integer", "1.5"]);
    has(&errs, codes::UNKNOWN_NODE, &["`b`", "depends_on", "zz"]);
}

#[test]
fn bad_references_and_workflow_outputs() {
    let text = format!(
        "{HEADER}nodes:\n{}outputs:\n  o1: ${{a.nope}}\n  o2: ${{b.x}}\n  o3: 5\n  o4: ${{inputs.zz}}\n",
        node("a", "x: integer", "x: integer", "x: 'value ${inputs.x}'"),
    );
    let errs = errors(&text);
    has(&errs, codes::BAD_REFERENCE, &["`a`", "inputs.x", "value ${inputs.x}"]);
    has(&errs, codes::BAD_WORKFLOW_OUTPUT, &["outputs.o1", "nope"]);
    has(&errs, codes::BAD_WORKFLOW_OUTPUT, &["outputs.o2", "\"b\""]);
    has(&errs, codes::BAD_WORKFLOW_OUTPUT, &["outputs.o3", "must reference"]);
    has(&errs, codes::BAD_WORKFLOW_OUTPUT, &["outputs.o4", "zz"]);
}

#[test]
fn optional_inputs_default_to_none_and_constants_are_typed() {
    let text = "name: wf\ninputs:\n  o: optional<integer>\n  r: integer\nnodes:\n  - id: a\n    task:\n      type: echo\n      interface:\n        inputs: {o: optional<integer>, when: duration, m: 'map<list<float>>'}\n    inputs: {o: '${inputs.o}', when: 90s, m: {a: [1, 2.5]}}\n";
    let wf = compile(&spec(text)).unwrap();
    let o = wf.inputs.iter().find(|i| i.name == "o").unwrap();
    assert!(!o.required && o.default.is_some());
    assert!(wf.inputs.iter().find(|i| i.name == "r").unwrap().required);
}

#[tokio::test]
async fn unserved_task_types_are_named_with_what_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::default());
    let c = client(dir.path(), |r| {
        r.register_sync(Arc::new(Echo { task_type: "echo", log: log.clone() })).unwrap();
        r.register_async(Arc::new(Double::new("double", log.clone()))).unwrap();
    });
    let other =
        client(dir.path(), |r| r.register_sync(Arc::new(Echo { task_type: "echo2", log: log.clone() })).unwrap());
    let router = AgentRouter::new(c).with_route("double", other);
    let engine = engine(dir.path(), router).await;
    let text = "name: wf\nnodes:\n  - id: a\n    task: {type: echo}\n  - id: b\n    task: {type: py_double}\n  - id: c\n    task: {type: double}\n  - id: d\n    task: {type: echo, version: 3}\n";
    let errs = engine.compile(&spec(text)).await.expect_err("unserved types");
    has(&errs, codes::UNSERVED_TASK_TYPE, &["`b`", "task.type", "py_double", "echo (version 0)", "double (version 0)"]);
    // `double` is served by the default client, but routed to one that does not serve it.
    has(&errs, codes::UNSERVED_TASK_TYPE, &["`c`", "double (version 0)", "echo2 (version 0)"]);
    has(&errs, codes::UNSERVED_TASK_TYPE, &["`d`", "echo (version 3)"]);
    assert_eq!(errs.errors.len(), 3, "{errs}");
    // Served types fix each node's mode from ListAgents.
    let wf = engine.compile(&spec("name: wf\nnodes:\n  - id: a\n    task: {type: echo}\n")).await.unwrap();
    assert_eq!(wf.nodes[0].mode, Some(ExecutionMode::Sync));
    assert_eq!(wf.nodes[0].endpoint.as_deref(), Some("in-process"));
    // Parse + type errors and unserved types come back together.
    let text = "name: wf\nnodes:\n  - id: a\n    task: {type: nope}\n    inputs: {x: 1}\n";
    let errs = engine.compile(&spec(text)).await.unwrap_err();
    has(&errs, codes::UNKNOWN_INPUT, &["`a`"]);
    has(&errs, codes::UNSERVED_TASK_TYPE, &["`a`", "nope"]);
    let _ = Engine::parse_workflow("name: x\nnodes: []\n", "x").unwrap();
}

/// The interop suite's workflows (run by the CLI tests) compile, or fail as intended.
#[test]
fn interop_workflows() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/workflows");
    let load = |name: &str| WorkflowSpec::load(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    for ok in ["in_process.yaml", "with_connector.yaml"] {
        compile(&load(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    has(
        &compile(&load("invalid_type_mismatch.yaml")).unwrap_err(),
        codes::TYPE_MISMATCH,
        &["second", "inputs.n", "integer", "string"],
    );
    has(&compile(&load("invalid_cycle.yaml")).unwrap_err(), codes::CYCLE, &["a -> b -> a"]);
}
