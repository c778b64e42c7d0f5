//! The real emulator for the Databricks agent's tests: minilake 1.9.0, started by the test on
//! a free port with its own data directory (`tests/interop/peers/minilake_peer.py` serves
//! minilake's own app, plus the test-only `/_tern_test/drive` hook for states minilake cannot
//! produce), stopped when dropped.
//!
//! minilake's python is `$TERN_MINILAKE_PYTHON` (scripts/test.sh exports it: the virtualenv
//! built from `tests/interop/requirements-minilake.txt`). Without it a test prints why and
//! passes, except under `CI=true`, where a missing peer is a failure.
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

pub struct Minilake {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Minilake {
    fn drop(&mut self) {
        // Its job subprocesses run in its process group.
        let _ = Command::new("kill").args(["-s", "TERM", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/interop/peers/minilake_peer.py` of the repository holding this crate (this module is included from
/// other crates' tests too, e.g. the gateway's, so it is found by walking up).
fn peer_script() -> PathBuf {
    let rel = "tests/interop/peers/minilake_peer.py";
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start.ancestors().map(|d| d.join(rel)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{rel} not found above {}", start.display()))
}

/// Starts minilake, or explains why not: `None` means skip (a failure under `CI=true`).
pub async fn start(test: &str) -> Option<Minilake> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let missing = |why: String| {
        if ci {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!(
            "SKIPPED {test}: {why}; scripts/test.sh sets TERN_MINILAKE_PYTHON (a virtualenv with \
             tests/interop/requirements-minilake.txt)"
        );
        None
    };
    let Some(python) = std::env::var_os("TERN_MINILAKE_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from) else {
        return missing("TERN_MINILAKE_PYTHON is not set".into());
    };
    if !python.is_file() {
        return missing(format!("{} does not exist", python.display()));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("minilake.log")).unwrap();
    let child = Command::new(&python)
        .arg(peer_script())
        .arg("--port")
        .arg(port.to_string())
        .env("MINILAKE_JOB_EXECUTOR", "subprocess")
        .env("MINILAKE_NOTEBOOK", "0")
        .env("MINILAKE_SPARK_PREWARM", "0")
        .env("MINILAKE_DATA_DIR", dir.path().join("data"))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut m = Minilake { child, url, dir, http };
    let started = Instant::now();
    loop {
        if let Ok(r) = m.http.get(format!("{}/_minilake/health", m.url)).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = m.child.try_wait() {
            panic!("minilake exited ({status}) before serving: {}", m.log());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "minilake did not answer within 60 s: {}", m.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(m)
}

impl Minilake {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("minilake.log")).unwrap_or_default()
    }

    /// Imports a Python source file into the workspace (`POST /api/2.0/workspace/import`).
    pub async fn import(&self, path: &str, source: &str) {
        let content = base64::engine::general_purpose::STANDARD.encode(source);
        let r = self
            .http
            .post(format!("{}/api/2.0/workspace/import", self.url))
            .json(&json!({"path": path, "format": "SOURCE", "language": "PYTHON", "content": content, "overwrite": true}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "import {path}: {} {}", r.status(), r.text().await.unwrap_or_default());
    }

    /// Every run minilake holds (`GET /api/2.2/jobs/runs/list`): the real count of submissions
    /// that created a run.
    pub async fn runs(&self) -> Vec<Value> {
        let r: Value = self.http.get(format!("{}/api/2.2/jobs/runs/list", self.url)).send().await.unwrap().json().await.unwrap();
        r["runs"].as_array().cloned().unwrap_or_default()
    }

    pub async fn run(&self, run_id: u64) -> Value {
        self.http.get(format!("{}/api/2.2/jobs/runs/get?run_id={run_id}", self.url)).send().await.unwrap().json().await.unwrap()
    }

    /// From now on every submitted run reports `state` (`None`: minilake's own behaviour).
    pub async fn drive(&self, state: Option<&str>) {
        let r = self.http.post(format!("{}/_tern_test/drive", self.url)).json(&json!({"state": state})).send().await.unwrap();
        assert!(r.status().is_success(), "drive {state:?}: {}", r.status());
    }

    /// A cheap handle for closures (counting, driving).
    pub fn remote(&self) -> Remote {
        Remote { url: self.url.clone(), http: self.http.clone() }
    }
}

/// What closures handed to the conformance kit need: the URL and a client.
#[derive(Clone)]
pub struct Remote {
    url: String,
    http: reqwest::Client,
}

impl Remote {
    pub async fn count_runs(&self) -> u64 {
        let r: Value = self.http.get(format!("{}/api/2.2/jobs/runs/list", self.url)).send().await.unwrap().json().await.unwrap();
        r["runs"].as_array().map_or(0, |a| a.len() as u64)
    }

    pub async fn drive(&self, state: Option<&str>) {
        let r = self.http.post(format!("{}/_tern_test/drive", self.url)).json(&json!({"state": state})).send().await.unwrap();
        assert!(r.status().is_success(), "drive {state:?}: {}", r.status());
    }
}

/// Scripts the tests import into the workspace.
pub const OK_PY: &str = "import sys\nprint('tern-ok', sys.argv[1:])\n";
pub const FAIL_PY: &str = "import sys\nprint('tern-fail: starting', flush=True)\nprint('tern-fail: about to exit 3', file=sys.stderr)\nsys.exit(3)\n";
pub const SLOW_PY: &str = "import sys, time\nprint('tern-slow', flush=True)\ntime.sleep(float(sys.argv[-1]) if len(sys.argv) > 1 else 10)\n";

/// A `DatabricksV2` template (as flytekit serializes it) running `script` from the workspace.
pub fn conformance_template(script: &str, args: &[&str]) -> tern_agent_api::core::TaskTemplate {
    use tern_agent_api::core;
    let custom = json!({
        "databricksConf": {
            "run_name": "tern-conformance",
            "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m5.xlarge", "num_workers": 1.0},
            "python_file": script,
        },
        "sparkConf": {"spark.driver.memory": "512m"},
        "mainApplicationFile": "local:///usr/local/bin/entrypoint.py",
        "executorPath": "/usr/bin/python3",
        "applicationType": "PYTHON",
    });
    core::TaskTemplate {
        r#type: "databricks".into(),
        custom: Some(tern_type_transformers::structs::json_to_struct(custom.as_object().expect("an object"))),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![core::KeyValuePair { key: "TERN_CONFORMANCE".into(), value: "1".into() }],
            ..Default::default()
        })),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

/// The conformance kit's case against `minilake`, shared by the in-process run
/// (agents/databricks/tests/conformance.rs) and the gRPC one (gateway/tests/databricks_conformance.rs): imports
/// its scripts, counts runs at minilake, drives states with the peer's hook. The caller binds the agent.
pub async fn conformance_case(minilake: &Minilake) -> tern_agent_api::testkit::Case {
    use tern_agent_api::core::LiteralMap;
    minilake.import("/Shared/tern/ok.py", OK_PY).await;
    minilake.import("/Shared/tern/fail.py", FAIL_PY).await;
    minilake.import("/Shared/tern/slow.py", SLOW_PY).await;
    let (counter, driver) = (minilake.remote(), minilake.remote());
    tern_agent_api::testkit::Case::new(conformance_template("/Shared/tern/ok.py", &["a", "b"]), LiteralMap::default())
        // The script exits 3: TERMINATED/FAILED → FAILED with TERN-X009.
        .failing(conformance_template("/Shared/tern/fail.py", &[]), LiteralMap::default())
        // Sleeps 8 s: still RUNNING when deleted; minilake ends it CANCELED once the script exits.
        .long_running(conformance_template("/Shared/tern/slow.py", &["8"]), LiteralMap::default())
        .count_jobs(move || {
            let c = counter.clone();
            async move { c.count_runs().await }
        })
        .drive_state(move |state| {
            let d = driver.clone();
            async move { d.drive(Some(&state)).await }
        })
        .poll_interval(Duration::from_millis(200))
        .settle(Duration::from_millis(500))
        .poll_timeout(Duration::from_secs(60))
}
