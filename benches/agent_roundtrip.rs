//! CreateTask+GetTask round trips against `tern serve` (echo agent) and against
//! flytekit's `pyflyte serve connector` (an equivalent no-op async connector,
//! tests/interop/connectors/noop_echo.py), with the same client, the same concurrency
//! and the same request bodies, in one run. Prints throughput, p50/p99 and the ratio.
//!
//!     TERN_PYFLYTE=$HOME/.cache/tern/venv/bin/pyflyte cargo bench --bench agent_roundtrip
//!
//! Knobs (env): BENCH_SECS (10), BENCH_WARMUP_SECS (2), BENCH_CONNECTIONS (4),
//! BENCH_CONCURRENCY (32 in-flight round trips in all).
//!
//! When `h2load` (Debian package nghttp2-client) is on the PATH, each server is also
//! driven per RPC by that neutral C load generator (`-c 4 -m 8`, pre-encoded request
//! bodies that were first checked to get an OK answer), which costs far less CPU than a
//! tonic client sharing the same two cores.
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_agent_api::client::AgentClient;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::{admin, core};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18_000)
}

/// Kills the child process when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident set size of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn create_request() -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        inputs: Some(core::LiteralMap::default()),
        template: Some(core::TaskTemplate {
            r#type: "echo".into(),
            id: Some(core::Identifier { name: "bench.echo".into(), ..Default::default() }),
            ..Default::default()
        }),
        output_prefix: "/tmp/tern-bench".into(),
        task_execution_metadata: None,
    }
}

async fn round_trip(client: &GrpcAgentClient) -> Result<(), String> {
    let meta = client.create_task(create_request()).await.map_err(|e| e.to_string())?;
    #[allow(deprecated)]
    let resource = client
        .get_task(admin::GetTaskRequest {
            task_type: "echo".into(),
            resource_meta: meta,
            task_category: Some(admin::TaskCategory { name: "echo".into(), version: 0 }),
            output_prefix: "/tmp/tern-bench".into(),
        })
        .await
        .map_err(|e| e.to_string())?;
    if resource.phase != core::task_execution::Phase::Succeeded as i32 {
        return Err(format!("unexpected phase {}", resource.phase));
    }
    Ok(())
}

/// Pre-framed gRPC bodies (flag byte, big-endian length, message) for CreateTask and for a
/// GetTask carrying the resource_meta this server returned.
async fn framed_bodies(target: &str, dir: &std::path::Path, tag: &str) -> Option<(PathBuf, PathBuf)> {
    use prost::Message;
    let client = GrpcAgentClient::connect_lazy(target, ClientTimeouts::default()).ok()?;
    let meta = client.create_task(create_request()).await.ok()?;
    #[allow(deprecated)]
    let get = admin::GetTaskRequest {
        task_type: "echo".into(),
        resource_meta: meta,
        task_category: Some(admin::TaskCategory { name: "echo".into(), version: 0 }),
        output_prefix: "/tmp/tern-bench".into(),
    };
    if client.get_task(get.clone()).await.ok()?.phase != core::task_execution::Phase::Succeeded as i32 {
        return None;
    }
    let frame = |bytes: Vec<u8>| {
        let mut out = vec![0u8];
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend(bytes);
        out
    };
    let create_path = dir.join(format!("{tag}-create.bin"));
    let get_path = dir.join(format!("{tag}-get.bin"));
    std::fs::write(&create_path, frame(create_request().encode_to_vec())).ok()?;
    std::fs::write(&get_path, frame(get.encode_to_vec())).ok()?;
    Some((create_path, get_path))
}

/// Requests per second h2load reached, or None if it is missing or saw failures.
fn h2load(target: &str, rpc: &str, body: &std::path::Path, requests: u64) -> Option<f64> {
    let url = format!("http://{target}/flyteidl.service.AsyncAgentService/{rpc}");
    let out = Command::new("h2load")
        .args(["-n", &requests.to_string(), "-c", "4", "-m", "8"])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers", "-d"])
        .arg(body)
        .arg(&url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let succeeded = text.contains(&format!("{requests} succeeded"));
    let rate = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.trim_end_matches(" req/s").parse().ok());
    if !succeeded {
        eprintln!("h2load {rpc} at {target} did not succeed on every request:\n{text}");
        return None;
    }
    rate
}

/// CreateTask and GetTask rates by h2load, after a short warm-up.
async fn h2load_rates(target: &str, tag: &str, requests: u64) -> Option<(f64, f64)> {
    let dir = std::env::temp_dir();
    let (create, get) = framed_bodies(target, &dir, tag).await?;
    h2load(target, "CreateTask", &create, requests / 10)?;
    let c = h2load(target, "CreateTask", &create, requests)?;
    let g = h2load(target, "GetTask", &get, requests)?;
    Some((c, g))
}

async fn wait_ready(client: &GrpcAgentClient, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if round_trip(client).await.is_ok() {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what} did not answer CreateTask+GetTask within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(target: &str) -> Figures {
    let connections = env_num("BENCH_CONNECTIONS", 4).max(1);
    let concurrency = env_num("BENCH_CONCURRENCY", 32).max(1);
    let clients: Vec<GrpcAgentClient> = (0..connections)
        .map(|_| GrpcAgentClient::connect_lazy(target, ClientTimeouts::default()).expect("endpoint"))
        .collect();
    wait_ready(&clients[0], target).await;
    let run = |secs: u64| {
        let clients = clients.clone();
        async move {
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = Vec::new();
            for i in 0..concurrency {
                let client = clients[(i % connections) as usize].clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(100_000);
                    let mut errors = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        match round_trip(&client).await {
                            Ok(()) => lat.push(t.elapsed()),
                            Err(_) => errors += 1,
                        }
                    }
                    (lat, errors)
                }));
            }
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
            let mut all = Vec::new();
            let mut errors = 0;
            for t in tasks {
                if let Ok((l, e)) = t.await {
                    all.extend(l);
                    errors += e;
                }
            }
            (all, errors, started.elapsed())
        }
    };
    run(env_num("BENCH_WARMUP_SECS", 2)).await;
    let (mut lat, errors, elapsed) = run(env_num("BENCH_SECS", 10)).await;
    lat.sort();
    let pct = |p: f64| {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i].as_secs_f64() * 1000.0
    };
    Figures { rate: lat.len() as f64 / elapsed.as_secs_f64(), p50_ms: pct(0.50), p99_ms: pct(0.99), errors }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tern_port = free_port();
    let tern = Peer(
        Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(["serve", "--addr", &format!("127.0.0.1:{tern_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tern serve"),
    );
    let tern_target = format!("127.0.0.1:{tern_port}");
    let tern_fig = rt.block_on(measure(&tern_target));
    let tern_h2 = rt.block_on(h2load_rates(&tern_target, "tern", 300_000));
    let tern_rss = peak_rss_mib(tern.0.id());
    drop(tern);

    let pyflyte = std::env::var("TERN_PYFLYTE").unwrap_or_else(|_| {
        format!("{}/.cache/tern/venv/bin/pyflyte", std::env::var("HOME").unwrap_or_default())
    });
    let py_port = free_port();
    let prom_port = free_port();
    let py = Command::new(&pyflyte)
        .args(["serve", "connector", "--port", &py_port.to_string(), "--prometheus_port", &prom_port.to_string()])
        .args(["--modules", "noop_echo"])
        .current_dir(repo_root().join("tests/interop/connectors"))
        .env("PYTHONPATH", repo_root().join("tests/interop/connectors"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let py_fig = match py {
        Ok(child) => {
            let peer = Peer(child);
            let target = format!("127.0.0.1:{py_port}");
            let fig = rt.block_on(measure(&target));
            let h2 = rt.block_on(h2load_rates(&target, "flytekit", 30_000));
            Some((fig, h2, peak_rss_mib(peer.0.id())))
        }
        Err(e) => {
            eprintln!("flytekit peer not started ({pyflyte}: {e}); run scripts/test.sh once to create the venv");
            None
        }
    };

    let conc = env_num("BENCH_CONCURRENCY", 32);
    let conns = env_num("BENCH_CONNECTIONS", 4);
    println!("CreateTask+GetTask round trips, {conc} in flight over {conns} connections, same tonic client");
    println!("| server | round trips/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, f: &Figures| {
        println!("| {name} | {:.0} | {:.2} | {:.2} | {} |", f.rate, f.p50_ms, f.p99_ms, f.errors);
    };
    row("tern serve (echo)", &tern_fig);
    if let Some((p, _, _)) = &py_fig {
        row("pyflyte serve connector (noop echo)", p);
        println!("ratio tern/flytekit round-trip throughput: {:.1}x", tern_fig.rate / p.rate);
    }
    let py_h2 = py_fig.as_ref().and_then(|(_, h, _)| *h);
    let mib = |v: Option<f64>| v.map(|m| format!("{m:.0} MiB")).unwrap_or_else(|| "n/a".into());
    println!(
        "peak RSS (VmHWM) after the runs above: tern serve {}, pyflyte serve connector {}",
        mib(tern_rss),
        mib(py_fig.as_ref().and_then(|(_, _, r)| *r))
    );
    match (tern_h2, py_h2) {
        (Some((tc, tg)), Some((pc, pg))) => {
            println!();
            println!("h2load per RPC (-c 4 -m 8), requests/s");
            println!("| server | CreateTask | GetTask |");
            println!("|---|---|---|");
            println!("| tern serve (echo) | {tc:.0} | {tg:.0} |");
            println!("| pyflyte serve connector (noop echo) | {pc:.0} | {pg:.0} |");
            println!("ratio tern/flytekit: CreateTask {:.1}x, GetTask {:.1}x", tc / pc, tg / pg);
        }
        _ => println!("(h2load not run: install nghttp2-client for the per-RPC figures)"),
    }
}
