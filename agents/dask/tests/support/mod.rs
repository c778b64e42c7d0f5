//! The real peer for the Dask agent's tests: `distributed` 2026.8.0 from `$TERN_DASK_PYTHON`
//! (scripts/test.sh exports it: the virtualenv built from `tests/interop/requirements-dask.txt`). The
//! agent starts its own ephemeral clusters with that python; [`Cluster`] is a standing scheduler +
//! worker for the tests of a configured `scheduler_address`. Without the variable a test prints why and
//! passes, except under `CI=true`, where a missing peer is a failure.
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_agent_api::core;
use tern_agent_dask::config::{DaskConfig, DaskSettings};
use tern_agent_dask::TASK_TYPE;

/// The python with `distributed`, or why there is none: `None` means skip (a failure under `CI=true`).
pub fn python(test: &str) -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let missing = |why: String| {
        if ci {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!(
            "SKIPPED {test}: {why}; scripts/test.sh sets TERN_DASK_PYTHON (a virtualenv with tests/interop/requirements-dask.txt)"
        );
        None
    };
    let Some(python) = std::env::var_os("TERN_DASK_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from) else {
        return missing("TERN_DASK_PYTHON is not set".into());
    };
    if !python.is_file() {
        return missing(format!("{} does not exist", python.display()));
    }
    Some(python)
}

/// Settings for tests: this python, job records under `state_dir`, the test process's PATH.
pub fn settings(python: &Path, state_dir: &Path, scheduler_address: Option<String>) -> DaskSettings {
    let config = DaskConfig {
        python: Some(python.to_owned()),
        state_dir: state_dir.to_owned(),
        scheduler_address,
        max_workers: Some(4),
        cluster_start_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    DaskSettings::resolve(&config, &tern_agent_api::factory::HostResources::detect())
}

/// A standing scheduler and one worker on free 127.0.0.1 ports, stopped when dropped.
pub struct Cluster {
    scheduler: Child,
    worker: Child,
    pub address: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in [&mut self.worker, &mut self.scheduler] {
            let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    pub fn start(python: &Path) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let spawn = |args: Vec<String>, name: &str| {
            let out = log(name);
            Command::new(python)
                .args(args)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()))
        };
        let scheduler_file = dir.path().join("scheduler.json").display().to_string();
        let scheduler = spawn(
            vec![
                "-m".into(),
                "distributed.cli.dask_scheduler".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--dashboard-address".into(),
                "127.0.0.1:0".into(),
                "--scheduler-file".into(),
                scheduler_file.clone(),
            ],
            "scheduler.log",
        );
        let worker = spawn(
            vec![
                "-m".into(),
                "distributed.cli.dask_worker".into(),
                "--scheduler-file".into(),
                scheduler_file,
                "--host".into(),
                "127.0.0.1".into(),
                "--nthreads".into(),
                "1".into(),
                "--memory-limit".into(),
                "1GiB".into(),
                "--dashboard-address".into(),
                "127.0.0.1:0".into(),
                "--local-directory".into(),
                dir.path().join("work").display().to_string(),
            ],
            "worker.log",
        );
        let cluster = Cluster { scheduler, worker, address: format!("tcp://127.0.0.1:{port}"), dir };
        let started = Instant::now();
        // Registered: the scheduler's log says so.
        while !cluster.log("scheduler.log").contains("Register worker") {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the dask cluster did not come up within 60 s:\n{}\n{}",
                cluster.log("scheduler.log"),
                cluster.log("worker.log")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

/// A Dask task as flytekitplugins-dask serializes it (DaskJob in `custom`), running `python -c script`.
pub fn template(python: &Path, script: &str, custom: Value) -> core::TaskTemplate {
    core::TaskTemplate {
        r#type: TASK_TYPE.into(),
        custom: Some(tern_type_transformers::structs::json_to_struct(custom.as_object().expect("an object"))),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: vec![python.display().to_string(), "-c".into(), script.into()],
            env: vec![core::KeyValuePair { key: "TERN_TEST".into(), value: "1".into() }],
            ..Default::default()
        })),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

/// flytekit's default DaskJob (one worker, no resources).
pub fn default_job() -> Value {
    serde_json::json!({"scheduler": {"resources": {}}, "workers": {"numberOfWorkers": 1.0, "resources": {}}})
}

/// A script that computes on the cluster `DASK_SCHEDULER_ADDRESS` names and then appends a line to `runs`.
pub fn counted_script(runs: &Path) -> String {
    format!(
        "from distributed import Client\n\
         with Client() as c:\n    assert c.submit(sum, [1, 2]).result() == 3\n\
         open({:?}, 'a').write('run\\n')\nprint('tern-dask-ok')\n",
        runs.display().to_string()
    )
}

pub const FAIL_SCRIPT: &str = "import sys\nprint('tern-fail: starting', flush=True)\nprint('tern-fail: about to exit 3', file=sys.stderr)\nsys.exit(3)\n";
pub const SLOW_SCRIPT: &str = "import time\nprint('tern-slow', flush=True)\ntime.sleep(600)\n";

pub fn lines(path: &Path) -> u64 {
    std::fs::read_to_string(path).map(|t| t.lines().count() as u64).unwrap_or(0)
}

/// The conformance kit's case, shared by the in-process run (agents/dask/tests/conformance.rs) and the gRPC
/// one (gateway/tests/dask_conformance.rs): every run of the successful task computes on the cluster and
/// appends a line to `runs`, so jobs are counted by what really ran. The caller binds the agent.
pub fn conformance_case(python: &Path, runs: &Path) -> tern_agent_api::testkit::Case {
    use tern_agent_api::core::LiteralMap;
    let counted = runs.to_owned();
    tern_agent_api::testkit::Case::new(template(python, &counted_script(runs), default_job()), LiteralMap::default())
        // Exits 3: EXITED_N → FAILED with TERN-Y003.
        .failing(template(python, FAIL_SCRIPT, default_job()), LiteralMap::default())
        // Sleeps 600 s: RUNNING when deleted, then KILLED → ABORTED.
        .long_running(template(python, SLOW_SCRIPT, default_job()), LiteralMap::default())
        .count_jobs(move || {
            let n = lines(&counted);
            async move { n }
        })
        .poll_interval(Duration::from_millis(200))
        .settle(Duration::from_millis(500))
        .poll_timeout(Duration::from_secs(90))
}
