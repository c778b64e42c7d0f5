//! Dask's job records, in the shared durable job directories of
//! [`tern_agent_api::job_dir`] (one directory per attempt, claimed by creating it).
//! `record.json` holds what get and logs need later (output prefix, declared outputs, the
//! supervisor's pid); the supervisor writes the rest (see `supervisor.sh`).
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::AgentError;

pub use tern_agent_api::job_dir::{job_id, job_id_for, jobs_root, now_unix, remove_finished, valid_id, Claim, JobDir};

use crate::codes::state_dir;
use crate::procs;
use crate::template::ClusterSize;

/// The supervisor script, run by `/bin/sh`.
pub const SUPERVISOR: &str = include_str!("supervisor.sh");

/// How long a job directory without a supervisor pid counts as `STARTING` (another
/// create is spawning it) before it is `LOST`.
pub const SPAWN_GRACE: Duration = Duration::from_secs(30);

/// What the agent keeps about a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    pub output_prefix: String,
    /// Names of the outputs the task interface declares.
    pub outputs: Vec<String>,
    /// The program, for messages.
    pub program: String,
    /// `local` or `external`.
    pub mode: String,
    pub created_unix: u64,
    /// The supervisor's pid (also its process group id), once spawned.
    pub pid: Option<u32>,
}

/// How a supervisor is started.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    /// The task's complete environment (base, `container.env`, secrets).
    pub env: Vec<(String, String)>,
    /// `None`: an ephemeral local cluster with `python`; else this scheduler.
    pub scheduler_address: Option<String>,
    pub python: PathBuf,
    pub size: ClusterSize,
    pub start_timeout: Duration,
}

/// Dask's parts of a job directory.
pub trait DaskJobDir {
    fn record(&self) -> Option<Record>;
    fn write_record(&self, record: &Record) -> Result<(), AgentError>;
    /// The supervisor's pid: from the record, else from the file the supervisor writes.
    fn pid(&self) -> Option<u32>;
    /// Time since the job was created (its record; else the directory's last change).
    fn created_ago(&self) -> Duration;
    /// Starts the supervisor. Its process outlives the gateway: it is reaped by a task
    /// of this process while the gateway runs, by init afterwards.
    fn spawn(&self, launch: &Launch) -> std::io::Result<u32>;
    /// Kills every process of the job (see [`JobDir::kill`]).
    fn kill_job(&self);
}

impl DaskJobDir for JobDir {
    fn record(&self) -> Option<Record> {
        self.read_json("record.json")
    }

    fn write_record(&self, record: &Record) -> Result<(), AgentError> {
        self.write_json("record.json", record).map_err(state_dir)
    }

    fn pid(&self) -> Option<u32> {
        self.record().and_then(|r| r.pid).or_else(|| self.read("pid").and_then(|p| p.parse().ok()))
    }

    fn created_ago(&self) -> Duration {
        self.age(self.record().map(|r| r.created_unix))
    }

    fn kill_job(&self) {
        self.kill(procs::JOB_VAR, self.pid());
    }

    fn spawn(&self, launch: &Launch) -> std::io::Result<u32> {
        let work = self.file("work");
        std::fs::create_dir_all(&work)?;
        let log = std::fs::File::create(self.file("supervisor.log"))?;
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("tern-dask-supervisor")
            .arg(&launch.program)
            .args(&launch.args)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(procs::JOB_VAR, self.marker())
            .env("TERN_DASK_DIR", &self.path)
            .current_dir(&work)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        match &launch.scheduler_address {
            Some(address) => {
                command.env("TERN_DASK_MODE", "external").env("DASK_SCHEDULER_ADDRESS", address);
            }
            None => {
                let memory = launch.size.memory_bytes.map_or_else(|| "auto".to_owned(), |b| b.to_string());
                command
                    .env("TERN_DASK_MODE", "local")
                    .env("TERN_DASK_PYTHON", &launch.python)
                    .env("TERN_DASK_NWORKERS", launch.size.workers.to_string())
                    .env("TERN_DASK_NTHREADS", launch.size.threads.to_string())
                    .env("TERN_DASK_MEMORY", memory)
                    .env("TERN_DASK_START_TIMEOUT", launch.start_timeout.as_secs().max(1).to_string());
            }
        }
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_gives_the_pid_before_the_supervisor_file() {
        let root = tempfile::tempdir().unwrap();
        let id = job_id("k");
        let Claim::New(dir) = JobDir::claim(root.path(), &id).unwrap() else { panic!("a new claim") };
        assert!(dir.record().is_none() && dir.pid().is_none());
        dir.write("pid", b"123\n").unwrap();
        assert_eq!(dir.pid(), Some(123));
        let record = Record {
            v: 1,
            output_prefix: "p".into(),
            outputs: vec![],
            program: "x".into(),
            mode: "local".into(),
            created_unix: now_unix(),
            pid: Some(7),
        };
        dir.write_record(&record).unwrap();
        assert_eq!(dir.pid(), Some(7));
    }
}
