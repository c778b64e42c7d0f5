//! The `gpu` async agent: create checks the demand against the inventory, claims the job's
//! directory and schedules; get, delete and logs read and act on that directory, so they
//! work the same after a gateway restart.
//!
//! Scheduling ([`GpuAgent::schedule`]) runs under one lock at every create, get and delete:
//! the devices held are those of the jobs `STARTING` or `RUNNING`; queued jobs are taken in
//! creation order, each given the first free devices that fit it. A queued job that cannot
//! start yet reserves the free devices that fit it, so a later job cannot take them first
//! (no starvation of large requests); a later job that needs other devices starts at once.
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::command_result;
use tern_agent_api::error::codes::BAD_RESOURCE_META;
use tern_agent_api::local_process::{last, log_line, tail_lines, Stream};
use tern_agent_api::prelude::*;

use crate::codes::{self, bad_template, unsatisfiable};
use crate::config::GpuSettings;
use crate::inventory::GpuDevice;
use crate::jobs::{self, job_id_for, jobs_root, Assignment, Claim, GpuJobDir, JobDir, Record};
use crate::states::{self, JOB_STATES};
use crate::template::{GpuDemand, GpuTask};

pub const TASK_TYPE: &str = "gpu";

/// flytekit's switch for a failing task to exit non-zero.
pub const FAIL_ON_ERROR: &str = "FLYTE_FAIL_ON_ERROR";

/// How many lines of stderr a failure message quotes.
const TAIL_LINES: usize = 20;
/// How much of each log file `GetTaskLogs` reads at most (its end).
const LOG_BYTES: u64 = 4 << 20;

/// The handle: the job's id (a hash of the idempotency key; its directory's name).
#[derive(Debug, Serialize, Deserialize)]
struct GpuHandle {
    job: String,
}

pub struct GpuAgent {
    settings: GpuSettings,
    root: PathBuf,
    /// Held while scheduling, and while a delete marks and kills a job.
    schedule_lock: Mutex<()>,
    cleaned: tern_agent_api::job_dir::Cleanup,
}

/// Where a queued job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlace {
    pub position: usize,
    pub length: usize,
}

impl GpuAgent {
    /// The state directory is made absolute now and created at the first create.
    pub fn new(settings: GpuSettings) -> Result<Self, AgentError> {
        let state = std::path::absolute(&settings.state_dir).map_err(|e| {
            codes::state_dir(format!("cannot resolve the state directory {}: {e}", settings.state_dir.display()))
        })?;
        Ok(Self { root: jobs_root(&state), settings, schedule_lock: Mutex::new(()), cleaned: Default::default() })
    }

    /// Where this agent keeps its job records.
    pub fn jobs_dir(&self) -> &std::path::Path {
        &self.root
    }

    fn job(&self, meta: &ResourceMeta) -> Result<Option<JobDir>, AgentError> {
        let handle: GpuHandle = meta.decode()?;
        if !jobs::valid_id(&handle.job) {
            return Err(AgentError::invalid_argument(BAD_RESOURCE_META, "the handle's job is not a gpu job id"));
        }
        Ok(JobDir::open(&self.root, &handle.job))
    }

    /// Refuses a demand this host can never serve, naming what was asked and what exists.
    pub fn check_feasible(&self, demand: &GpuDemand) -> Result<(), AgentError> {
        let source = self.settings.inventory.source();
        let devices = self.settings.inventory.devices().map_err(|reason| {
            unsatisfiable(codes::NO_GPU, format!("the task asks for {}, but this host has no GPU: {reason}", demand.describe()))
        })?;
        if devices.is_empty() {
            return Err(unsatisfiable(
                codes::NO_GPU,
                format!("the task asks for {}, but this host has no GPU ({source} lists no device)", demand.describe()),
            ));
        }
        too_few(demand, &devices, source).map_or(Ok(()), Err)
    }

    /// The complete environment of a job's command.
    fn env(&self, ctx: &TaskContext, record: &Record, assignment: &Assignment) -> Result<Vec<(String, String)>, AgentError> {
        let mut env = self.settings.inherited_env.clone();
        let mut set = |k: &str, v: String| {
            env.retain(|(name, _)| name != k);
            env.push((k.to_owned(), v));
        };
        for (k, v) in &record.env {
            set(k, v.clone());
        }
        // flytekit's pyflyte-execute then exits non-zero when the task raises; a template's container.env may say otherwise.
        if !record.env.iter().any(|(k, _)| k == FAIL_ON_ERROR) {
            set(FAIL_ON_ERROR, "true".into());
        }
        for (name, reference) in &self.settings.secret_env {
            set(name, ctx.secrets().resolve(reference)?.expose().to_owned());
        }
        let visible = assignment.visible_devices();
        set("CUDA_VISIBLE_DEVICES", visible.clone());
        set("NVIDIA_VISIBLE_DEVICES", visible);
        set("CUDA_DEVICE_ORDER", "PCI_BUS_ID".into());
        Ok(env)
    }

    /// The state of a job, from its files and the process table.
    fn state(&self, dir: &JobDir) -> (String, String) {
        if let Some(exit) = dir.read("exit") {
            return exit_state(dir, &exit);
        }
        if dir.file("killed").exists() {
            return (states::KILLED.into(), String::new());
        }
        let Some(assignment) = dir.assignment() else {
            // A record is written right after the claim; a directory without one past the grace lost its create.
            if dir.record().is_some() || dir.age(None) < jobs::SPAWN_GRACE {
                return (states::QUEUED.into(), String::new());
            }
            return (states::LOST.into(), "its create did not complete (no job record)".into());
        };
        let alive = match dir.pid() {
            Some(pid) => tern_agent_api::job_dir::is_job_process(jobs::JOB_VAR, pid, &dir.marker()),
            None if dir.age(Some(assignment.assigned_unix)) < jobs::SPAWN_GRACE => {
                return (states::STARTING.into(), String::new())
            }
            None => false,
        };
        if alive {
            return (states::RUNNING.into(), String::new());
        }
        // It may have ended between the two looks.
        match dir.read("exit") {
            Some(exit) => exit_state(dir, &exit),
            None => (states::LOST.into(), "its supervisor process is gone and it recorded no exit".into()),
        }
    }

    /// Starts the queued jobs that free devices allow, in creation order. Returns the ids of
    /// the jobs still queued, in order.
    pub fn schedule(&self, ctx: &TaskContext) -> Vec<String> {
        let _guard = self.schedule_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut busy = HashSet::new();
        let mut queued = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let Some(dir) = JobDir::open(&self.root, &id) else { continue };
            let (state, _) = self.state(&dir);
            if state == states::STARTING || state == states::RUNNING {
                busy.extend(dir.assignment().into_iter().flat_map(|a| a.devices).map(|d| d.uuid));
            } else if state == states::QUEUED {
                if let Some(record) = dir.record() {
                    queued.push((record.created_nanos, dir, record));
                }
            }
        }
        queued.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        let source = self.settings.inventory.source();
        let devices = self.settings.inventory.devices().unwrap_or_default();
        let mut taken = busy;
        let mut waiting = Vec::new();
        for (_, dir, record) in queued {
            if let Some(error) = too_few(&record.demand, &devices, source) {
                // The host's devices changed since the job was queued (a gateway restart).
                let _ = dir.write("exit", format!("unsatisfiable {}\n", error.message).as_bytes());
                continue;
            }
            let free: Vec<&GpuDevice> = devices.iter().filter(|d| !taken.contains(&d.uuid) && record.demand.fits(d)).collect();
            if free.len() < record.demand.count as usize {
                // Reserve what it could use, so later jobs do not take it first.
                taken.extend(free.iter().map(|d| d.uuid.clone()));
                waiting.push(dir.id.clone());
                continue;
            }
            let chosen: Vec<GpuDevice> = free.into_iter().take(record.demand.count as usize).cloned().collect();
            taken.extend(chosen.iter().map(|d| d.uuid.clone()));
            self.start(ctx, &dir, &record, Assignment { devices: chosen, assigned_unix: jobs::now_unix() });
        }
        waiting
    }

    /// Records the assignment and starts the job's supervisor; a failure is recorded as the job's exit.
    fn start(&self, ctx: &TaskContext, dir: &JobDir, record: &Record, assignment: Assignment) {
        let env = match self.env(ctx, record, &assignment) {
            Ok(env) => env,
            Err(e) => {
                let _ = dir.write("exit", format!("spawn cannot set the environment: {}\n", e.message).as_bytes());
                return;
            }
        };
        if let Err(e) = dir.write_assignment(&assignment) {
            tracing::warn!(job = %dir.id, error = %e.message, "gpu: cannot record a device assignment; the job stays queued");
            return;
        }
        match dir.spawn(&record.program, &record.args, &env) {
            Ok(pid) => {
                let _ = dir.write("pid", format!("{pid}\n").as_bytes());
                tracing::info!(job = %dir.id, pid, devices = %assignment.visible_devices(), "gpu: job started");
            }
            Err(e) => {
                tracing::warn!(job = %dir.id, error = %e, "gpu: cannot start the job's supervisor");
                let _ = dir.write("exit", format!("spawn cannot start /bin/sh: {e}\n").as_bytes());
            }
        }
    }

    async fn finished(&self, ctx: &TaskContext, state: &str, status: TaskStatus, record: Option<&Record>) -> Result<TaskStatus, AgentError> {
        let prefix = record.map(|r| r.output_prefix.as_str()).filter(|p| !p.is_empty()).unwrap_or(&ctx.output_prefix);
        let program = record.map(|r| r.program.as_str()).unwrap_or("the command");
        if state == states::EXITED_N {
            if let Some(error) = command_result::flytekit_error(ctx, prefix, program, codes::TASK_FAILED).await {
                return Ok(TaskStatus::failed(error));
            }
        } else if status.phase == Phase::Succeeded {
            let declared = record.map(|r| r.outputs.as_slice()).unwrap_or_default();
            return command_result::command_outputs(ctx, prefix, declared, codes::NO_OUTPUTS).await;
        }
        Ok(status)
    }
}

/// The error for a demand that more devices than the host has of its kind would need.
fn too_few(demand: &GpuDemand, devices: &[GpuDevice], source: &str) -> Option<AgentError> {
    let fitting = devices.iter().filter(|d| demand.fits(d)).count();
    if fitting >= demand.count as usize {
        return None;
    }
    let listed: Vec<String> = devices.iter().map(GpuDevice::describe).collect();
    let listed = if listed.is_empty() { "none".to_owned() } else { listed.join("; ") };
    Some(unsatisfiable(
        codes::TOO_FEW_GPUS,
        format!(
            "the task asks for {}, but this host has {fitting} such device(s) (of {} GPU(s) listed by {source}: {listed})",
            demand.describe(),
            devices.len()
        ),
    ))
}

/// The state an `exit` record names, with its details.
fn exit_state(dir: &JobDir, exit: &str) -> (String, String) {
    let program = dir.record().map(|r| r.program).unwrap_or_else(|| "the command".into());
    let (kind, rest) = exit.split_once(' ').unwrap_or((exit, ""));
    match (kind, rest.trim().parse::<i64>()) {
        ("exit", Ok(0)) => (states::EXITED_0.into(), String::new()),
        ("exit", Ok(code)) => (states::EXITED_N.into(), command_result::exit_detail(&dir.path, &program, code, TAIL_LINES)),
        ("spawn", _) => (states::SPAWN_FAILED_STATE.into(), rest.trim().to_owned()),
        ("unsatisfiable", _) => (states::UNSATISFIABLE.into(), rest.trim().to_owned()),
        _ => (format!("exit record {exit:?}"), String::new()),
    }
}

#[async_trait]
impl AsyncAgent for GpuAgent {
    fn name(&self) -> &str {
        TASK_TYPE
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        self.settings.task_types.iter().map(|t| TaskCategory::new(t.clone(), 0)).collect()
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        if ctx.output_prefix.is_empty() {
            return Err(bad_template("a gpu task needs an output_prefix (flytekit's pyflyte-execute writes its outputs there)"));
        }
        let id = job_id_for(ctx.idempotency_key.as_ref());
        let meta = ResourceMeta::encode(&GpuHandle { job: id.clone() })?;
        // A job with this key exists (a repeated create, also after a restart): attach.
        if JobDir::open(&self.root, &id).is_some() {
            self.schedule(ctx);
            return Ok(meta);
        }
        // Everything that can be wrong with the task is found before anything is claimed.
        let parsed = GpuTask::parse(&task.template)?;
        self.check_feasible(&parsed.demand)?;
        for reference in self.settings.secret_env.values() {
            ctx.secrets().resolve(reference)?;
        }
        self.cleaned.run(&self.root, self.settings.keep_finished, "gpu");
        let dir = match JobDir::claim(&self.root, &id).map_err(codes::state_dir)? {
            Claim::Existing(_) => return Ok(meta),
            Claim::New(dir) => dir,
        };
        let record = Record {
            v: 1,
            output_prefix: ctx.output_prefix.clone(),
            outputs: parsed.outputs.clone(),
            program: parsed.program.clone(),
            args: parsed.args.clone(),
            env: parsed.env.clone(),
            demand: parsed.demand.clone(),
            created_unix: jobs::now_unix(),
            created_nanos: jobs::now_nanos(),
        };
        dir.write_record(&record)?;
        tracing::info!(job = %id, demand = %record.demand.describe(), "gpu: job recorded");
        self.schedule(ctx);
        Ok(meta)
    }

    async fn get(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let Some(dir) = self.job(meta)? else {
            return Err(AgentError::not_found(codes::JOB_NOT_FOUND, "no gpu job with this handle is recorded on this gateway"));
        };
        let waiting = self.schedule(ctx);
        let (state, mut detail) = self.state(&dir);
        let record = dir.record();
        if state == states::QUEUED {
            let demand = record.as_ref().map_or_else(|| "GPUs".to_owned(), |r| r.demand.describe());
            detail = match waiting.iter().position(|id| *id == dir.id) {
                Some(i) => format!("waiting for {demand}: position {} of {} in this host's GPU queue", i + 1, waiting.len()),
                None => format!("waiting for {demand}"),
            };
        }
        let status = JOB_STATES.classify_with(&state, &detail);
        self.finished(ctx, &state, status, record.as_ref()).await
    }

    async fn delete(&self, ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let Some(dir) = self.job(meta)? else { return Ok(()) };
        {
            let _guard = self.schedule_lock.lock().unwrap_or_else(|p| p.into_inner());
            if dir.read("exit").is_none() && !dir.file("killed").exists() {
                dir.write("killed", format!("{}\n", jobs::now_unix()).as_bytes()).map_err(codes::state_dir)?;
            }
            dir.kill_job();
        }
        // Its devices are free: start whoever waits for them.
        self.schedule(ctx);
        Ok(())
    }

    async fn logs(&self, _ctx: &TaskContext, meta: &ResourceMeta, lines: u64, _token: &str) -> Result<LogPage, AgentError> {
        let Some(dir) = self.job(meta)? else {
            return Err(AgentError::not_found(codes::JOB_NOT_FOUND, "no gpu job with this handle is recorded on this gateway"));
        };
        let devices = match dir.assignment() {
            Some(a) => format!("[gpu] devices: {}", a.devices.iter().map(GpuDevice::describe).collect::<Vec<_>>().join("; ")),
            None => "[gpu] no devices assigned yet (queued)".to_owned(),
        };
        let mut out = vec![admin::LogLine { timestamp: None, message: devices, originator: admin::LogLineOriginator::System as i32 }];
        for (file, stream) in [("stdout.txt", Stream::Stdout), ("stderr.txt", Stream::Stderr)] {
            out.extend(tail_lines(&dir.file(file), 0, LOG_BYTES).iter().map(|l| log_line(stream, l, None)));
        }
        Ok(LogPage { lines: last(out, lines), next_token: String::new() })
    }

    fn backend_states(&self) -> Option<&StateTable> {
        Some(&JOB_STATES)
    }
}
