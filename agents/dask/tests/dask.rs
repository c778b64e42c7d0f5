//! The Dask agent against real `distributed` (`$TERN_DASK_PYTHON`): every state of its table produced for
//! real, a repeated create after a restart attaching to the running job, DeleteTask killing the job's whole
//! process tree, clusters sized from the DaskJob, a configured scheduler, secrets by reference, logs.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tern_agent_api::prelude::*;
use tern_agent_dask::codes;
use tern_agent_dask::jobs::{job_id, DaskJobDir, JobDir};
use tern_agent_dask::procs::job_processes;
use tern_agent_dask::{DaskAgent, DaskSettings};

/// An address nothing listens on: for tasks that never reach a scheduler (no cluster is started).
const NO_SCHEDULER: &str = "tcp://127.0.0.1:9";

struct Env {
    state: tempfile::TempDir,
    store: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { state: tempfile::tempdir().unwrap(), store: tempfile::tempdir().unwrap() }
    }

    fn ctx(&self, key: &str) -> TaskContext {
        let mut ctx = AgentServices::local(self.store.path()).task_context(format!("runs/{key}"), None, None);
        ctx.idempotency_key = Some(IdempotencyKey::from_string(key));
        ctx
    }

    fn jobs(&self) -> std::path::PathBuf {
        self.state.path().join("jobs")
    }
}

fn agent(settings: DaskSettings) -> DaskAgent {
    DaskAgent::new(settings).unwrap()
}

fn request(template: core::TaskTemplate) -> TaskRequest {
    TaskRequest { template: Box::new(template), inputs: core::LiteralMap::default() }
}

async fn wait_for(agent: &DaskAgent, ctx: &TaskContext, meta: &ResourceMeta, done: impl Fn(&TaskStatus) -> bool) -> TaskStatus {
    let started = Instant::now();
    loop {
        let status = agent.get(ctx, meta).await.unwrap();
        if done(&status) {
            return status;
        }
        assert!(!status.is_terminal(), "ended early: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(90), "still {:?} after 90 s: {}", status.phase, status.message);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finish(agent: &DaskAgent, ctx: &TaskContext, meta: &ResourceMeta) -> TaskStatus {
    wait_for(agent, ctx, meta, TaskStatus::is_terminal).await
}

async fn log_text(agent: &DaskAgent, ctx: &TaskContext, meta: &ResourceMeta) -> String {
    let page = agent.logs(ctx, meta, 0, "").await.unwrap();
    page.lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>().join("\n")
}

/// Creates the task under `key` and waits for its end: its status and its logs.
async fn run(env: &Env, agent: &DaskAgent, key: &str, template: core::TaskTemplate) -> (TaskStatus, String) {
    let ctx = env.ctx(key);
    let meta = agent.create(&ctx, request(template)).await.unwrap();
    let status = finish(agent, &ctx, &meta).await;
    let logs = log_text(agent, &ctx, &meta).await;
    (status, logs)
}

fn code(status: &TaskStatus) -> &str {
    status.error.as_ref().map(|e| e.code.as_ref()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_after_a_restart_attaches_to_the_running_job() {
    let Some(python) = support::python("a_repeated_create_after_a_restart_attaches_to_the_running_job") else { return };
    let env = Env::new();
    let runs = env.state.path().join("runs.txt");
    let script = format!("import time\ntime.sleep(3)\n{}", support::counted_script(&runs));
    let template = support::template(&python, &script, support::default_job());
    let ctx = env.ctx("restart-key");

    let first = agent(support::settings(&python, env.state.path(), None));
    let meta = first.create(&ctx, request(template.clone())).await.unwrap();
    let running = wait_for(&first, &ctx, &meta, |s| s.phase == Phase::Running).await;
    assert!(running.log_links.iter().any(|l| l.uri.starts_with("http://127.0.0.1:")), "{running:?}");
    // The gateway restarts: a new agent, nothing in memory, the same state directory.
    drop(first);
    let second = agent(support::settings(&python, env.state.path(), None));
    let again = second.create(&ctx, request(template)).await.unwrap();
    assert_eq!(again.as_bytes(), meta.as_bytes(), "the same job's handle");
    // Attaching needs nothing from the template (nor the secrets): the job exists.
    let bare = second.create(&ctx, request(core::TaskTemplate { r#type: "dask".into(), ..Default::default() })).await.unwrap();
    assert_eq!(bare.as_bytes(), meta.as_bytes());
    let done = finish(&second, &ctx, &meta).await;
    assert_eq!(done.phase, Phase::Succeeded, "{done:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(support::lines(&runs), 1, "one job ran");
    assert_eq!(std::fs::read_dir(env.jobs()).unwrap().count(), 1, "one job recorded");
    let logs = log_text(&second, &ctx, &meta).await;
    assert!(logs.contains("tern-dask-ok") && logs.contains("[dask scheduler]"), "{logs}");
    // The cluster is gone with the job.
    wait_gone(&marker(&env, "restart-key")).await;
}

/// The value of the marker variable every process of the job `key` carries.
fn marker(env: &Env, key: &str) -> String {
    JobDir::open(&env.jobs(), &job_id(key)).unwrap().marker()
}

async fn wait_gone(job: &str) {
    let started = Instant::now();
    while !job_processes(job).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(15), "processes of job {job} left: {:?}", job_processes(job));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_kills_the_job_its_cluster_and_what_it_started() {
    let Some(python) = support::python("delete_kills_the_job_its_cluster_and_what_it_started") else { return };
    let env = Env::new();
    // The command starts a process in a session of its own (out of the job's process group), then sleeps.
    let script = "import subprocess, time\nsubprocess.Popen(['sleep', '600'], start_new_session=True)\nprint('started', flush=True)\ntime.sleep(600)\n";
    let agent = agent(support::settings(&python, env.state.path(), None));
    let ctx = env.ctx("delete-key");
    let meta = agent.create(&ctx, request(support::template(&python, script, support::default_job()))).await.unwrap();
    wait_for(&agent, &ctx, &meta, |s| s.phase == Phase::Running).await;
    let id = marker(&env, "delete-key");
    let started = Instant::now();
    while !log_text(&agent, &ctx, &meta).await.contains("started") {
        assert!(started.elapsed() < Duration::from_secs(30), "the command did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = job_processes(&id);
    // sh, the scheduler (and its subshell), the worker (subshell, nanny, worker), the command, its sleep.
    assert!(before.len() >= 6, "{before:?}");
    agent.delete(&ctx, &meta).await.unwrap();
    let status = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(status.phase, Phase::Aborted, "{status:?}");
    wait_gone(&id).await;
    agent.delete(&ctx, &meta).await.unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_died_while_the_gateway_was_down_is_lost() {
    let Some(python) = support::python("a_job_that_died_while_the_gateway_was_down_is_lost") else { return };
    let env = Env::new();
    let settings = support::settings(&python, env.state.path(), Some(NO_SCHEDULER.into()));
    let first = agent(settings.clone());
    let ctx = env.ctx("lost-key");
    let meta = first.create(&ctx, request(support::template(&python, support::SLOW_SCRIPT, support::default_job()))).await.unwrap();
    wait_for(&first, &ctx, &meta, |s| s.phase == Phase::Running).await;
    drop(first);
    let id = marker(&env, "lost-key");
    let pid = JobDir::open(&env.jobs(), &job_id("lost-key")).unwrap().pid().unwrap();
    assert!(Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]).status().unwrap().success());
    wait_gone(&id).await;
    let second = agent(settings);
    let status = second.get(&ctx, &meta).await.unwrap();
    assert_eq!(status.phase, Phase::RetryableFailed, "{status:?}");
    assert_eq!(code(&status), codes::JOB_LOST, "{status:?}");
    assert!(status.message.contains("LOST"), "{}", status.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_cluster_is_sized_from_the_dask_job() {
    let Some(python) = support::python("the_local_cluster_is_sized_from_the_dask_job") else { return };
    let env = Env::new();
    let agent = agent(support::settings(&python, env.state.path(), None));
    let job = json!({"scheduler": {"resources": {}}, "workers": {"numberOfWorkers": 2.0, "resources": {
        "requests": [{"name": "CPU", "value": "500m"}],
        "limits": [{"name": "CPU", "value": "2"}, {"name": "MEMORY", "value": "600Mi"}]}}});
    let script = "from distributed import Client\nwith Client() as c:\n    \
                  sizes = c.run(lambda dask_worker: (dask_worker.state.nthreads, dask_worker.memory_manager.memory_limit))\n\
                  print('sizes', sorted(sizes.values()))\n";
    let ctx = env.ctx("sized-key");
    let meta = agent.create(&ctx, request(support::template(&python, script, job))).await.unwrap();
    let starting = wait_for(&agent, &ctx, &meta, |s| s.message.contains("STARTING_CLUSTER")).await;
    assert_eq!(starting.phase, Phase::Initializing, "{starting:?}");
    let status = finish(&agent, &ctx, &meta).await;
    let logs = log_text(&agent, &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}\n{logs}");
    assert!(logs.contains("sizes [(2, 629145600), (2, 629145600)]"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_scheduler_is_used_and_secrets_arrive_by_reference() {
    let Some(python) = support::python("a_configured_scheduler_is_used_and_secrets_arrive_by_reference") else { return };
    let cluster = support::Cluster::start(&python);
    let env = Env::new();
    let secret_file = env.state.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-value\n").unwrap();
    let mut settings = support::settings(&python, env.state.path(), Some(cluster.address.clone()));
    settings.dashboard_url = Some("http://127.0.0.1:8787/status".into());
    settings.secret_env.insert("TERN_TEST_TOKEN".into(), format!("file:{}", secret_file.display()).parse().unwrap());
    let agent = agent(settings);
    let script = "import os\nfrom distributed import Client\nwith Client() as c:\n    print('sum', c.submit(sum, [2, 3]).result())\n\
                  print('address', os.environ['DASK_SCHEDULER_ADDRESS'])\nprint('token ok', os.environ['TERN_TEST_TOKEN'] == 's3cr3t-value')\n";
    let ctx = env.ctx("external-key");
    let meta = agent.create(&ctx, request(support::template(&python, script, support::default_job()))).await.unwrap();
    let status = finish(&agent, &ctx, &meta).await;
    let logs = log_text(&agent, &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}\n{logs}");
    assert_eq!(status.log_links.first().map(|l| l.uri.as_str()), Some("http://127.0.0.1:8787/status"), "{status:?}");
    assert!(logs.contains("sum 5") && logs.contains(&format!("address {}", cluster.address)) && logs.contains("token ok True"), "{logs}");
    assert!(!logs.contains("[dask scheduler]"), "no local cluster was started: {logs}");
    let dir = JobDir::open(&env.jobs(), &job_id("external-key")).unwrap();
    let record = std::fs::read_to_string(dir.file("record.json")).unwrap();
    assert!(!record.contains("s3cr3t") && !String::from_utf8_lossy(meta.as_bytes()).contains("s3cr3t"), "{record}");
    assert!(cluster.log("scheduler.log").contains("Receive client connection"), "the task reached the standing scheduler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_explicit_with_stable_codes() {
    let Some(python) = support::python("failures_are_explicit_with_stable_codes") else { return };
    let env = Env::new();
    let external = agent(support::settings(&python, env.state.path(), Some(NO_SCHEDULER.into())));
    // EXITED_N: the user's failure, with the end of stderr.
    let (status, logs) = run(&env, &external, "exit-3", support::template(&python, support::FAIL_SCRIPT, support::default_job())).await;
    assert_eq!((status.phase, code(&status)), (Phase::Failed, codes::TASK_FAILED), "{status:?}");
    assert!(status.message.contains("exited with code 3") && status.message.contains("about to exit 3"), "{}", status.message);
    assert!(logs.contains("tern-fail: starting") && logs.contains("[stderr] tern-fail: about to exit 3"), "{logs}");

    // A program that does not exist: EXITED_N (127), saying so.
    let mut missing = support::template(&python, "", support::default_job());
    if let Some(core::task_template::Target::Container(c)) = missing.target.as_mut() {
        c.args = vec!["/nonexistent/tern-program".into()];
    }
    let (status, _) = run(&env, &external, "missing", missing).await;
    assert_eq!((status.phase, code(&status)), (Phase::Failed, codes::TASK_FAILED), "{status:?}");
    assert!(status.message.contains("127") && status.message.contains("not found"), "{}", status.message);

    // Outputs declared but never written: the user's failure.
    let mut declares = support::template(&python, "print('no outputs')", support::default_job());
    let int = core::LiteralType { r#type: Some(core::literal_type::Type::Simple(core::SimpleType::Integer as i32)), ..Default::default() };
    declares.interface = Some(core::TypedInterface {
        inputs: None,
        outputs: Some(core::VariableMap {
            variables: [("o0".to_owned(), core::Variable { r#type: Some(int), ..Default::default() })].into(),
        }),
    });
    let (status, _) = run(&env, &external, "no-outputs", declares).await;
    assert_eq!((status.phase, code(&status)), (Phase::Failed, codes::NO_OUTPUTS), "{status:?}");

    // CLUSTER_FAILED: the platform's, retryable, with the scheduler's own words.
    let broken = agent(support::settings(Path::new("/nonexistent/python3"), env.state.path(), None));
    let (status, _) = run(&env, &broken, "no-cluster", support::template(&python, "print(1)", support::default_job())).await;
    assert_eq!((status.phase, code(&status)), (Phase::RetryableFailed, codes::CLUSTER_FAILED), "{status:?}");
    assert!(status.message.contains("scheduler exited"), "{}", status.message);

    // Refused at create: nothing is claimed or started.
    let ctx = env.ctx("refused");
    let too_many = json!({"workers": {"numberOfWorkers": 9.0}});
    let e = external.create(&ctx, request(support::template(&python, "", too_many))).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.grpc_code()), (codes::TOO_LARGE, tonic::Code::InvalidArgument), "{e}");
    let e = external.create(&ctx, request(core::TaskTemplate { r#type: "dask".into(), ..Default::default() })).await.unwrap_err();
    assert_eq!(e.code, codes::BAD_TEMPLATE, "{e}");
    assert!(JobDir::open(&env.jobs(), &job_id("refused")).is_none());

    // Unknown handles: NOT_FOUND for get and logs; delete tolerates them.
    let unknown = ResourceMeta::encode(&json!({"job": job_id("nobody")})).unwrap();
    let e = external.get(&ctx, &unknown).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.grpc_code()), (codes::JOB_NOT_FOUND, tonic::Code::NotFound), "{e}");
    external.delete(&ctx, &unknown).await.unwrap();
    let traversal = ResourceMeta::encode(&json!({"job": "../../../etc"})).unwrap();
    assert_eq!(external.get(&ctx, &traversal).await.unwrap_err().grpc_code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_record_is_the_explicit_retryable_outcome() {
    let Some(python) = support::python("an_unknown_record_is_the_explicit_retryable_outcome") else { return };
    let env = Env::new();
    let agent = agent(support::settings(&python, env.state.path(), Some(NO_SCHEDULER.into())));
    let ctx = env.ctx("odd-record");
    let meta = agent.create(&ctx, request(support::template(&python, "print(1)", support::default_job()))).await.unwrap();
    finish(&agent, &ctx, &meta).await;
    // A record this agent does not know (a newer agent's, or a damaged file).
    let dir = JobDir::open(&env.jobs(), &job_id("odd-record")).unwrap();
    dir.write("exit", b"paused 5\n").unwrap();
    let status = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!((status.phase, code(&status)), (Phase::RetryableFailed, tern_agent_api::error::codes::UNKNOWN_BACKEND_STATE), "{status:?}");
    assert!(status.message.contains("paused 5"), "{}", status.message);
}
