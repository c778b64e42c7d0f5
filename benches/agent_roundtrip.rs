//! CreateTask+GetTask round trips against `tern serve` (echo agent) and against
//! flytekit's `pyflyte serve connector` (an equivalent no-op async connector,
//! tests/interop/connectors/noop_echo.py), with the same client, the same concurrency
//! and the same request bodies, in one run. Prints throughput, p50/p99 and the ratio.
//!
//!     TERN_PYFLYTE=$HOME/.cache/tern/venv/bin/pyflyte cargo bench --bench agent_roundtrip
//!
//! Knobs (env): BENCH_SECS (10), BENCH_WARMUP_SECS (2), BENCH_CONNECTIONS (4),
//! BENCH_CONCURRENCY (32 in-flight round trips in all).
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
    let tern_fig = rt.block_on(measure(&format!("127.0.0.1:{tern_port}")));
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
            let _peer = Peer(child);
            Some(rt.block_on(measure(&format!("127.0.0.1:{py_port}"))))
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
    if let Some(p) = &py_fig {
        row("pyflyte serve connector (noop echo)", p);
        println!("ratio tern/flytekit throughput: {:.1}x", tern_fig.rate / p.rate);
    }
}
