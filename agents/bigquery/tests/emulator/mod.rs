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

/// The project the conformance case's jobs run in (and are counted in).
pub const CONFORMANCE_PROJECT: &str = "tern-conformance";

fn conformance_template(sql: &str, with_inputs: bool) -> core::TaskTemplate {
    use tern_type_transformers::{FlyteType, StructuredDataset};
    let var = |t: core::LiteralType| core::Variable { r#type: Some(t), ..Default::default() };
    let inputs = with_inputs.then(|| core::VariableMap {
        variables: [("n".to_owned(), var(i64::literal_type())), ("label".to_owned(), var(String::literal_type()))].into(),
    });
    let outputs = core::VariableMap {
        variables: [("results".to_owned(), var(StructuredDataset::literal_type_for(&[], "")))].into(),
    };
    let custom = serde_json::json!({"ProjectID": CONFORMANCE_PROJECT, "Location": "US", "Domain": "development"});
    core::TaskTemplate {
        r#type: tern_agent_bigquery::TASK_TYPE.into(),
        interface: Some(core::TypedInterface { inputs, outputs: Some(outputs) }),
        custom: Some(tern_type_transformers::structs::json_to_struct(custom.as_object().expect("an object"))),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
        ..Default::default()
    }
}

/// The conformance kit's case against `emulator`, shared by the in-process run
/// (agents/bigquery/tests/conformance.rs) and the gRPC one (gateway/tests/bigquery_conformance.rs): jobs
/// counted with jobs.list, every state produced at the emulator. The caller binds the agent.
pub fn conformance_case(emulator: Arc<Emulator>) -> tern_agent_api::testkit::Case {
    use tern_type_transformers::LiteralMapBuilder;
    let inputs = LiteralMapBuilder::new()
        .with("n", &41i64)
        .and_then(|b| b.with("label", &"x".to_owned()))
        .expect("literals")
        .build();
    let (counter, driver) = (emulator.clone(), emulator);
    tern_agent_api::testkit::Case::new(conformance_template("SELECT @n + 1 AS answer, @label AS label", true), inputs)
        // BigQuery rejects the SQL: the job ends DONE with errorResult invalidQuery → FAILED.
        .failing(conformance_template("SELECT nope FROM", false), core::LiteralMap::default())
        // Reported RUNNING by the emulator until jobs.cancel (see crucible_bigquery.py).
        .long_running(conformance_template("SELECT 1 AS one /* TERN_HOLD */", false), core::LiteralMap::default())
        .count_jobs(move || {
            let e = counter.clone();
            async move { e.count_jobs(CONFORMANCE_PROJECT).await }
        })
        .drive_state(move |state| {
            let e = driver.clone();
            async move { e.drive(Some(&state)).await }
        })
        .poll_timeout(Duration::from_secs(30))
}
