//! The real peer for the Spark agent's tests: a Spark standalone master (REST submission server
//! on) and one worker with 2 cores, from the pyspark 4.3.0 wheel (`spark-class`, Java 17 of the
//! machine), started on free ports with their own directories, stopped when dropped. Start it
//! once per test binary (about 10 s).
//!
//! The python is `$TERN_SPARK_PYTHON`, else `$TERN_PYTHON` (the main test virtualenv, whose
//! `tests/interop/requirements.txt` pins pyspark 4.3.0 and flytekit). Without either a test
//! prints why and passes, except under `CI=true`, where a missing peer is a failure.
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The python with pyspark, or `None` (skip; a panic under `CI=true`).
pub fn python(test: &str) -> Option<PathBuf> {
    let missing = |why: String| {
        if ci() {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!("SKIPPED {test}: {why}; scripts/test.sh sets TERN_SPARK_PYTHON (a virtualenv with pyspark 4.3.0)");
        None
    };
    let var = ["TERN_SPARK_PYTHON", "TERN_PYTHON"].into_iter().find_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()));
    let Some(python) = var.map(PathBuf::from) else {
        return missing("neither TERN_SPARK_PYTHON nor TERN_PYTHON is set".into());
    };
    if !python.is_file() {
        return missing(format!("{} does not exist", python.display()));
    }
    let probe = Command::new(&python).args(["-c", "import pyspark, os; print(os.path.dirname(pyspark.__file__))"]).output();
    match probe {
        Ok(o) if o.status.success() => Some(python),
        _ => missing(format!("{} cannot import pyspark", python.display())),
    }
}

/// `SPARK_HOME` of the python's pyspark.
pub fn spark_home(python: &Path) -> PathBuf {
    let o = Command::new(python).args(["-c", "import pyspark, os; print(os.path.dirname(pyspark.__file__))"]).output().unwrap();
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Standalone {
    master: Child,
    worker: Child,
    pub python: PathBuf,
    pub rest_url: String,
    pub master_url: String,
    pub ui_url: String,
    pub work_dir: PathBuf,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        // Drivers and executors run in the worker's process group.
        for child in [&mut self.worker, &mut self.master] {
            let _ = Command::new("kill").args(["-s", "TERM", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spark_class(python: &Path, home: &Path, log: &Path, args: &[String]) -> Child {
    let bin = python.parent().unwrap().join("spark-class");
    let program = if bin.is_file() { bin } else { home.join("bin").join("spark-class") };
    let log = std::fs::File::create(log).unwrap();
    Command::new(&program)
        .args(args)
        .env("SPARK_HOME", home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", python)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

/// Starts the master and a 2-core worker, or explains why not (`None`: skip).
pub async fn start(test: &str) -> Option<Standalone> {
    let python = python(test)?;
    let home = spark_home(&python);
    let dir = tempfile::tempdir().unwrap();
    let (port, ui, rest, wui) = (free_port(), free_port(), free_port(), free_port());
    let conf = dir.path().join("spark.conf");
    std::fs::write(
        &conf,
        format!("spark.master.rest.enabled true\nspark.master.rest.host 127.0.0.1\nspark.master.rest.port {rest}\nspark.ui.enabled false\n"),
    )
    .unwrap();
    let work_dir = dir.path().join("work");
    std::fs::create_dir_all(&work_dir).unwrap();
    let s = |x: &str| x.to_owned();
    let master = spark_class(
        &python,
        &home,
        &dir.path().join("master.log"),
        &[s("org.apache.spark.deploy.master.Master"), s("--host"), s("127.0.0.1"), s("--port"), port.to_string(), s("--webui-port"), ui.to_string(), s("--properties-file"), conf.display().to_string()],
    );
    let master_url = format!("spark://127.0.0.1:{port}");
    let worker = spark_class(
        &python,
        &home,
        &dir.path().join("worker.log"),
        &[
            s("org.apache.spark.deploy.worker.Worker"),
            master_url.clone(),
            s("--host"),
            s("127.0.0.1"),
            s("--cores"),
            s("2"),
            s("--memory"),
            s("2g"),
            s("--webui-port"),
            wui.to_string(),
            s("--work-dir"),
            work_dir.display().to_string(),
            s("--properties-file"),
            conf.display().to_string(),
        ],
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut peer = Standalone {
        master,
        worker,
        python,
        rest_url: format!("http://127.0.0.1:{rest}"),
        master_url,
        ui_url: format!("http://127.0.0.1:{ui}"),
        work_dir,
        dir,
        http,
    };
    let started = Instant::now();
    loop {
        let rest_up = peer.http.get(format!("{}/v1/submissions/status/driver-0-0", peer.rest_url)).send().await.is_ok();
        if rest_up && peer.master_json().await.map(|j| j["aliveworkers"].as_u64().unwrap_or(0)).unwrap_or(0) >= 1 {
            break;
        }
        if let Ok(Some(status)) = peer.master.try_wait() {
            panic!("the Spark master exited ({status}): {}", peer.logs());
        }
        assert!(started.elapsed() < Duration::from_secs(90), "Spark standalone not ready within 90 s: {}", peer.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("Spark standalone ready in {:?}", started.elapsed());
    Some(peer)
}

impl Standalone {
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("--- master.log\n{}\n--- worker.log\n{}", read("master.log"), read("worker.log"))
    }

    async fn master_json(&self) -> Option<Value> {
        self.http.get(format!("{}/json/", self.ui_url)).send().await.ok()?.json().await.ok()
    }

    /// A cheap handle for closures.
    pub fn remote(&self) -> Remote {
        Remote { ui_url: self.ui_url.clone(), http: self.http.clone() }
    }

    /// Writes a script into the peer's directory; its path.
    pub fn script(&self, name: &str, source: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, source).unwrap();
        p
    }
}

/// The master's view, for counting drivers.
#[derive(Clone)]
pub struct Remote {
    ui_url: String,
    http: reqwest::Client,
}

impl Remote {
    /// Every driver the master has (active and completed): the real count of submissions.
    pub async fn drivers(&self) -> Vec<Value> {
        let j: Value = self.http.get(format!("{}/json/", self.ui_url)).send().await.unwrap().json().await.unwrap();
        let mut all = j["activedrivers"].as_array().cloned().unwrap_or_default();
        all.extend(j["completeddrivers"].as_array().cloned().unwrap_or_default());
        all
    }

    pub async fn count_drivers(&self) -> u64 {
        self.drivers().await.len() as u64
    }
}

/// Scripts the tests run as applications (plain Python: PythonRunner runs them as drivers).
pub const OK_PY: &str = "import sys\nprint('tern-ok', sys.argv[1:], flush=True)\n";
pub const FAIL_PY: &str = "import sys\nprint('tern-fail: about to exit 3', file=sys.stderr, flush=True)\nsys.exit(3)\n";
pub const SLOW_PY: &str = "import sys, time\nprint('tern-slow', flush=True)\ntime.sleep(float(sys.argv[-1]) if len(sys.argv) > 1 else 60)\n";

/// A `Spark` task template as flytekit serializes it, running `script` with `args`.
pub fn spark_template(script: &Path, python: &Path, args: &[&str]) -> tern_agent_api::core::TaskTemplate {
    use tern_agent_api::core;
    let custom = json!({
        "mainApplicationFile": format!("local://{}", script.display()),
        "executorPath": python.display().to_string(),
        "sparkConf": {"spark.driver.memory": "512m", "spark.executor.memory": "512m", "spark.cores.max": "1"},
        "databricksConf": {},
    });
    core::TaskTemplate {
        r#type: "spark".into(),
        custom: Some(tern_type_transformers::structs::json_to_struct(custom.as_object().expect("an object"))),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:spark-1.16.31".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![core::KeyValuePair { key: "TERN_CONFORMANCE".into(), value: "1".into() }],
            ..Default::default()
        })),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

/// The `[agents.spark]` section for this peer (standalone mode).
pub fn section(peer: &Standalone) -> String {
    format!(
        "mode = \"standalone\"\nrest_url = \"{}\"\nmaster = \"{}\"\nui_url = \"{}\"\nworker_work_dir = \"{}\"\nenv = {{ SPARK_LOCAL_IP = \"127.0.0.1\" }}\n",
        peer.rest_url,
        peer.master_url,
        peer.ui_url,
        peer.work_dir.display()
    )
}

/// The conformance kit's case against the standalone peer, shared by the in-process run
/// (agents/spark/tests/conformance.rs) and the gRPC one (gateway/tests/spark_conformance.rs):
/// drivers counted at the master. The caller binds the agent.
pub fn conformance_case(peer: &Standalone) -> tern_agent_api::testkit::Case {
    use tern_agent_api::core::LiteralMap;
    let ok = peer.script("ok.py", OK_PY);
    let fail = peer.script("fail.py", FAIL_PY);
    let slow = peer.script("slow.py", SLOW_PY);
    let counter = peer.remote();
    tern_agent_api::testkit::Case::new(spark_template(&ok, &peer.python, &["a", "b"]), LiteralMap::default())
        // exits 3: FAILED → TERN-Z004
        .failing(spark_template(&fail, &peer.python, &[]), LiteralMap::default())
        // sleeps 120 s: RUNNING when deleted, then KILLED
        .long_running(spark_template(&slow, &peer.python, &["120"]), LiteralMap::default())
        .count_jobs(move || {
            let c = counter.clone();
            async move { c.count_drivers().await }
        })
        .poll_interval(Duration::from_millis(500))
        .settle(Duration::from_secs(1))
        .poll_timeout(Duration::from_secs(90))
}

/// Execution metadata as propeller sends it (execution `name`, node `n0`, attempt 0).
pub fn execution(name: &str) -> Box<tern_agent_api::admin::TaskExecutionMetadata> {
    use tern_agent_api::{admin, core};
    let id = core::TaskExecutionIdentifier {
        task_id: Some(core::Identifier { name: "wf.spark_task".into(), ..Default::default() }),
        node_execution_id: Some(core::NodeExecutionIdentifier {
            node_id: "n0".into(),
            execution_id: Some(core::WorkflowExecutionIdentifier { project: "p".into(), domain: "d".into(), name: name.into(), org: String::new() }),
        }),
        retry_attempt: 0,
    };
    Box::new(admin::TaskExecutionMetadata { task_execution_id: Some(id), ..Default::default() })
}

/// Polls the agent until the task is terminal (at most 120 s).
pub async fn wait_terminal(
    agent: &dyn tern_agent_api::prelude::AsyncAgent,
    ctx: &tern_agent_api::prelude::TaskContext,
    meta: &tern_agent_api::prelude::ResourceMeta,
) -> tern_agent_api::prelude::TaskStatus {
    let started = Instant::now();
    loop {
        let s = agent.get(ctx, meta).await.unwrap();
        if s.is_terminal() {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not terminal after 120 s: {s:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The agent with `config` on a local store at `store`, registered behind an in-process client (as `tern run`
/// serves it).
pub fn in_process(
    config: tern_agent_spark::SparkConfig,
    store: &Path,
) -> (std::sync::Arc<tern_agent_spark::SparkAgent>, tern_agent_api::prelude::AgentInit, std::sync::Arc<tern_agent_api::prelude::InProcessClient>) {
    use std::sync::Arc;
    use tern_agent_api::prelude::*;
    let init = AgentInit::for_tests(store);
    let agent = tern_agent_spark::agent_with(config, &init).unwrap();
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), init.services.clone()));
    (agent, init, client)
}
