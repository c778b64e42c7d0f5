//! GPU job records, in the shared durable job directories of [`tern_agent_api::job_dir`]
//! (one directory per attempt, claimed by creating it, so a repeated create — also after a
//! gateway restart — attaches). `record.json` holds the task as the agent will run it (no
//! secret values: those are resolved from the config when the job starts) and its demand;
//! `devices.json` the devices assigned to it (written before its supervisor starts, so the
//! assignment survives a gateway restart); the supervisor writes `pid`, its logs and `exit`.
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::AgentError;

pub use tern_agent_api::job_dir::{job_id, job_id_for, jobs_root, now_unix, remove_finished, valid_id, Claim, JobDir};

use crate::codes::state_dir;
use crate::inventory::GpuDevice;
use crate::template::GpuDemand;

/// The supervisor script, run by `/bin/sh`.
pub const SUPERVISOR: &str = include_str!("supervisor.sh");

/// The variable marking a job's processes (its value: the job's directory).
pub const JOB_VAR: &str = "TERN_GPU_JOB";

/// How long an assigned job without a supervisor pid counts as `STARTING` before it is `LOST`.
pub const SPAWN_GRACE: Duration = Duration::from_secs(30);

/// What the agent keeps about a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    pub output_prefix: String,
    /// Names of the outputs the task interface declares.
    pub outputs: Vec<String>,
    pub program: String,
    pub args: Vec<String>,
    /// The template's `container.env` (never secrets).
    pub env: Vec<(String, String)>,
    pub demand: GpuDemand,
    pub created_unix: u64,
    /// Creation time in nanoseconds: the queue's order.
    pub created_nanos: u128,
}

/// The devices a job was given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub devices: Vec<GpuDevice>,
    pub assigned_unix: u64,
}

impl Assignment {
    /// `CUDA_VISIBLE_DEVICES`: the devices' UUIDs.
    pub fn visible_devices(&self) -> String {
        self.devices.iter().map(|d| d.uuid.as_str()).collect::<Vec<_>>().join(",")
    }
}

pub fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

/// The GPU agent's parts of a job directory.
pub trait GpuJobDir {
    fn record(&self) -> Option<Record>;
    fn write_record(&self, record: &Record) -> Result<(), AgentError>;
    fn assignment(&self) -> Option<Assignment>;
    fn write_assignment(&self, assignment: &Assignment) -> Result<(), AgentError>;
    /// The supervisor's pid, once it runs.
    fn pid(&self) -> Option<u32>;
    /// Starts the supervisor with `env` (complete). Its process outlives the gateway: it is
    /// reaped by a task of this process while the gateway runs, by init afterwards.
    fn spawn(&self, program: &str, args: &[String], env: &[(String, String)]) -> std::io::Result<u32>;
    /// Kills every process of the job.
    fn kill_job(&self);
}

impl GpuJobDir for JobDir {
    fn record(&self) -> Option<Record> {
        self.read_json("record.json")
    }

    fn write_record(&self, record: &Record) -> Result<(), AgentError> {
        self.write_json("record.json", record).map_err(state_dir)
    }

    fn assignment(&self) -> Option<Assignment> {
        self.read_json("devices.json")
    }

    fn write_assignment(&self, assignment: &Assignment) -> Result<(), AgentError> {
        self.write_json("devices.json", assignment).map_err(state_dir)
    }

    fn pid(&self) -> Option<u32> {
        self.read("pid").and_then(|p| p.parse().ok())
    }

    fn spawn(&self, program: &str, args: &[String], env: &[(String, String)]) -> std::io::Result<u32> {
        let work = self.file("work");
        std::fs::create_dir_all(&work)?;
        let log = std::fs::File::create(self.file("supervisor.log"))?;
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("tern-gpu-supervisor")
            .arg(program)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(JOB_VAR, self.marker())
            .env("TERN_GPU_DIR", &self.path)
            .current_dir(&work)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()?;
        let pid = child.id().unwrap_or_default();
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(pid)
    }

    fn kill_job(&self) {
        self.kill(JOB_VAR, self.pid());
    }
}
