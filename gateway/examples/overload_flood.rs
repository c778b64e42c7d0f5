//! The bounded overload run of `tern serve` (docs/benchmarks.md, "Overload"): not a test,
//! a measurement with a fixed request count.
//!
//!     scripts/overload.sh                     # builds tern and this, runs it pinned
//!
//! It starts a slow HTTP endpoint (each answer after OVERLOAD_SLOW_MS) and `tern serve`
//! (TERN_BIN, pinned with `taskset -c OVERLOAD_SERVER_CPU`) serving the webhook agent, a
//! sync agent, towards it, with `[server] max_in_flight = OVERLOAD_LIMIT`. Then, for each
//! factor F of OVERLOAD_FACTORS, it floods the gateway with OVERLOAD_REQUESTS calls,
//! F × the limit at once, and counts the answers: OK, RESOURCE_EXHAUSTED (with its retry
//! hint), and anything else (a client-side deadline of OVERLOAD_CLIENT_TIMEOUT_S would be a
//! hang). The server's peak RSS (VmHWM) is read before and after each flood. Last, a flood
//! is cut by SIGTERM: every call still gets an answer and the server exits within its drain.
//!
//! Exits non-zero when a call got no answer or an unexpected one.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tern_agent_api::client::AgentClient;
use tern_agent_api::error::ErrorClass;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::{admin, core};
use tern_type_transformers::{FlyteType, JsonDict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("overload: {message}");
    std::process::exit(2)
}

/// An HTTP/1.1 endpoint that answers every request `{}` after `slow`.
async fn slow_endpoint(slow: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| fail(format!("bind: {e}")));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| fail(e));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(4096);
                let mut chunk = [0u8; 4096];
                loop {
                    // A GET without a body: one request per header block (keep-alive).
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(buf.len());
                    buf.drain(..end);
                    tokio::time::sleep(slow).await;
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if socket.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn webhook_header(url: &str) -> admin::CreateRequestHeader {
    let custom = json!({"url": url, "method": "GET", "headers": {}, "data": {}, "show_data": false, "show_url": false, "timeout_sec": 60});
    let Some(custom) = custom.as_object() else { fail("custom is an object") };
    let info = core::Variable { r#type: Some(JsonDict::literal_type()), ..Default::default() };
    let template = core::TaskTemplate {
        r#type: "webhook".into(),
        custom: Some(tern_type_transformers::render::json_to_struct(custom)),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("info".to_owned(), info)].into() }),
        }),
        ..Default::default()
    };
    admin::CreateRequestHeader { template: Some(template.into()), ..Default::default() }
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `field` of /proc/PID/status (VmHWM, VmRSS) in MiB.
    fn mib(&self, field: &str) -> f64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb: f64 = text
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        kb / 1024.0
    }
}

fn start_server(bin: &Path, dir: &Path, addr: &str, limit: u64, http_port: u16, cpu: u64) -> Server {
    let config = format!(
        "[server]\naddr = \"{addr}\"\nmax_in_flight = {limit}\ncall_timeout = \"30s\"\ndrain_timeout = \"3s\"\n\
         [data_store]\nroot = \"{}\"\n[agents.webhook]\nallowed_hosts = [\"127.0.0.1:{http_port}\"]\n",
        dir.join("data").display()
    );
    let path = dir.join("tern.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| fail(format!("write {}: {e}", path.display())));
    let log = std::fs::File::create(dir.join("serve.log")).unwrap_or_else(|e| fail(e));
    let child = Command::new("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(bin)
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start {}: {e}", bin.display())));
    Server { child }
}

#[derive(Default, Debug)]
struct Counts {
    ok: AtomicU64,
    exhausted: AtomicU64,
    exhausted_without_hint: AtomicU64,
    unavailable: AtomicU64,
    /// UNAVAILABLE by Tern code: the drain's refusal, its cut, the closed listener.
    unavailable_codes: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    deadline: AtomicU64,
    /// The connection went away under the call (a stream sent as the server closed it).
    transport: AtomicU64,
    other: AtomicU64,
}

impl Counts {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// `requests` calls, `concurrency` at once over 8 connections; `stop` is called once
/// half of them have been sent (the SIGTERM run).
async fn flood(
    clients: &[GrpcAgentClient],
    header: &admin::CreateRequestHeader,
    requests: u64,
    concurrency: u64,
    stop: Option<Box<dyn FnOnce() + Send>>,
) -> (Arc<Counts>, Duration) {
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::Mutex::new(stop));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let client = clients[w as usize % clients.len()].clone();
            let (header, counts, next, stop) = (header.clone(), counts.clone(), next.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        return;
                    }
                    if n == requests / 2 {
                        if let Some(f) = stop.lock().ok().and_then(|mut s| s.take()) {
                            f();
                        }
                    }
                    match client.execute_task_sync(header.clone(), Default::default()).await {
                        Ok(_) => counts.ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.class == ErrorClass::ResourceExhausted => {
                            if e.retry_after.is_none() {
                                counts.exhausted_without_hint.fetch_add(1, Ordering::Relaxed);
                            }
                            counts.exhausted.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) if e.class == ErrorClass::Unavailable => {
                            if let Ok(mut codes) = counts.unavailable_codes.lock() {
                                *codes.entry(e.code.to_string()).or_default() += 1;
                            }
                            counts.unavailable.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) if e.class == ErrorClass::DeadlineExceeded => {
                            eprintln!("overload: no answer in time: {e}");
                            counts.deadline.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) if e.message.contains("transport error") => {
                            counts.transport.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => {
                            eprintln!("overload: unexpected answer: {e}");
                            counts.other.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    (counts, started.elapsed())
}

/// The highest VmRSS of `pid` seen every 10 ms until aborted (the kernel's VmHWM is only
/// updated at some points, so it can read below a peak that just passed).
fn sample_rss(pid: u32) -> SamplingHandle {
    let peak = Arc::new(std::sync::Mutex::new(0f64));
    let seen = peak.clone();
    let task = tokio::spawn(async move {
        loop {
            let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let kb: f64 = text
                .lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            if let Ok(mut p) = seen.lock() {
                *p = p.max(kb / 1024.0);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    SamplingHandle { task, peak }
}

struct SamplingHandle {
    task: tokio::task::JoinHandle<()>,
    peak: Arc<std::sync::Mutex<f64>>,
}

impl SamplingHandle {
    fn abort(&self) {
        self.task.abort();
    }

    async fn await_peak(self) -> f64 {
        let _ = self.task.await;
        self.peak.lock().map(|p| *p).unwrap_or(f64::NAN)
    }
}

#[tokio::main]
async fn main() {
    let bin = PathBuf::from(std::env::var("TERN_BIN").unwrap_or_else(|_| fail("set TERN_BIN to the tern binary")));
    let limit = env_num("OVERLOAD_LIMIT", 8);
    let requests = env_num("OVERLOAD_REQUESTS", 4000);
    let slow = Duration::from_millis(env_num("OVERLOAD_SLOW_MS", 200));
    let client_timeout = Duration::from_secs(env_num("OVERLOAD_CLIENT_TIMEOUT_S", 60));
    let factors: Vec<u64> = std::env::var("OVERLOAD_FACTORS")
        .unwrap_or_else(|_| "10,100".into())
        .split(',')
        .filter_map(|f| f.trim().parse().ok())
        .collect();
    let cpu = env_num("OVERLOAD_SERVER_CPU", 1);

    let http_port = slow_endpoint(slow).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(e));
    let port = TcpListener::bind("127.0.0.1:0").await.and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18_500);
    let addr = format!("127.0.0.1:{port}");
    let mut server = start_server(&bin, dir.path(), &addr, limit, http_port, cpu);
    let timeouts = ClientTimeouts { execute_sync: client_timeout, ..Default::default() };
    let clients: Vec<GrpcAgentClient> =
        (0..8).map(|_| GrpcAgentClient::connect_lazy(&addr, timeouts.clone()).unwrap_or_else(|e| fail(e))).collect();
    let up = Instant::now();
    while !matches!(clients[0].check_health("").await, Ok(true)) {
        if up.elapsed() > Duration::from_secs(60) {
            fail(format!(
                "tern serve did not answer health within 60 s (log: {})",
                dir.path().join("serve.log").display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let header = webhook_header(&format!("http://127.0.0.1:{http_port}/slow"));
    // Warm-up, and a check that the call itself succeeds.
    for _ in 0..limit {
        if let Err(e) = clients[0].execute_task_sync(header.clone(), Default::default()).await {
            fail(format!("the webhook call fails unloaded: {e}"));
        }
    }
    println!(
        "tern serve ({}), max_in_flight = {limit}, webhook calls answered after {} ms, {requests} calls per flood",
        bin.display(),
        slow.as_millis()
    );
    println!("| calls at once | OK | RESOURCE_EXHAUSTED (all with retry hint) | no answer / other | took | VmHWM before → after | VmRSS peak sampled | VmRSS after |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut bad = 0;
    for factor in &factors {
        let concurrency = limit * factor;
        let hwm_before = server.mib("VmHWM");
        let sampling = sample_rss(server.child.id());
        let (counts, took) = flood(&clients, &header, requests, concurrency, None).await;
        sampling.abort();
        let peak = sampling.await_peak().await;
        let no_answer = Counts::get(&counts.deadline)
            + Counts::get(&counts.other)
            + Counts::get(&counts.unavailable)
            + Counts::get(&counts.transport);
        let unhinted = Counts::get(&counts.exhausted_without_hint);
        // Every call must be answered OK or RESOURCE_EXHAUSTED with its retry hint.
        bad += requests.saturating_sub(Counts::get(&counts.ok) + Counts::get(&counts.exhausted) - unhinted);
        println!(
            "| {concurrency} ({factor}× the limit) | {} | {}{} | {no_answer} | {:.1} s | {hwm_before:.1} → {:.1} MiB | {peak:.1} MiB | {:.1} MiB |",
            Counts::get(&counts.ok),
            Counts::get(&counts.exhausted),
            if unhinted > 0 { format!(" ({unhinted} without hint)") } else { String::new() },
            took.as_secs_f64(),
            server.mib("VmHWM"),
            server.mib("VmRSS"),
        );
    }

    // A flood cut by SIGTERM: every call is answered (OK, RESOURCE_EXHAUSTED, or UNAVAILABLE
    // from the drain or the closed listener), and the server exits within its drain.
    let concurrency = limit * factors.first().copied().unwrap_or(10);
    let pid = server.child.id();
    let term_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let term_at_set = term_at.clone();
    let stop: Box<dyn FnOnce() + Send> = Box::new(move || {
        if let Ok(mut t) = term_at_set.lock() {
            *t = Some(Instant::now());
        }
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    });
    let (counts, _) = flood(&clients, &header, requests, concurrency, Some(stop)).await;
    let exited = loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            break Some(status);
        }
        if term_at.lock().ok().and_then(|t| *t).is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exit_after = term_at.lock().ok().and_then(|t| *t).map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    // A call sent on a connection as the server closes it fails with a transport error
    // (an answer, not a hang: HTTP/2 clients may retry such a stream elsewhere).
    let no_answer = Counts::get(&counts.deadline) + Counts::get(&counts.other);
    bad += no_answer;
    println!(
        "\nSIGTERM half-way through a flood of {requests} calls, {concurrency} at once: OK {}, RESOURCE_EXHAUSTED {}, UNAVAILABLE {} {:?}, transport error as the connection closed {}, no answer / other {no_answer}; {}",
        Counts::get(&counts.ok),
        Counts::get(&counts.exhausted),
        Counts::get(&counts.unavailable),
        counts.unavailable_codes.lock().map(|c| c.clone()).unwrap_or_default(),
        Counts::get(&counts.transport),
        match exited {
            Some(s) => format!("server exited ({s}) within {exit_after:.2} s of the signal (drain_timeout = 3s)"),
            None => {
                bad += 1;
                "server still running 30 s after SIGTERM".to_owned()
            }
        }
    );
    if bad > 0 {
        fail(format!("{bad} calls without a proper answer (server log: {})", dir.path().join("serve.log").display()));
    }
}
