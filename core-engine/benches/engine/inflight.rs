//! In-flight memory: N independent `sleep` tasks started at once (max_parallel = N) in one
//! engine. Memory per in-flight task = (RSS, and live heap, once every task is RUNNING)
//! minus (the same after compiling, before the run), divided by N. A task counts as RUNNING
//! at its first `NodeRunning` event: the engine emits it after recording the handle
//! CreateTask returned.
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use tern_core_engine::{Engine, ExecutionEvent, ExecutionPhase};
use tokio::sync::mpsc;

use crate::{alloc, setup, sys};

pub struct Args {
    pub tasks: usize,
    pub sleep_secs: f64,
}

pub fn yaml(tasks: usize, sleep_secs: f64) -> String {
    let mut y = format!("name: bench_inflight\ninputs:\n  d: {{type: float, default: {sleep_secs:?}}}\nnodes:\n");
    for i in 0..tasks {
        y.push_str(&format!(
            "  - id: s{i}\n    task: {{type: sleep, interface: {{inputs: {{duration: float}}}}}}\n    \
             inputs: {{duration: \"${{inputs.d}}\"}}\n"
        ));
    }
    y
}

/// What the event consumer saw.
struct Progress {
    all_running_s: Option<f64>,
    rss_all_running: f64,
    heap_all_running: i64,
    by_size_all_running: Vec<(usize, i64, i64)>,
    peak_running: usize,
}

/// `seen`: one flag per task, allocated before the baseline.
async fn watch(mut rx: mpsc::Receiver<ExecutionEvent>, mut seen: Vec<bool>, start: Instant) -> Progress {
    let tasks = seen.len();
    let (mut running, mut done) = (0usize, 0usize);
    let mut p = Progress {
        all_running_s: None,
        rss_all_running: 0.0,
        heap_all_running: 0,
        by_size_all_running: Vec::new(),
        peak_running: 0,
    };
    while let Some(e) = rx.recv().await {
        match e {
            ExecutionEvent::NodeRunning { node, .. } => {
                let i: usize = node[1..].parse().unwrap_or(usize::MAX);
                if i < tasks && !seen[i] {
                    seen[i] = true;
                    running += 1;
                }
            }
            ExecutionEvent::NodeSucceeded { .. } | ExecutionEvent::NodeFailed { .. } => done += 1,
            _ => {}
        }
        let in_flight = running - done.min(running);
        if in_flight > p.peak_running {
            p.peak_running = in_flight;
        }
        if running == tasks && p.all_running_s.is_none() {
            p.all_running_s = Some(start.elapsed().as_secs_f64());
            p.rss_all_running = sys::status_mib("VmRSS");
            p.heap_all_running = alloc::snapshot().live;
            p.by_size_all_running = alloc::by_size();
            // Progress for long runs (the JSON line comes only at the end).
            eprintln!(
                "all {tasks} RUNNING after {:.1} s: RSS {:.1} MiB, live heap {:.1} MiB",
                start.elapsed().as_secs_f64(),
                p.rss_all_running,
                p.heap_all_running as f64 / 1048576.0
            );
        }
    }
    p
}

/// Heap allocations (by size class, per node) of what the engine copies per run and per
/// node: the whole compiled workflow (`Engine::run_literals` clones it) and one
/// `CompiledNode` (the scheduler clones one into each node task); and their inline sizes.
fn clone_costs(wf: &tern_core_engine::CompiledWorkflow) -> serde_json::Value {
    let n = wf.nodes.len().max(1) as f64;
    let diff = |before: &[(usize, i64, i64)], after: &[(usize, i64, i64)], per: f64| {
        let m: serde_json::Map<String, serde_json::Value> = after
            .iter()
            .zip(before)
            .filter(|((_, b, _), (_, b0, _))| b != b0)
            .map(|((size, b, k), (_, b0, k0))| {
                (format!(">={size}B"), json!({"bytes": (b - b0) as f64 / per, "allocs": (k - k0) as f64 / per}))
            })
            .collect();
        serde_json::Value::Object(m)
    };
    let before = alloc::by_size();
    let copy = wf.clone();
    let after = alloc::by_size();
    drop(copy);
    let workflow = diff(&before, &after, n);
    let before = alloc::by_size();
    let node = wf.nodes.first().cloned();
    let after = alloc::by_size();
    drop(node);
    json!({
        "workflow_clone_per_node": workflow,
        "node_clone": diff(&before, &after, 1.0),
        "size_of_compiled_node": std::mem::size_of::<tern_core_engine::compile::CompiledNode>(),
        "size_of_task_template": std::mem::size_of::<tern_agent_api::core::TaskTemplate>(),
        "size_of_literal_type": std::mem::size_of::<tern_agent_api::core::LiteralType>(),
    })
}

pub async fn run(dir: &Path, a: &Args) -> serde_json::Value {
    alloc::enable();
    let engine = setup::open(dir, a.tasks, a.tasks * 2).await;
    let heap_open = alloc::snapshot().live;
    let spec =
        Engine::parse_workflow(&yaml(a.tasks, a.sleep_secs), "bench_inflight.yaml").unwrap_or_else(|e| crate::fail(e));
    let t = Instant::now();
    let wf = engine.compile(&spec).await.unwrap_or_else(|e| crate::fail(e));
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(spec);
    let heap_compiled = alloc::snapshot().live;
    let clones = clone_costs(&wf);
    let (tx, rx) = mpsc::channel(4096);
    let start = Instant::now();
    let watcher = tokio::spawn(watch(rx, vec![false; a.tasks], start));
    let rss0 = sys::status_mib("VmRSS");
    let heap0 = alloc::snapshot().live;
    let by_size0 = alloc::by_size();
    let outcome = engine.run(&wf, Vec::new(), Some(tx)).await.unwrap_or_else(|e| crate::fail(e));
    let total_s = start.elapsed().as_secs_f64();
    let p = watcher.await.unwrap_or_else(|e| crate::fail(e));
    if outcome.phase != ExecutionPhase::Succeeded {
        crate::fail(format!("the run ended {} ({:?})", outcome.phase, outcome.error));
    }
    let n = a.tasks as f64;
    // Where the per-task heap sits, by allocation size class: KiB and allocations per task.
    let classes: serde_json::Map<String, serde_json::Value> = p
        .by_size_all_running
        .iter()
        .zip(&by_size0)
        .filter(|((_, now, _), (_, then, _))| (now - then).abs() as f64 / n >= 16.0)
        .map(|((size, now, k), (_, then, k0))| {
            let v = json!({"kib": (now - then) as f64 / 1024.0 / n, "allocs": (k - k0) as f64 / n});
            (format!(">={size}B"), v)
        })
        .collect();
    json!({
        "tasks": a.tasks,
        "sleep_s": a.sleep_secs,
        "max_parallel": a.tasks,
        "compile_ms": compile_ms,
        "rss_baseline_mib": rss0,
        "all_running_after_s": p.all_running_s,
        "peak_in_flight": p.peak_running,
        "rss_all_running_mib": p.rss_all_running,
        "rss_per_task_kib": p.all_running_s.map(|_| (p.rss_all_running - rss0) * 1024.0 / n),
        "heap_per_task_kib": p.all_running_s.map(|_| (p.heap_all_running - heap0) as f64 / 1024.0 / n),
        "heap_per_task_by_size_kib": classes,
        "compiled_workflow_heap_per_node_kib": (heap_compiled - heap_open) as f64 / 1024.0 / n,
        "clone_costs": clones,
        "completed_after_s": total_s,
        "peak_rss_mib": sys::status_mib("VmHWM"),
    })
}
