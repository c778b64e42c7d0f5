//! The engine benchmark (issue 9 part 6): per-node overhead of a no-op DAG against flytekit's
//! local execution of the same DAG shape, in the same run; memory per in-flight async task;
//! and the floor of the disk the state lives on.
//!
//!     cargo bench -p tern-core-engine --bench engine          # or scripts/bench-engine.sh
//!
//! The driver (no arguments, or cargo's `--bench`) runs every measurement in a fresh child
//! process (so its peak RSS is its own) pinned with `taskset -c $BENCH_CPU`: the Tern engine
//! (this binary: `dag`, `inflight`, `floor`) and flytekit (`tests/interop/bench/flytekit_dag.py`
//! in the test virtualenv) get the same single CPU, alternately, `BENCH_RUNS` times each; the
//! figures are medians. The state dir is a fresh temporary directory under `BENCH_DIR`
//! (default: the system temp dir), refused if it is on tmpfs: persistence is on disk.
//!
//! Knobs (env): BENCH_RUNS (3), BENCH_NODES (1000,10000), BENCH_WIDTH (9), BENCH_MAX_PARALLEL
//! (= width), BENCH_FLYTEKIT_MAX (10000: larger N run Tern only), BENCH_INFLIGHT (100000; 0
//! skips), BENCH_SLEEP_SECS (300: must outlast the ramp to all-RUNNING), BENCH_CPU (1),
//! BENCH_DIR, TERN_PYTHON (default $TERN_VENV or ~/.cache/tern/venv, bin/python).
//!
//! One measurement by hand (prints one JSON line):
//!     <bench binary> dag --nodes 10000 --width 9 --max-parallel 9 --dir DIR [--count-allocs]
//!     <bench binary> inflight --tasks 100000 --sleep-secs 300 --dir DIR
//!     <bench binary> floor --dir DIR
#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

mod alloc;
mod dag;
mod driver;
mod floor;
mod inflight;
mod setup;
mod sys;

use std::collections::HashMap;
use std::path::PathBuf;

pub fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("bench: {message}");
    std::process::exit(2)
}

/// `--key value` pairs (and bare `--flag`s, as "true").
fn options(args: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let Some(key) = a.strip_prefix("--") else { fail(format!("unexpected argument {a:?}")) };
        let value = match it.peek() {
            Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
            _ => "true".into(),
        };
        out.insert(key.to_owned(), value);
    }
    out
}

fn num(o: &HashMap<String, String>, key: &str, default: Option<f64>) -> f64 {
    match o.get(key) {
        Some(v) => v.parse().unwrap_or_else(|_| fail(format!("--{key}: not a number: {v:?}"))),
        None => default.unwrap_or_else(|| fail(format!("--{key} is required"))),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    if !matches!(mode, "dag" | "inflight" | "floor") {
        driver::main();
        return;
    }
    let o = options(&args[1..]);
    let dir = PathBuf::from(o.get("dir").cloned().unwrap_or_else(|| fail("--dir is required")));
    let runtime = sys::runtime();
    let result = runtime.block_on(async {
        match mode {
            "dag" => {
                let width = num(&o, "width", Some(9.0)) as usize;
                let a = dag::Args {
                    nodes: num(&o, "nodes", None) as usize,
                    width,
                    max_parallel: num(&o, "max-parallel", Some(width as f64)) as usize,
                    count_allocs: o.contains_key("count-allocs"),
                };
                dag::run(&dir, &a).await
            }
            "inflight" => {
                let a = inflight::Args {
                    tasks: num(&o, "tasks", None) as usize,
                    sleep_secs: num(&o, "sleep-secs", Some(300.0)),
                };
                inflight::run(&dir, &a).await
            }
            _ => floor::run(&dir).await,
        }
    });
    let (fs, dev) = sys::filesystem_of(&dir);
    let mut result = result;
    result["state_fs"] = serde_json::json!(format!("{fs} ({dev})"));
    result["worker_threads"] = serde_json::json!(std::thread::available_parallelism().map(usize::from).unwrap_or(1));
    println!("RESULT {result}");
}
