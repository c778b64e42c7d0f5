//! A real Ray head for the Ray agent's tests: Ray 2.60.0 from `$TERN_RAY_PYTHON`'s virtualenv
//! (scripts/test.sh builds it from `tests/interop/requirements-ray.txt`), started by the test
//! with `ray start --head --block` in a process group of its own, on free ports, with its own
//! `--temp-dir`, and stopped when dropped by signalling that process group only — never
//! `ray stop`, which stops every Ray process of the machine.
//!
//! Without `TERN_RAY_PYTHON` a test prints why and passes, except under `CI=true`, where a
//! missing peer is a failure.
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct RayHead {
    child: Child,
    /// The dashboard (Jobs REST API), `http://127.0.0.1:<port>`.
    pub url: String,
    pub dir: tempfile::TempDir,
    gcs_port: u16,
    http: reqwest::Client,
}

impl Drop for RayHead {
    fn drop(&mut self) {
        // `ray start --block` drains for up to 30 s on SIGTERM: the head's process group is killed
        // outright instead (nothing of it needs to survive a test).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-s", "KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The raylet starts workers (and Ray starts job drivers) in sessions of their own: they are this
        // head's when their command line names its temp dir or their environment its GCS address.
        let marks = [format!("{}/", self.dir.path().display()), format!("RAY_ADDRESS=127.0.0.1:{}\0", self.gcs_port)];
        for _ in 0..3 {
            let ours = processes_mentioning(&marks);
            if ours.is_empty() {
                break;
            }
            for pid in ours {
                let _ = Command::new("kill").args(["-s", "KILL", &pid.to_string()]).status();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Processes whose command line or environment contains one of `marks`.
fn processes_mentioning(marks: &[String]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            ["cmdline", "environ"].iter().any(|f| {
                let bytes = std::fs::read(format!("/proc/{pid}/{f}")).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                marks.iter().any(|m| text.contains(m.as_str()))
            })
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts a Ray head, or explains why not: `None` means skip (a failure under `CI=true`).
pub async fn start(test: &str) -> Option<RayHead> {
    start_secured(test, None).await
}

/// The same, with Ray's token authentication (`RAY_AUTH_MODE=token`) when `token` is given: the
/// dashboard then answers 401 without `Authorization: Bearer <token>` and 403 with another token.
pub async fn start_secured(test: &str, token: Option<&str>) -> Option<RayHead> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let missing = |why: String| {
        if ci {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!(
            "SKIPPED {test}: {why}; scripts/test.sh sets TERN_RAY_PYTHON (a virtualenv with \
             tests/interop/requirements-ray.txt)"
        );
        None
    };
    let Some(python) = std::env::var_os("TERN_RAY_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from) else {
        return missing("TERN_RAY_PYTHON is not set".into());
    };
    let bin = python.parent().map(PathBuf::from).unwrap_or_default();
    let ray = bin.join("ray");
    if !python.is_file() || !ray.is_file() {
        return missing(format!("{} or {} does not exist", python.display(), ray.display()));
    }
    let dir = tempfile::Builder::new().prefix("tern-ray-").tempdir_in("/tmp").unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let log = std::fs::File::create(dir.path().join("ray.log")).unwrap();
    let dashboard = free_port();
    let gcs_port = free_port();
    let port = |p: u16| p.to_string();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new(&ray);
    match token {
        Some(t) => command.env("RAY_AUTH_MODE", "token").env("RAY_AUTH_TOKEN", t),
        None => command.env_remove("RAY_AUTH_MODE").env_remove("RAY_AUTH_TOKEN"),
    };
    let child = command
        .args(["start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "2"])
        .args(["--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--disable-usage-stats"])
        .args(["--dashboard-port", &port(dashboard)])
        .args(["--port", &port(gcs_port)])
        .args(["--ray-client-server-port", &port(free_port())])
        .args(["--node-manager-port", &port(free_port())])
        .args(["--object-manager-port", &port(free_port())])
        .args(["--dashboard-agent-listen-port", &port(free_port())])
        .args(["--dashboard-agent-grpc-port", &port(free_port())])
        .args(["--runtime-env-agent-port", &port(free_port())])
        .args(["--metrics-export-port", &port(free_port())])
        .arg("--temp-dir")
        .arg(dir.path().join("r"))
        .current_dir(&cwd)
        .env("PATH", path)
        .env("RAY_USAGE_STATS_ENABLED", "0")
        .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        .env_remove("RAY_ADDRESS")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", ray.display()));
    let url = format!("http://127.0.0.1:{dashboard}");
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
    }
    let http = reqwest::Client::builder().no_proxy().default_headers(headers).build().unwrap();
    let mut head = RayHead { child, url, dir, gcs_port, http };
    // The job API answers once the head's job agent is up (the dashboard answers earlier).
    let deadline = Instant::now() + Duration::from_secs(90);
    while !head.remote().serves_jobs().await {
        if let Ok(Some(status)) = head.child.try_wait() {
            panic!("ray start exited ({status}) before serving: {}", head.log());
        }
        assert!(Instant::now() < deadline, "Ray did not serve jobs within 90 s: {}", head.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Some(head)
}

impl RayHead {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ray.log")).unwrap_or_default()
    }

    /// Every job the head holds (`GET /api/jobs/`): the real count of submissions that created a job.
    pub async fn jobs(&self) -> Vec<Value> {
        self.remote().jobs().await
    }

    pub fn remote(&self) -> Remote {
        Remote { url: self.url.clone(), http: self.http.clone() }
    }
}

/// What closures handed to the conformance kit need: the URL and a client.
#[derive(Clone)]
pub struct Remote {
    pub url: String,
    http: reqwest::Client,
}

impl Remote {
    async fn serves_jobs(&self) -> bool {
        matches!(self.http.get(format!("{}/api/jobs/", self.url)).send().await, Ok(r) if r.status().is_success())
    }

    pub async fn jobs(&self) -> Vec<Value> {
        let r: Value = self.http.get(format!("{}/api/jobs/", self.url)).send().await.unwrap().json().await.unwrap();
        r.as_array().cloned().unwrap_or_default()
    }

    pub async fn job(&self, id: &str) -> Value {
        self.http.get(format!("{}/api/jobs/{id}", self.url)).send().await.unwrap().json().await.unwrap()
    }
}

/// A test-only pass-through in front of the head's dashboard, to drive states a real Ray cannot be
/// made to report on demand (a supervisor that died, a newer Ray's status): every request goes to
/// Ray unchanged, except that while a state is driven, `GET /api/jobs/{id}` answers that state
/// (`FAILED/<error_type>` sets both fields). The agent under test talks to [`Proxy::url`]; jobs are
/// still counted at the head itself.
pub struct Proxy {
    pub url: String,
    driven: Arc<Mutex<Option<String>>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let driven: Arc<Mutex<Option<String>>> = Arc::default();
        let (state, target) = (driven.clone(), target.to_owned());
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (state, target, http) = (state.clone(), target.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = forward(conn, &target, &http, &state).await;
                });
            }
        });
        Proxy { url, driven }
    }

    /// A handle for the conformance kit's `drive_state` closure.
    pub fn driver(&self) -> Arc<Mutex<Option<String>>> {
        self.driven.clone()
    }
}

async fn forward(mut conn: tokio::net::TcpStream, target: &str, http: &reqwest::Client, state: &Mutex<Option<String>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or("GET").to_owned(), first.next().unwrap_or("/").to_owned());
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..].to_vec();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let is_get_job = method == reqwest::Method::GET && path.starts_with("/api/jobs/") && path.trim_end_matches('/') != "/api/jobs" && !path.ends_with("/logs");
    let mut request = http.request(method, format!("{target}{path}")).header("content-type", "application/json").body(body);
    // The agent's credentials go on to Ray (a secured head checks them).
    if let Some(auth) = header("authorization") {
        request = request.header("authorization", auth);
    }
    let answer = request.send().await;
    let (status, mut text) = match answer {
        Ok(r) => (r.status().as_u16(), r.bytes().await.map(|b| b.to_vec()).unwrap_or_default()),
        Err(_) => (502, b"proxy: Ray unreachable".to_vec()),
    };
    let driven = state.lock().map(|s| s.clone()).unwrap_or_default();
    if let (true, 200, Some(driven)) = (is_get_job, status, driven) {
        if let Ok(mut job) = serde_json::from_slice::<Value>(&text) {
            let (status, error_type) = match driven.split_once('/') {
                Some((s, e)) => (s.to_owned(), Value::String(e.to_owned())),
                None => (driven.clone(), Value::Null),
            };
            job["status"] = Value::String(status);
            job["error_type"] = error_type;
            text = serde_json::to_vec(&job).unwrap_or_default();
        }
    }
    let reply = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", text.len());
    conn.write_all(reply.as_bytes()).await?;
    conn.write_all(&text).await?;
    conn.shutdown().await
}

/// A `ray` template as flytekitplugins-ray writes it (`RayJob` as camelCase JSON in `custom`),
/// whose container runs `python -c <code>` (the head's PATH starts with the Ray virtualenv).
pub fn conformance_template(code: &str) -> tern_agent_api::core::TaskTemplate {
    use tern_agent_api::core;
    let runtime_env = "env_vars:\n  TERN_RUNTIME_ENV: yaml\n";
    let custom = serde_json::json!({
        "rayCluster": {"headGroupSpec": {"rayStartParams": {"num-cpus": "1"}}, "workerGroupSpec": [{"groupName": "g", "replicas": 1.0}]},
        "runtimeEnvYaml": runtime_env,
        "shutdownAfterJobFinishes": true,
        "ttlSecondsAfterFinished": 3600.0,
    });
    core::TaskTemplate {
        r#type: "ray".into(),
        custom: Some(tern_type_transformers::structs::json_to_struct(custom.as_object().expect("an object"))),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: vec!["python".into(), "-c".into(), code.into()],
            env: vec![core::KeyValuePair { key: "TERN_CONFORMANCE".into(), value: "1".into() }],
            ..Default::default()
        })),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

pub const OK_PY: &str = "import os; print('tern-ok', os.environ['TERN_CONFORMANCE'], os.environ['TERN_RUNTIME_ENV'])";
pub const FAIL_PY: &str = "import sys; print('tern-fail: exiting 3', flush=True); sys.exit(3)";
pub const SLOW_PY: &str = "import time; print('tern-slow', flush=True); time.sleep(120)";

/// The conformance kit's case against `head`, shared by the in-process run
/// (agents/ray/tests/conformance.rs) and the gRPC one (gateway/tests/ray_conformance.rs): jobs
/// counted at the head, states driven through `proxy` (which the agent must be pointed at). The
/// caller binds the agent.
pub fn conformance_case(head: &RayHead, proxy: &Proxy) -> tern_agent_api::testkit::Case {
    use tern_agent_api::core::LiteralMap;
    let counter = head.remote();
    let driver = proxy.driver();
    tern_agent_api::testkit::Case::new(conformance_template(OK_PY), LiteralMap::default())
        // Exits 3: FAILED/JOB_ENTRYPOINT_COMMAND_ERROR → FAILED with TERN-R007.
        .failing(conformance_template(FAIL_PY), LiteralMap::default())
        // Sleeps 120 s: still RUNNING when deleted; Ray stops it (STOPPED → ABORTED).
        .long_running(conformance_template(SLOW_PY), LiteralMap::default())
        .count_jobs(move || {
            let c = counter.clone();
            async move { c.jobs().await.len() as u64 }
        })
        .drive_state(move |state| {
            if let Ok(mut d) = driver.lock() {
                *d = Some(state);
            }
            async {}
        })
        .poll_interval(Duration::from_millis(200))
        .settle(Duration::from_millis(1000))
        .poll_timeout(Duration::from_secs(60))
}
