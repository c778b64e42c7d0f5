//! The per-node overhead bench: a no-op DAG of N nodes through the public API.
//!
//! Shape (identical in tests/interop/bench/flytekit_dag.py): N / (W + 1) layers; each layer
//! has W no-op nodes reading the previous layer's join output (the workflow input for the
//! first layer), and one join node reading the first of them with `depends_on` the other
//! W - 1. Every node is the echo task `x: integer -> x: integer`. The workflow output is the
//! last join's `x`. At most W nodes are ever ready at once, so max_parallel = W runs every
//! layer fully in parallel.
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use tern_core_engine::{Engine, ExecutionPhase};

use crate::{alloc, setup, sys};

pub struct Args {
    pub nodes: usize,
    pub width: usize,
    pub max_parallel: usize,
    pub count_allocs: bool,
}

const TASK: &str = "{type: echo, interface: {inputs: {x: integer}, outputs: {x: integer}}}";

pub fn yaml(layers: usize, width: usize) -> String {
    let mut y = String::from("name: bench_dag\ninputs:\n  x: {type: integer, default: 7}\nnodes:\n");
    let mut prev = "inputs.x".to_owned();
    for l in 0..layers {
        for i in 0..width {
            let _ = write!(y, "  - id: l{l}_{i}\n    task: {TASK}\n    inputs: {{x: \"${{{prev}}}\"}}\n");
        }
        let _ = write!(y, "  - id: j{l}\n    task: {TASK}\n    inputs: {{x: \"${{l{l}_0.x}}\"}}\n");
        if width > 1 {
            let others: Vec<String> = (1..width).map(|i| format!("l{l}_{i}")).collect();
            let _ = writeln!(y, "    depends_on: [{}]", others.join(", "));
        }
        prev = format!("j{l}.x");
    }
    let _ = write!(y, "outputs:\n  y: \"${{{prev}}}\"\n");
    y
}

pub async fn run(dir: &Path, a: &Args) -> serde_json::Value {
    if a.width == 0 || !a.nodes.is_multiple_of(a.width + 1) {
        crate::fail(format!("--nodes must be a multiple of width + 1 = {}", a.width + 1));
    }
    let layers = a.nodes / (a.width + 1);
    let engine = setup::open(dir, a.max_parallel, 1).await;
    let t = Instant::now();
    let text = yaml(layers, a.width);
    let yaml_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let spec = Engine::parse_workflow(&text, "bench_dag.yaml").unwrap_or_else(|e| crate::fail(e));
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let wf = engine.compile(&spec).await.unwrap_or_else(|e| crate::fail(e));
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(text);
    let rss_before = sys::status_mib("VmRSS");
    if a.count_allocs {
        alloc::enable();
    }
    let before = alloc::snapshot();
    let cpu_before = sys::cpu_seconds();
    let t = Instant::now();
    let outcome = engine.run(&wf, Vec::new(), None).await.unwrap_or_else(|e| crate::fail(e));
    let run_s = t.elapsed().as_secs_f64();
    let run_cpu_s = sys::cpu_seconds() - cpu_before;
    let after = alloc::snapshot();
    if outcome.phase != ExecutionPhase::Succeeded {
        crate::fail(format!("the run ended {} ({:?})", outcome.phase, outcome.error));
    }
    let y = outcome.outputs.literals.get("y").map(|l| format!("{l:?}")).unwrap_or_default();
    if !y.contains("Integer(7)") {
        crate::fail(format!("unexpected output y = {y}"));
    }
    let mut out = json!({
        "side": "tern",
        "nodes": a.nodes,
        "width": a.width,
        "layers": layers,
        "max_parallel": a.max_parallel,
        "yaml_ms": yaml_ms,
        "parse_ms": parse_ms,
        "compile_ms": compile_ms,
        "run_s": run_s,
        "us_per_node": run_s / a.nodes as f64 * 1e6,
        "run_cpu_s": run_cpu_s,
        "cpu_us_per_node": run_cpu_s / a.nodes as f64 * 1e6,
        "rss_before_run_mib": rss_before,
        "peak_rss_mib": sys::status_mib("VmHWM"),
    });
    if a.count_allocs {
        out["allocs_per_node"] = json!((after.allocs - before.allocs) as f64 / a.nodes as f64);
        out["heap_retained_per_node_bytes"] = json!((after.live - before.live) as f64 / a.nodes as f64);
    }
    out
}
