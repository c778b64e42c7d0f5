//! Runs every measurement in a pinned child process and prints the comparison.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{fail, sys};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Ctx {
    cpu: u64,
    parent: PathBuf,
    python: PathBuf,
    script: PathBuf,
}

impl Ctx {
    /// Runs `program args` under `taskset -c CPU` and returns its `RESULT` JSON line.
    fn child(&self, program: &Path, args: &[String]) -> Value {
        let out = Command::new("taskset")
            .arg("-c")
            .arg(self.cpu.to_string())
            .arg(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| fail(format!("cannot start {}: {e}", program.display())));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ").or(l.strip_prefix("{").map(|_| l)));
        match (out.status.success(), line.and_then(|l| serde_json::from_str::<Value>(l).ok())) {
            (true, Some(v)) => v,
            _ => fail(format!(
                "{} {} failed ({}):\n{stdout}\n{}",
                program.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    /// This binary in a child, with a fresh state dir (removed afterwards).
    fn tern(&self, mode: &str, args: &[String]) -> Value {
        let dir = tempfile::Builder::new()
            .prefix("tern-bench-")
            .tempdir_in(&self.parent)
            .unwrap_or_else(|e| fail(format!("cannot create a state dir under {}: {e}", self.parent.display())));
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        let mut all = vec![mode.to_owned()];
        all.extend(args.iter().cloned());
        all.extend(["--dir".to_owned(), dir.path().display().to_string()]);
        let v = self.child(&exe, &all);
        eprintln!("  tern {mode}: {v}");
        v
    }

    fn flytekit(&self, nodes: u64, width: u64) -> Value {
        let args = vec![
            self.script.display().to_string(),
            "--nodes".into(),
            nodes.to_string(),
            "--width".into(),
            width.to_string(),
        ];
        let v = self.child(&self.python, &args);
        eprintln!("  flytekit: {v}");
        v
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    if xs.is_empty() {
        return f64::NAN;
    }
    xs[xs.len() / 2]
}

fn med(runs: &[Value], key: &str) -> f64 {
    median(runs.iter().filter_map(|r| r[key].as_f64()).collect())
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TERN_PYTHON") {
        return p.into();
    }
    let venv = std::env::var("TERN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/tern/venv"));
    venv.join("bin/python")
}

pub fn main() {
    let runs = env_num("BENCH_RUNS", 3).max(1);
    let width = env_num("BENCH_WIDTH", 9).max(1);
    let max_parallel = env_num("BENCH_MAX_PARALLEL", width);
    let flytekit_max = env_num("BENCH_FLYTEKIT_MAX", 10_000);
    let inflight = env_num("BENCH_INFLIGHT", 100_000);
    let sleep_secs = env_num("BENCH_SLEEP_SECS", 300);
    let nodes: Vec<u64> = std::env::var("BENCH_NODES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let parent = std::env::var("BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let (fs, dev) = sys::filesystem_of(&parent);
    if fs == "tmpfs" || fs == "ramfs" {
        fail(format!("{} is on {fs}: point BENCH_DIR at a directory on a real disk", parent.display()));
    }
    let ctx = Ctx {
        cpu: env_num("BENCH_CPU", 1),
        parent: parent.clone(),
        python: python(),
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/bench/flytekit_dag.py"),
    };
    if !ctx.python.exists() {
        fail(format!("{} missing: run scripts/test.sh once (or set TERN_PYTHON)", ctx.python.display()));
    }
    eprintln!("state dirs under {} ({fs} on {dev}); every child pinned to CPU {}", parent.display(), ctx.cpu);

    let floor = ctx.tern("floor", &[]);
    let unit = width + 1;
    let dag_args = |n: u64, count: bool| {
        let mut a: Vec<String> =
            ["--nodes", &n.to_string(), "--width", &width.to_string()].iter().map(|s| s.to_string()).collect();
        a.extend(["--max-parallel".to_owned(), max_parallel.to_string()]);
        if count {
            a.push("--count-allocs".into());
        }
        a
    };
    // Warm-up: page cache, the interpreter's imports.
    ctx.tern("dag", &dag_args(unit * 10, false));
    ctx.flytekit(unit * 10, width);

    let mut rows = Vec::new();
    for &n in &nodes {
        let n = n / unit * unit;
        let mut tern_runs = Vec::new();
        let mut fk_runs = Vec::new();
        for _ in 0..runs {
            tern_runs.push(ctx.tern("dag", &dag_args(n, false)));
            if n <= flytekit_max {
                fk_runs.push(ctx.flytekit(n, width));
            }
        }
        let counted = ctx.tern("dag", &dag_args(n, true));
        rows.push((n, tern_runs, fk_runs, counted));
    }
    let inflight_result = (inflight > 0).then(|| {
        ctx.tern("inflight", &["--tasks".into(), inflight.to_string(), "--sleep-secs".into(), sleep_secs.to_string()])
    });

    println!(
        "\nEngine benchmark: {runs} runs each (medians), width {width}, max_parallel {max_parallel}, CPU {}",
        ctx.cpu
    );
    println!("state on {fs} ({dev})");
    println!(
        "floor: fdatasync {:.0} µs, SQLite commit {:.0} µs (a row inside one transaction {:.1} µs), \
         data store write {:.0} µs, exists {:.1} µs",
        floor["fdatasync_us"].as_f64().unwrap_or(f64::NAN),
        floor["sqlite_commit_us"].as_f64().unwrap_or(f64::NAN),
        floor["sqlite_row_in_one_tx_us"].as_f64().unwrap_or(f64::NAN),
        floor["datastore_write_us"].as_f64().unwrap_or(f64::NAN),
        floor["datastore_exists_us"].as_f64().unwrap_or(f64::NAN),
    );
    println!(
        "\n| nodes | tern run s | tern µs/node | compile ms (parse) | peak RSS MiB | allocs/node | flytekit run s | flytekit µs/node | flytekit build s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (n, t, f, counted) in &rows {
        let (tus, fus) = (med(t, "us_per_node"), med(f, "us_per_node"));
        let fk = |v: f64, digits: usize| {
            if f.is_empty() {
                "—".to_owned()
            } else {
                format!("{v:.digits$}")
            }
        };
        println!(
            "| {n} | {:.2} | {tus:.0} | {:.0} ({:.0}) | {:.0} | {:.0} | {} | {} | {} | {} |",
            med(t, "run_s"),
            med(t, "compile_ms"),
            med(t, "parse_ms"),
            med(t, "peak_rss_mib"),
            counted["allocs_per_node"].as_f64().unwrap_or(f64::NAN),
            fk(med(f, "run_s"), 2),
            fk(fus, 0),
            fk(med(f, "construct_s"), 2),
            if f.is_empty() { "—".to_owned() } else { format!("{:.2}×", fus / tus) },
        );
    }
    if let Some(v) = inflight_result {
        println!(
            "\nin flight: {} sleep tasks ({} s), all RUNNING after {} s (peak in flight {}): RSS {:.1} → {:.1} MiB, \
             {} KiB/task (live heap {} KiB/task); completed after {:.1} s; peak RSS {:.1} MiB",
            v["tasks"],
            v["sleep_s"],
            v["all_running_after_s"].as_f64().map_or("never".into(), |s| format!("{s:.1}")),
            v["peak_in_flight"],
            v["rss_baseline_mib"].as_f64().unwrap_or(f64::NAN),
            v["rss_all_running_mib"].as_f64().unwrap_or(f64::NAN),
            v["rss_per_task_kib"].as_f64().map_or("—".into(), |k| format!("{k:.2}")),
            v["heap_per_task_kib"].as_f64().map_or("—".into(), |k| format!("{k:.2}")),
            v["completed_after_s"].as_f64().unwrap_or(f64::NAN),
            v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        );
    }
}
