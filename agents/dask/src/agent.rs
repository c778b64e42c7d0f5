//! The `dask` async agent: create claims the job's directory and starts its supervisor;
//! get, delete and logs read and act on that directory, so they work the same after a
//! gateway restart.
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tern_agent_api::command_result;
use tern_agent_api::local_process::{last, log_line, tail_lines, tail_message, Stream};
use tern_agent_api::prelude::*;

use crate::codes::{self, bad_template};
use tern_agent_api::error::codes::BAD_RESOURCE_META;
use crate::config::DaskSettings;
use crate::jobs::{self, job_id_for, jobs_root, Claim, DaskJobDir, JobDir, Launch, Record};
use crate::states::{self, JOB_STATES};
use crate::template::DaskTask;

pub const TASK_TYPE: &str = "dask";

/// flytekit's switch for a failing task to exit non-zero.
pub const FAIL_ON_ERROR: &str = "FLYTE_FAIL_ON_ERROR";

/// How many lines of stderr (or cluster logs) a failure message quotes.
const TAIL_LINES: usize = 20;
/// How much of each log file `GetTaskLogs` reads at most (its end).
const LOG_BYTES: u64 = 4 << 20;

/// The handle: the job's id (a hash of the idempotency key; its directory's name).
#[derive(Debug, Serialize, Deserialize)]
struct DaskHandle {
    job: String,
}

pub struct DaskAgent {
    settings: DaskSettings,
    root: PathBuf,
    /// When finished jobs' records were last cleaned up (at most hourly, by a create).
    cleaned: tern_agent_api::job_dir::Cleanup,
}


impl DaskAgent {
    /// The state directory is made absolute now and created at the first create.
    pub fn new(settings: DaskSettings) -> Result<Self, AgentError> {
        let state = std::path::absolute(&settings.state_dir).map_err(|e| {
            codes::state_dir(format!("cannot resolve the state directory {}: {e}", settings.state_dir.display()))
        })?;
        Ok(Self { root: jobs_root(&state), settings, cleaned: Default::default() })
    }

    /// Where this agent keeps its job records.
    pub fn jobs_dir(&self) -> &std::path::Path {
        &self.root
    }

    fn job(&self, meta: &ResourceMeta) -> Result<Option<JobDir>, AgentError> {
        let handle: DaskHandle = meta.decode()?;
        if !jobs::valid_id(&handle.job) {
            return Err(AgentError::invalid_argument(BAD_RESOURCE_META, "the handle's job is not a dask job id"));
        }
        Ok(JobDir::open(&self.root, &handle.job))
    }

    fn launch(&self, ctx: &TaskContext, task: &DaskTask) -> Result<Launch, AgentError> {
        let mut env = self.settings.inherited_env.clone();
        let mut set = |k: &str, v: String| {
            env.retain(|(name, _)| name != k);
            env.push((k.to_owned(), v));
        };
        for (k, v) in &task.env {
            set(k, v.clone());
        }
        // flytekit's pyflyte-execute then exits non-zero when the task raises (else it writes error.pb and exits 0),
        // as flytekit's own Databricks connector asks; a template's container.env may say otherwise.
        if !task.env.iter().any(|(k, _)| k == FAIL_ON_ERROR) {
            set(FAIL_ON_ERROR, "true".into());
        }
        for (name, reference) in &self.settings.secret_env {
            set(name, ctx.secrets().resolve(reference)?.expose().to_owned());
        }
        Ok(Launch {
            program: task.program.clone(),
            args: task.args.clone(),
            env,
            scheduler_address: self.settings.scheduler_address.clone(),
            python: self.settings.python.clone(),
            size: task.size.clone(),
            start_timeout: self.settings.cluster_start_timeout,
        })
    }

    /// The state of a job, from its files and the process table.
    fn state(&self, dir: &JobDir) -> (String, String) {
        if let Some(exit) = dir.read("exit") {
            return exit_state(dir, &exit);
        }
        if dir.file("killed").exists() {
            return (states::KILLED.into(), String::new());
        }
        // The supervisor writes its pid once it runs (with the job's marker in its environment, so the
        // check below cannot catch it between fork and exec).
        let alive = match dir.read("pid").and_then(|p| p.parse::<u32>().ok()) {
            Some(pid) => crate::procs::is_job_process(pid, &dir.marker()),
            None if dir.created_ago() < jobs::SPAWN_GRACE => return (states::STARTING.into(), String::new()),
            None => false,
        };
        if alive {
            return match dir.read("phase").as_deref() {
                None => (states::STARTING.into(), String::new()),
                Some("starting_cluster") => (states::STARTING_CLUSTER.into(), String::new()),
                Some("running") => (states::RUNNING.into(), String::new()),
                Some(other) => (format!("phase {other}"), String::new()),
            };
        }
        // It may have ended between the two looks.
        match dir.read("exit") {
            Some(exit) => exit_state(dir, &exit),
            None => (states::LOST.into(), "its supervisor process is gone and it recorded no exit".into()),
        }
    }

    async fn outputs(&self, ctx: &TaskContext, record: Option<&Record>) -> Result<TaskStatus, AgentError> {
        let prefix = record.map(|r| r.output_prefix.as_str()).filter(|p| !p.is_empty()).unwrap_or(&ctx.output_prefix);
        let declared = record.map(|r| r.outputs.as_slice()).unwrap_or_default();
        command_result::command_outputs(ctx, prefix, declared, codes::NO_OUTPUTS).await
    }

    /// The error flytekit's `pyflyte-execute` wrote to `<output_prefix>/error.pb` when the task raised.
    async fn flytekit_error(&self, ctx: &TaskContext, record: Option<&Record>) -> Option<AgentError> {
        let prefix = record.map(|r| r.output_prefix.as_str()).filter(|p| !p.is_empty()).unwrap_or(&ctx.output_prefix);
        let program = record.map(|r| r.program.as_str()).unwrap_or("the command");
        command_result::flytekit_error(ctx, prefix, program, codes::TASK_FAILED).await
    }

    /// The configured cluster's dashboard (`dashboard_url`), or a running local cluster's.
    fn log_links(&self, dir: &JobDir, record: Option<&Record>, running: bool) -> Vec<core::TaskLog> {
        if record.is_some_and(|r| r.mode == "external") {
            return self
                .settings
                .dashboard_url
                .iter()
                .map(|uri| core::TaskLog { uri: uri.clone(), name: "Dask dashboard".into(), ..Default::default() })
                .collect();
        }
        if !running {
            return Vec::new();
        }
        let Some(info) = std::fs::read(dir.file("scheduler.json")).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return Vec::new();
        };
        let Some(port) = info.pointer("/services/dashboard").and_then(Value::as_u64) else { return Vec::new() };
        vec![core::TaskLog {
            uri: format!("http://127.0.0.1:{port}/status"),
            name: "Dask dashboard (local cluster)".into(),
            ..Default::default()
        }]
    }
}

/// The state an `exit` record names, with its details.
fn exit_state(dir: &JobDir, exit: &str) -> (String, String) {
    let program = dir.record().map(|r| r.program).unwrap_or_else(|| "the command".into());
    let (kind, rest) = exit.split_once(' ').unwrap_or((exit, ""));
    match (kind, rest.trim().parse::<i64>()) {
        ("exit", Ok(0)) => (states::EXITED_0.into(), String::new()),
        ("exit", Ok(code)) => (states::EXITED_N.into(), command_result::exit_detail(&dir.path, &program, code, TAIL_LINES)),
        ("cluster", _) => {
            let mut detail = rest.trim().to_owned();
            for (file, what) in [("scheduler.log", "the scheduler's log"), ("worker.log", "the workers' log")] {
                detail.push_str(&tail_message(&dir.file(file), what, TAIL_LINES / 2));
            }
            (states::CLUSTER_FAILED_STATE.into(), detail)
        }
        ("spawn", _) => (states::SPAWN_FAILED_STATE.into(), rest.trim().to_owned()),
        _ => (format!("exit record {exit:?}"), String::new()),
    }
}

#[async_trait]
impl AsyncAgent for DaskAgent {
    fn name(&self) -> &str {
        TASK_TYPE
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        if ctx.output_prefix.is_empty() {
            return Err(bad_template("a dask task needs an output_prefix (flytekit's pyflyte-execute writes its outputs there)"));
        }
        let id = job_id_for(ctx.idempotency_key.as_ref());
        let meta = ResourceMeta::encode(&DaskHandle { job: id.clone() })?;
        // A job with this key exists (a repeated create, also after a restart): attach, whatever the config now says.
        if JobDir::open(&self.root, &id).is_some() {
            return Ok(meta);
        }
        // Everything that can be wrong with the task is found before anything is claimed.
        let parsed = DaskTask::parse(&task.template, self.settings.max_workers)?;
        let launch = self.launch(ctx, &parsed)?;
        self.cleaned.run(&self.root, self.settings.keep_finished, "dask");
        let dir = match JobDir::claim(&self.root, &id).map_err(codes::state_dir)? {
            Claim::Existing(_) => return Ok(meta),
            Claim::New(dir) => dir,
        };
        let mut record = Record {
            v: 1,
            output_prefix: ctx.output_prefix.clone(),
            outputs: parsed.outputs.clone(),
            program: parsed.program.clone(),
            mode: if launch.scheduler_address.is_some() { "external" } else { "local" }.into(),
            created_unix: jobs::now_unix(),
            pid: None,
        };
        dir.write_record(&record)?;
        match dir.spawn(&launch) {
            Ok(pid) => {
                record.pid = Some(pid);
                dir.write_record(&record)?;
                tracing::info!(job = %id, pid, mode = %record.mode, "dask: job started");
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "dask: cannot start the job's supervisor");
                dir.write("exit", format!("spawn cannot start /bin/sh: {e}\n").as_bytes()).map_err(codes::state_dir)?;
            }
        }
        Ok(meta)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let Some(dir) = self.job(meta)? else {
            return Err(AgentError::not_found(codes::JOB_NOT_FOUND, "no dask job with this handle is recorded on this gateway"));
        };
        let (state, detail) = self.state(&dir);
        let record = dir.record();
        let mut status = JOB_STATES.classify_with(&state, &detail);
        if state == states::EXITED_N {
            if let Some(error) = self.flytekit_error(ctx, record.as_ref()).await {
                status = TaskStatus::failed(error);
            }
        } else if status.phase == Phase::Succeeded {
            status = self.outputs(ctx, record.as_ref()).await?;
        }
        let running = status.phase == Phase::Running;
        Ok(status.with_log_links(self.log_links(&dir, record.as_ref(), running)))
    }

    async fn delete(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let Some(dir) = self.job(meta)? else { return Ok(()) };
        if dir.read("exit").is_none() && !dir.file("killed").exists() {
            dir.write("killed", format!("{}\n", jobs::now_unix()).as_bytes()).map_err(codes::state_dir)?;
        }
        dir.kill_job();
        Ok(())
    }

    async fn logs(&self, _ctx: &TaskContext, meta: &ResourceMeta, lines: u64, _token: &str) -> Result<LogPage, AgentError> {
        let Some(dir) = self.job(meta)? else {
            return Err(AgentError::not_found(codes::JOB_NOT_FOUND, "no dask job with this handle is recorded on this gateway"));
        };
        let mut out = Vec::new();
        for (file, what) in [("scheduler.log", "dask scheduler"), ("worker.log", "dask worker"), ("cluster.log", "dask cluster")] {
            out.extend(tail_lines(&dir.file(file), 0, LOG_BYTES).into_iter().map(|l| admin::LogLine {
                timestamp: None,
                message: format!("[{what}] {l}"),
                originator: admin::LogLineOriginator::System as i32,
            }));
        }
        for (file, stream) in [("stdout.txt", Stream::Stdout), ("stderr.txt", Stream::Stderr)] {
            out.extend(tail_lines(&dir.file(file), 0, LOG_BYTES).iter().map(|l| log_line(stream, l, None)));
        }
        Ok(LogPage { lines: last(out, lines), next_token: String::new() })
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&JOB_STATES)
    }
}
