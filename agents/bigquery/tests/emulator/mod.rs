//! The BigQuery emulator for these tests: crucible-emulator, started through
//! `tests/interop/peers/crucible_bigquery.py` with `$TERN_CRUCIBLE_PYTHON` (scripts/test.sh installs
//! it) on a free port, stopped when dropped. Without it a test is skipped with a message, and
//! fails under `CI=true`.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_bigquery::{AuthMode, BigQueryConfig};

pub struct Emulator {
    child: Child,
    pub port: u16,
    http: reqwest::Client,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/interop/peers/crucible_bigquery.py` of the repository holding this crate (included from other
/// crates' tests too, so found by walking up).
fn launcher() -> PathBuf {
    let rel = "tests/interop/peers/crucible_bigquery.py";
    let start = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    start.ancestors().map(|d| d.join(rel)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{rel} not found above {}", start.display()))
}

impl Emulator {
    /// The emulator, or `None` (skipped) when `$TERN_CRUCIBLE_PYTHON` is not set; under
    /// `CI=true` that is a failure.
    pub fn start() -> Option<Self> {
        let Some(python) = std::env::var_os("TERN_CRUCIBLE_PYTHON") else {
            let msg = "TERN_CRUCIBLE_PYTHON is not set: the BigQuery emulator (crucible-emulator) is missing; \
                       scripts/test.sh installs it";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        };
        let mut child = Command::new(python)
            .arg(launcher())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the BigQuery emulator");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("PORT ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => port,
            other => {
                let _ = child.kill();
                panic!("the BigQuery emulator did not report its port: {other:?}");
            }
        };
        // The socket listens before the port is printed: requests queue until uvicorn accepts them.
        Some(Self { child, port, http: reqwest::Client::new() })
    }

    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `[agents.bigquery]` pointed at this emulator, anonymous.
    pub fn config(&self) -> BigQueryConfig {
        BigQueryConfig { endpoint: self.root(), auth: AuthMode::Anonymous, ..Default::default() }
    }

    /// Jobs of `project` at the emulator (BigQuery's jobs.list).
    pub async fn count_jobs(&self, project: &str) -> u64 {
        let body: serde_json::Value = self
            .http
            .get(format!("{}/bigquery/v2/projects/{project}/jobs", self.root()))
            .send()
            .await
            .expect("jobs.list")
            .json()
            .await
            .expect("jobs.list JSON");
        body["jobs"].as_array().map(|j| j.len() as u64).unwrap_or(0)
    }

    /// The job as BigQuery's jobs.get answers it.
    pub async fn job(&self, project: &str, job_id: &str) -> serde_json::Value {
        self.http
            .get(format!("{}/bigquery/v2/projects/{project}/jobs/{job_id}", self.root()))
            .send()
            .await
            .expect("jobs.get")
            .json()
            .await
            .expect("jobs.get JSON")
    }

    /// Makes every job report `state` (`RUNNING`, `DONE:backendError`, …; `None` = its own).
    pub async fn drive(&self, state: Option<&str>) {
        self.http
            .post(format!("{}/_tern/state", self.root()))
            .json(&serde_json::json!({ "state": state }))
            .send()
            .await
            .expect("drive the emulator's state");
    }

    /// `{"inserts": n, "cancels": n}`: requests the emulator received.
    pub async fn stats(&self) -> serde_json::Value {
        self.http.get(format!("{}/_tern/stats", self.root())).send().await.unwrap().json().await.unwrap()
    }
}

/// An in-process client serving `agent`, its data store under `root`.
pub fn client(agent: Arc<dyn AsyncAgent>, root: &std::path::Path) -> Arc<InProcessClient> {
    let mut registry = AgentRegistry::new();
    registry.register_async(agent).unwrap();
    Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(root)))
}
