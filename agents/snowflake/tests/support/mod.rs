//! The Snowflake emulator for the agent's tests: fakesnow 0.12.1's server behind the test-side
//! shim `tests/interop/peers/fakesnow_shim.py` (what it adds, and why, is in its docstring), started on a
//! free port per test and killed when dropped.
//!
//! Its Python is `$TERN_FAKESNOW_PYTHON`, else `${TERN_VENV}-fakesnow/bin/python` (scripts/test.sh
//! creates that virtualenv from tests/interop/requirements-fakesnow.txt). Without it a test prints
//! why and passes, except under `CI=true`, where a missing peer is a failure.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tern_agent_api::prelude::*;
use tern_agent_api::secrets::StaticSecrets;
use tern_agent_snowflake::{SnowflakeConfig, TASK_TYPE};
use tern_type_transformers::StructuredDataset;

pub const PASSWORD: &str = "s3cr3t-Pa55word-that-must-never-leak";

pub struct Emulator {
    child: Child,
    pub url: String,
    http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/interop/peers/fakesnow_shim.py` of the repository holding this crate (this module is included from
/// other crates' tests too, e.g. the gateway's, so it is found by walking up).
fn shim() -> PathBuf {
    let rel = "tests/interop/peers/fakesnow_shim.py";
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start.ancestors().map(|d| d.join(rel)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{rel} not found above {}", start.display()))
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TERN_FAKESNOW_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = std::env::var_os("TERN_VENV").filter(|p| !p.is_empty())?;
    let mut dir = venv.into_string().ok()?;
    dir.push_str("-fakesnow");
    Some(Path::new(&dir).join("bin/python"))
}

/// Starts the emulator, or explains why not: `None` means skip (a failure under `CI=true`).
pub async fn start(test: &str) -> Option<Emulator> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let missing = |why: String| {
        if ci {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!(
            "SKIPPED {test}: {why}; scripts/test.sh installs fakesnow, or set TERN_FAKESNOW_PYTHON to a python with \
             tests/interop/requirements-fakesnow.txt installed"
        );
        None
    };
    let Some(python) = python() else { return missing("neither TERN_FAKESNOW_PYTHON nor TERN_VENV is set".into()) };
    if !python.is_file() {
        return missing(format!("{} does not exist", python.display()));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fakesnow.log");
    let child = Command::new(&python)
        .arg(shim())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(dir.path())
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .stderr(std::fs::File::create(dir.path().join("fakesnow.err")).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot start {}: {e}", python.display()));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut emulator = Emulator { child, url: format!("http://127.0.0.1:{port}"), http, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = emulator.http.get(format!("{}/tern-test/requests", emulator.url)).send().await {
            if r.status().is_success() {
                return Some(emulator);
            }
        }
        if let Ok(Some(status)) = emulator.child.try_wait() {
            let err = std::fs::read_to_string(emulator.dir.path().join("fakesnow.err")).unwrap_or_default();
            panic!("{test}: the emulator exited ({status}) before answering:\n{err}");
        }
        assert!(Instant::now() < deadline, "{test}: the emulator did not answer within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Emulator {
    /// Every request the emulator received (logins, queries, status reads), oldest first.
    pub async fn requests(&self) -> Vec<Value> {
        let v: Value = self.http.get(format!("{}/tern-test/requests", self.url)).send().await.unwrap().json().await.unwrap();
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Asynchronous submissions of `sql` the emulator received.
    pub async fn submissions(&self, sql: &str) -> Vec<Value> {
        self.requests().await.into_iter().filter(|r| r["kind"] == "query" && r["async"] == true && r["sql"] == sql).collect()
    }

    /// Makes the monitoring endpoint report `status` for every query (`None`: fakesnow's own).
    pub async fn drive(&self, status: Option<&str>) {
        let r = self.http.post(format!("{}/tern-test/state", self.url)).json(&json!({"status": status})).send().await.unwrap();
        assert!(r.status().is_success());
    }

    /// `false`: fakesnow's synchronous answers to asynchronous submissions.
    pub async fn async_replies(&self, on: bool) {
        let r = self.http.post(format!("{}/tern-test/config", self.url)).json(&json!({"async_replies": on})).send().await.unwrap();
        assert!(r.status().is_success());
    }

    /// Runs setup SQL directly (not through the agent): a login and plain query requests.
    pub async fn sql(&self, statements: &[&str]) {
        let login: Value = self
            .http
            .post(format!("{}/session/v1/login-request", self.url))
            .json(&json!({"data": {"SESSION_PARAMETERS": {}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["data"]["token"].as_str().unwrap().to_owned();
        for sql in statements {
            let r: Value = self
                .http
                .post(format!("{}/queries/v1/query-request", self.url))
                .header("Authorization", format!("Snowflake Token=\"{token}\""))
                .json(&json!({"sqlText": sql, "sequenceId": 1}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["success"], true, "{sql}: {r}");
        }
        // What a test counts is what the agent sent, not this setup.
        let r = self.http.post(format!("{}/tern-test/reset", self.url)).send().await.unwrap();
        assert!(r.status().is_success());
    }

    /// Creates database `DB`, schema `DB.S` and table `DB.S.ORDERS` (3 rows).
    pub async fn seed(&self) {
        self.sql(&[
            "CREATE DATABASE IF NOT EXISTS DB",
            "CREATE SCHEMA IF NOT EXISTS DB.S",
            "CREATE TABLE IF NOT EXISTS DB.S.ORDERS (ID INT, REGION TEXT, AMOUNT NUMBER(10,2), CREATED_AT TIMESTAMP_NTZ)",
            "INSERT INTO DB.S.ORDERS VALUES (1, 'north', 10.50, '2024-01-01 10:00:00'), (2, 'south', 20.25, '2024-01-02 11:30:00'), \
             (3, 'north', 5.00, '2024-01-03 12:00:00')",
        ])
        .await;
    }

    /// The agent's settings for this emulator: password auth (from a file), no history lookup
    /// (fakesnow has no QUERY_HISTORY).
    pub fn config(&self) -> SnowflakeConfig {
        let pw = self.dir.path().join("password");
        std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
        SnowflakeConfig {
            endpoint: Some(self.url.clone()),
            password: Some(format!("file:{}", pw.display()).parse().unwrap()),
            history_lookup: false,
            ..Default::default()
        }
    }
}

/// flytekit's template: `config` = user/account/database/schema/warehouse, `sql.statement`.
pub fn template(sql: &str, inputs: &[(&str, core::LiteralType)], results: bool) -> core::TaskTemplate {
    let vars = |v: &[(&str, core::LiteralType)]| core::VariableMap {
        variables: v.iter().map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), ..Default::default() })).collect(),
    };
    let outputs: Vec<(&str, core::LiteralType)> =
        if results { vec![("results", StructuredDataset::literal_type_for(&[], ""))] } else { vec![] };
    core::TaskTemplate {
        r#type: TASK_TYPE.into(),
        id: Some(core::Identifier { resource_type: 1, project: "p".into(), domain: "d".into(), name: "sf.q".into(), version: "1".into(), org: String::new() }),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
        config: [("user", "TESTER"), ("account", "myorg-myaccount"), ("database", "DB"), ("schema", "S"), ("warehouse", "WH")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        interface: Some(core::TypedInterface { inputs: Some(vars(inputs)), outputs: Some(vars(&outputs)) }),
        ..Default::default()
    }
}

/// Propeller's execution metadata for `node`, attempt `attempt`, of execution `exec`.
pub fn execution(exec: &str, node: &str, attempt: u32) -> Box<admin::TaskExecutionMetadata> {
    Box::new(admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { resource_type: 1, project: "p".into(), domain: "d".into(), name: "sf.q".into(), version: "1".into(), org: String::new() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier { project: "p".into(), domain: "d".into(), name: exec.into(), org: String::new() }),
            }),
            retry_attempt: attempt,
        }),
        namespace: "p-d".into(),
        ..Default::default()
    })
}

/// Services with a local data store at `root` and no task secrets.
pub fn services(root: &Path) -> AgentServices {
    AgentServices::new(LocalDataStore::shared(root), Arc::new(StaticSecrets::new())).unwrap()
}

/// Polls `get` until a terminal phase (30 s at most).
pub async fn wait(agent: &dyn AsyncAgent, ctx: &TaskContext, meta: &ResourceMeta) -> TaskStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = agent.get(ctx, meta).await.unwrap_or_else(|e| panic!("GetTask failed: {e}"));
        if status.is_terminal() {
            return status;
        }
        assert!(Instant::now() < deadline, "still {:?} after 30 s: {}", status.phase, status.message);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}


/// The statement the conformance case's successful job runs (its submissions are counted).
pub const CONFORMANCE_SUCCESS: &str = "SELECT ID, REGION FROM ORDERS ORDER BY ID";

/// The conformance kit's case against this emulator, shared by the in-process run
/// (agents/snowflake/tests/conformance.rs) and the gRPC one (gateway/tests/snowflake_conformance.rs);
/// the caller binds the agent. Jobs are counted at the emulator, states driven there.
pub fn conformance_case(emu: Arc<Emulator>) -> tern_agent_api::testkit::Case {
    let (counted, driven) = (emu.clone(), emu);
    tern_agent_api::testkit::Case::new(template(CONFORMANCE_SUCCESS, &[], true), core::LiteralMap::default())
        // Snowflake rejects it: FAILED with TERN-F003 and Snowflake's code.
        .failing(template("SELECT NOPE FROM ORDERS", &[], false), core::LiteralMap::default())
        .count_jobs(move || {
            let emu = counted.clone();
            async move { emu.submissions(CONFORMANCE_SUCCESS).await.len() as u64 }
        })
        .drive_state(move |state| {
            let emu = driven.clone();
            async move { emu.drive(Some(&state)).await }
        })
        .poll_timeout(Duration::from_secs(30))
}
