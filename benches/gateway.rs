//! The gateway benchmark: `tern serve` against the machine's bare HTTP/2 floor and against
//! flytekit's connector server, measured in the same run with the same neutral load
//! generator, the same request bodies and the same pinning; plus the cost of a routed
//! remote hop and the memory of `tern serve` holding 10,000 in-flight async jobs.
//!
//!     scripts/bench.sh            # installs h2load, builds the release binaries, runs this
//!
//! or by hand: `cargo build --release --example h2-floor && cargo bench --bench gateway`
//! (needs `h2load` from nghttp2-client, `taskset`, and the test virtualenv's `pyflyte`).
//!
//! Method (../shared/reference/benchmarking.md): every server runs under `taskset -c 1`,
//! h2load under `taskset -c 0`, `-c 4 -m 8`, after a warm-up; request bodies are first
//! checked with a real gRPC client to get an OK answer. Latency percentiles come from
//! h2load's per-request log. Each figure is the median of BENCH_RUNS runs (default 3).
//!
//! Knobs (env): BENCH_RUNS (3), BENCH_REQUESTS (200000), BENCH_FLYTEKIT_REQUESTS (20000),
//! BENCH_HOP_RATE (5000 req/s offered for the hop comparison), BENCH_JOBS (10000),
//! BENCH_SERVER_CPU (1), BENCH_LOAD_CPU (0), TERN_PYFLYTE.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use tern_agent_api::client::AgentClient;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::{admin, core};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18_000)
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("bench: {message}");
    std::process::exit(2)
}

/// A server process pinned to one CPU; killed when dropped.
struct Peer {
    child: Child,
    addr: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn spawn(cpu: u64, program: &Path, args: &[String], cwd: Option<&Path>, envs: &[(&str, String)], addr: String) -> Self {
        let mut cmd = Command::new("taskset");
        cmd.arg("-c").arg(cpu.to_string()).arg(program).args(args).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| fail(format!("cannot start {}: {e}", program.display())));
        Self { child, addr }
    }

    fn status(&self, field: &str) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = text.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Load {
    rate: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_load(runs: Vec<Load>) -> Load {
    Load {
        rate: median(runs.iter().map(|l| l.rate).collect()),
        mean_ms: median(runs.iter().map(|l| l.mean_ms).collect()),
        p50_ms: median(runs.iter().map(|l| l.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|l| l.p99_ms).collect()),
    }
}

/// One h2load run (pinned to the load CPU). `rps` sets each client's rate, one request in
/// flight per client (steady arrivals); without it, `-m 8` streams per client, flat out.
fn h2load(addr: &str, rpc: &str, body: &Path, requests: u64, rps: Option<u64>) -> Result<Load, String> {
    let url = format!("http://{addr}/flyteidl.service.AsyncAgentService/{rpc}");
    let log = std::env::temp_dir().join(format!("tern-bench-h2load-{}.log", std::process::id()));
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(env_num("BENCH_LOAD_CPU", 0).to_string()).arg("h2load");
    cmd.args(["-n", &requests.to_string(), "-c", "4"]);
    match rps {
        Some(r) => cmd.args(["-m", "1"]).arg(format!("--rps={r}")),
        None => cmd.args(["-m", "8"]),
    };
    cmd.args(["-H", "content-type: application/grpc", "-H", "te: trailers", "-d"]).arg(body);
    cmd.arg(format!("--log-file={}", log.display())).arg(&url);
    let out = cmd.output().map_err(|e| format!("h2load: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !text.contains(&format!("{requests} succeeded")) {
        return Err(format!("h2load {rpc} at {addr}: not every request succeeded:\n{text}"));
    }
    let rate: f64 = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.trim_end_matches(" req/s").parse().ok())
        .ok_or_else(|| format!("cannot read h2load's rate:\n{text}"))?;
    let mut lat: Vec<f64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(2)?.trim().parse::<f64>().ok())
        .map(|us| us / 1000.0)
        .collect();
    let _ = std::fs::remove_file(&log);
    if lat.is_empty() {
        return Err("h2load wrote no per-request log".into());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    let mean_ms = lat.iter().sum::<f64>() / lat.len() as f64;
    Ok(Load { rate, mean_ms, p50_ms: pct(0.50), p99_ms: pct(0.99) })
}

/// Warm up, then BENCH_RUNS measured runs; the median.
fn measure(addr: &str, rpc: &str, body: &Path, requests: u64, rps: Option<u64>) -> Load {
    let _ = h2load(addr, rpc, body, (requests / 10).max(1000), rps);
    let runs = (0..env_num("BENCH_RUNS", 3).max(1))
        .map(|_| h2load(addr, rpc, body, requests, rps).unwrap_or_else(|e| fail(e)))
        .collect();
    median_load(runs)
}

/// Tern and the floor measured in alternation (warm-up, then floor, tern, floor, tern…), so
/// both see the same machine conditions; the medians of each and of the per-pair ratios.
fn measure_pair(tern: &str, floor: &str, rpc: &str, body: &Path, requests: u64) -> (Load, Load, f64) {
    let warm = (requests / 10).max(1000);
    let _ = h2load(tern, rpc, body, warm, None);
    let _ = h2load(floor, rpc, body, warm, None);
    let mut t = Vec::new();
    let mut f = Vec::new();
    let mut ratios = Vec::new();
    for i in 0..env_num("BENCH_RUNS", 3).max(1) {
        let fl = h2load(floor, rpc, body, requests, None).unwrap_or_else(|e| fail(e));
        let tl = h2load(tern, rpc, body, requests, None).unwrap_or_else(|e| fail(e));
        eprintln!("  {rpc} run {}: floor {:.0} req/s (p99 {:.3} ms), tern {:.0} req/s (p99 {:.3} ms): {:.2}", i + 1, fl.rate, fl.p99_ms, tl.rate, tl.p99_ms, tl.rate / fl.rate);
        ratios.push(tl.rate / fl.rate);
        t.push(tl);
        f.push(fl);
    }
    (median_load(t), median_load(f), median(ratios))
}

fn frame(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend(bytes);
    out
}

fn create_request(node: &str) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        inputs: Some(core::LiteralMap::default()),
        template: Some((core::TaskTemplate {
            r#type: "echo".into(),
            id: Some(core::Identifier { name: "bench.echo".into(), ..Default::default() }),
            ..Default::default()
        }).into()),
        output_prefix: "s3://bench/out".into(),
        task_execution_metadata: Some((admin::TaskExecutionMetadata {
            task_execution_id: Some(core::TaskExecutionIdentifier {
                task_id: Some(core::Identifier { name: "bench.echo".into(), ..Default::default() }),
                node_execution_id: Some(core::NodeExecutionIdentifier {
                    node_id: node.into(),
                    execution_id: Some(core::WorkflowExecutionIdentifier {
                        project: "bench".into(),
                        domain: "development".into(),
                        name: "bench".into(),
                        org: String::new(),
                    }),
                }),
                retry_attempt: 0,
            }),
            ..Default::default()
        }).into()),
    }
}

#[allow(deprecated)]
fn get_request(task_type: &str, meta: Vec<u8>) -> admin::GetTaskRequest {
    admin::GetTaskRequest {
        task_type: task_type.into(),
        resource_meta: meta,
        task_category: Some(admin::TaskCategory { name: task_type.into(), version: 0 }),
        output_prefix: "s3://bench/out".into(),
    }
}

/// Request bodies checked against the server (and its replies, for the floor server).
struct Bodies {
    create: PathBuf,
    get: PathBuf,
    create_reply: PathBuf,
    get_reply: PathBuf,
}

async fn bodies(addr: &str, tag: &str) -> Bodies {
    let client = GrpcAgentClient::connect_lazy(addr, ClientTimeouts::default()).unwrap_or_else(|e| fail(e));
    let deadline = Instant::now() + Duration::from_secs(90);
    let meta = loop {
        match client.create_task(create_request("n0")).await {
            Ok(m) => break m,
            Err(e) if Instant::now() > deadline => fail(format!("{addr} never answered CreateTask: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let resource = client.get_task(get_request("echo", meta.clone())).await.unwrap_or_else(|e| fail(e));
    if resource.phase != core::task_execution::Phase::Succeeded as i32 {
        fail(format!("{addr}: GetTask did not succeed: {resource:?}"));
    }
    let dir = std::env::temp_dir();
    let path = |name: &str| dir.join(format!("tern-bench-{tag}-{name}.bin"));
    let b = Bodies { create: path("create"), get: path("get"), create_reply: path("create-reply"), get_reply: path("get-reply") };
    let write = |p: &Path, bytes: Vec<u8>| std::fs::write(p, bytes).unwrap_or_else(|e| fail(e));
    write(&b.create, frame(&create_request("n0")));
    write(&b.get, frame(&get_request("echo", meta.clone())));
    write(&b.create_reply, frame(&admin::CreateTaskResponse { resource_meta: meta }));
    write(&b.get_reply, frame(&admin::GetTaskResponse { resource: Some(resource) }));
    b
}

fn target_dir() -> PathBuf {
    // This bench runs from <target>/release/deps/.
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    exe.parent().and_then(Path::parent).map(Path::to_owned).unwrap_or_else(|| fail("cannot find the target directory"))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tern-bench-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap_or_else(|e| fail(e));
    path
}

fn tern(cpu: u64, config: &Path) -> Peer {
    let addr = format!("127.0.0.1:{}", free_port());
    let args = vec!["serve".into(), "--addr".into(), addr.clone(), "--config".into(), config.display().to_string()];
    Peer::spawn(cpu, Path::new(env!("CARGO_BIN_EXE_tern")), &args, None, &[], addr)
}

/// Creates `n` long sleep tasks (distinct attempts) and returns the server's RSS after.
async fn hold_jobs(addr: &str, n: u64) -> Result<(), String> {
    use futures::StreamExt;
    let client = GrpcAgentClient::connect_lazy(addr, ClientTimeouts::default()).map_err(|e| e.to_string())?;
    let results: Vec<Result<Vec<u8>, String>> = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                let mut request = create_request(&format!("job-{i}"));
                if let Some(t) = request.template.as_mut() {
                    t.r#type = "sleep".into();
                }
                request.inputs = Some(core::LiteralMap {
                    literals: [("duration".to_owned(), tern_type_transformers::FlyteType::to_literal(&3600.0f64).map_err(|e| e.to_string())?)].into(),
                });
                client.create_task(request).await.map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let handles: Vec<Vec<u8>> = results.into_iter().collect::<Result<_, _>>()?;
    // Poll each once: every job is live and answerable.
    for h in handles.iter().step_by((n as usize / 100).max(1)) {
        let r = client.get_task(get_request("sleep", h.clone())).await.map_err(|e| e.to_string())?;
        if r.phase != core::task_execution::Phase::Running as i32 {
            return Err(format!("a held job is not RUNNING: {r:?}"));
        }
    }
    Ok(())
}

fn main() {
    for tool in ["taskset", "h2load"] {
        if Command::new(tool).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            fail(format!("{tool} is not installed (scripts/bench.sh installs it)"));
        }
    }
    let server_cpu = env_num("BENCH_SERVER_CPU", 1);
    let requests = env_num("BENCH_REQUESTS", 200_000);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| fail(e));
    let floor_bin = target_dir().join("examples").join("h2-floor");
    if !floor_bin.exists() {
        fail(format!("{} is missing: run `cargo build --release --example h2-floor` first (scripts/bench.sh does)", floor_bin.display()));
    }

    // --- Tern, direct (this gateway's echo agent) -------------------------------------
    // The sleep agent's job records go to a directory of this run: held jobs start fresh each run.
    let sleep_state = std::env::temp_dir().join(format!("tern-bench-{}-sleep-state", std::process::id()));
    let direct_config =
        write_config("direct", &format!("[agents.echo]\n[agents.sleep]\nstate_dir = {:?}\n", sleep_state.display().to_string()));
    let direct = tern(server_cpu, &direct_config);
    let tb = rt.block_on(bodies(&direct.addr, "tern"));
    let hop_rate = env_num("BENCH_HOP_RATE", 5000);
    let per_client = (hop_rate / 4).max(1);
    let direct_fixed = measure(&direct.addr, "GetTask", &tb.get, hop_rate * 5, Some(per_client));

    // --- the floor: same replies, no decoding; measured in alternation with Tern --------
    let floor_addr = format!("127.0.0.1:{}", free_port());
    let floor_args = vec![floor_addr.clone(), tb.create_reply.display().to_string(), tb.get_reply.display().to_string()];
    let floor = Peer::spawn(server_cpu, &floor_bin, &floor_args, None, &[], floor_addr);
    std::thread::sleep(Duration::from_millis(500));
    let (tern_create, floor_create, create_ratio) = measure_pair(&direct.addr, &floor.addr, "CreateTask", &tb.create, requests);
    let (tern_get, floor_get, get_ratio) = measure_pair(&direct.addr, &floor.addr, "GetTask", &tb.get, requests);
    let tern_rss_load = direct.status("VmHWM:");
    drop(floor);

    // --- a routed remote hop: front gateway (server CPU) -> backend gateway (the other
    // CPU, standing for another machine), at the same steady load as `direct_fixed` ------
    drop(direct);
    let backend = tern(env_num("BENCH_LOAD_CPU", 0), &direct_config);
    let _ = rt.block_on(bodies(&backend.addr, "backend"));
    let routed_config =
        write_config("front", &format!("[[routes]]\ntask_type = \"echo\"\ntarget = \"group:backend\"\n[groups.backend]\nendpoints = [{{ url = \"http://{}\" }}]\n", backend.addr));
    let front = tern(server_cpu, &routed_config);
    let fb = rt.block_on(bodies(&front.addr, "front"));
    let routed_fixed = measure(&front.addr, "GetTask", &fb.get, hop_rate * 5, Some(per_client));
    let routed_max = measure(&front.addr, "GetTask", &fb.get, requests / 2, None);
    drop(front);
    drop(backend);

    // --- memory: 10,000 in-flight async jobs ---------------------------------------------
    let jobs = env_num("BENCH_JOBS", 10_000);
    let holder = tern(server_cpu, &direct_config);
    let _ = rt.block_on(bodies(&holder.addr, "holder"));
    let idle_rss = holder.status("VmRSS:");
    let started = Instant::now();
    rt.block_on(hold_jobs(&holder.addr, jobs)).unwrap_or_else(|e| fail(e));
    let held_for = started.elapsed();
    let held_rss = holder.status("VmRSS:");
    drop(holder);

    // --- flytekit's connector server (no-op echo) ----------------------------------------
    let pyflyte = std::env::var("TERN_PYFLYTE")
        .unwrap_or_else(|_| format!("{}/.cache/tern/venv/bin/pyflyte", std::env::var("HOME").unwrap_or_default()));
    let py_port = free_port();
    let connectors = repo_root().join("tests/interop/connectors");
    let py_args: Vec<String> = ["serve", "connector", "--port", &py_port.to_string(), "--prometheus_port", &free_port().to_string(), "--modules", "noop_echo"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let py = Peer::spawn(server_cpu, Path::new(&pyflyte), &py_args, Some(&connectors), &[("PYTHONPATH", connectors.display().to_string())], format!("127.0.0.1:{py_port}"));
    let pb = rt.block_on(bodies(&py.addr, "flytekit"));
    let py_requests = env_num("BENCH_FLYTEKIT_REQUESTS", 20_000);
    let py_create = measure(&py.addr, "CreateTask", &pb.create, py_requests, None);
    let py_get = measure(&py.addr, "GetTask", &pb.get, py_requests, None);
    let py_rss = py.status("VmHWM:");
    drop(py);

    // --- report ------------------------------------------------------------------------------
    let runs = env_num("BENCH_RUNS", 3);
    println!("## Gateway benchmark ({runs} runs each, medians; servers on CPU {server_cpu}, h2load on CPU {}, -c 4 -m 8)", env_num("BENCH_LOAD_CPU", 0));
    println!();
    println!("| server | rpc | req/s | mean ms | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, rpc: &str, l: &Load| println!("| {name} | {rpc} | {:.0} | {:.3} | {:.3} | {:.3} |", l.rate, l.mean_ms, l.p50_ms, l.p99_ms);
    row("bare HTTP/2 floor (hyper)", "CreateTask", &floor_create);
    row("bare HTTP/2 floor (hyper)", "GetTask", &floor_get);
    row("tern serve (echo)", "CreateTask", &tern_create);
    row("tern serve (echo)", "GetTask", &tern_get);
    row("pyflyte serve connector 1.16.31 (no-op echo)", "CreateTask", &py_create);
    row("pyflyte serve connector 1.16.31 (no-op echo)", "GetTask", &py_get);
    row("tern serve front (CPU 1) -> tern serve backend (CPU 0), routed hop", "GetTask", &routed_max);
    println!();
    println!("| ratio | CreateTask | GetTask | target |");
    println!("|---|---|---|---|");
    println!("| tern / floor (throughput, median of the paired runs) | {create_ratio:.2} | {get_ratio:.2} | >= 0.8 |");
    println!("| tern p99 / floor p99 | {:.2} | {:.2} | <= 1.5 |", tern_create.p99_ms / floor_create.p99_ms, tern_get.p99_ms / floor_get.p99_ms);
    println!("| tern / flytekit (throughput) | {:.1}x | {:.1}x | |", tern_create.rate / py_create.rate, tern_get.rate / py_get.rate);
    println!("| floor / flytekit (the ceiling of that ratio here) | {:.1}x | {:.1}x | |", floor_create.rate / py_create.rate, floor_get.rate / py_get.rate);
    println!();
    println!(
        "Routed remote hop, GetTask at a steady {hop_rate} req/s (4 clients, 1 in flight each): direct (tern serve on CPU 1) mean {:.3} ms (p99 {:.3}), routed (front on CPU 1 -> backend on CPU 0) mean {:.3} ms (p99 {:.3}): the hop adds {:.3} ms mean (target <= 0.3 ms)",
        direct_fixed.mean_ms,
        direct_fixed.p99_ms,
        routed_fixed.mean_ms,
        routed_fixed.p99_ms,
        routed_fixed.mean_ms - direct_fixed.mean_ms
    );
    let mib = |v: Option<f64>| v.map(|m| format!("{m:.1} MiB")).unwrap_or_else(|| "n/a".into());
    println!(
        "Memory: tern serve holding {jobs} in-flight async jobs (sleep agent, created in {:.1} s): RSS {} (idle {}); peak RSS under the throughput load {}; pyflyte serve connector peak RSS {}",
        held_for.as_secs_f64(),
        mib(held_rss),
        mib(idle_rss),
        mib(tern_rss_load),
        mib(py_rss)
    );
    let _ = std::fs::remove_dir_all(&sleep_state);
}
