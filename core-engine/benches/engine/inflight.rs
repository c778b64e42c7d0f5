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
    peak_running: usize,
}

/// `seen`: one flag per task, allocated before the baseline.
async fn watch(mut rx: mpsc::Receiver<ExecutionEvent>, mut seen: Vec<bool>, start: Instant) -> Progress {
    let tasks = seen.len();
    let (mut running, mut done) = (0usize, 0usize);
    let mut p = Progress { all_running_s: None, rss_all_running: 0.0, heap_all_running: 0, peak_running: 0 };
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
        }
    }
    p
}

pub async fn run(dir: &Path, a: &Args) -> serde_json::Value {
    alloc::enable();
    let engine = setup::open(dir, a.tasks, a.tasks * 2).await;
    let spec =
        Engine::parse_workflow(&yaml(a.tasks, a.sleep_secs), "bench_inflight.yaml").unwrap_or_else(|e| crate::fail(e));
    let t = Instant::now();
    let wf = engine.compile(&spec).await.unwrap_or_else(|e| crate::fail(e));
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(spec);
    let (tx, rx) = mpsc::channel(4096);
    let start = Instant::now();
    let watcher = tokio::spawn(watch(rx, vec![false; a.tasks], start));
    let rss0 = sys::status_mib("VmRSS");
    let heap0 = alloc::snapshot().live;
    let outcome = engine.run(&wf, Vec::new(), Some(tx)).await.unwrap_or_else(|e| crate::fail(e));
    let total_s = start.elapsed().as_secs_f64();
    let p = watcher.await.unwrap_or_else(|e| crate::fail(e));
    if outcome.phase != ExecutionPhase::Succeeded {
        crate::fail(format!("the run ended {} ({:?})", outcome.phase, outcome.error));
    }
    let n = a.tasks as f64;
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
        "completed_after_s": total_s,
        "peak_rss_mib": sys::status_mib("VmHWM"),
    })
}
