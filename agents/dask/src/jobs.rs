//! Job records in the state directory: one directory per job, named by a hash of the
//! attempt's idempotency key, so they outlive the gateway process.
//!
//! Creating the directory is what claims the key: a second create with the same key
//! (concurrent, repeated, or after a restart) finds it and attaches instead of starting a
//! second supervisor. `record.json` holds what get and logs need later (output prefix,
//! declared outputs, the supervisor's pid); the supervisor writes the rest (see
//! `supervisor.sh`).
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tern_agent_api::prelude::AgentError;

use crate::codes::state_dir;
use crate::procs;
use crate::template::ClusterSize;

/// The supervisor script, run by `/bin/sh`.
pub const SUPERVISOR: &str = include_str!("supervisor.sh");

/// How long a job directory without a supervisor pid counts as `STARTING` (another
/// create is spawning it) before it is `LOST`.
pub const SPAWN_GRACE: Duration = Duration::from_secs(30);

/// Length of a job id (hex digits of SHA-256).
const ID_LEN: usize = 40;

/// The job id for an idempotency key.
pub fn job_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(digest)[..ID_LEN].to_owned()
}

/// Whether `id` can be a job id (so it is safe as a directory name).
pub fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

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

/// One job's directory.
#[derive(Debug, Clone)]
pub struct JobDir {
    pub id: String,
    pub path: PathBuf,
}

/// Whether the create call made the job or found it.
pub enum Claim {
    New(JobDir),
    Existing(JobDir),
}

pub fn jobs_root(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs")
}

impl JobDir {
    pub fn open(root: &Path, id: &str) -> Option<Self> {
        let path = root.join(id);
        (valid_id(id) && path.is_dir()).then(|| Self { id: id.to_owned(), path })
    }

    /// Claims `id`: creates its directory, or finds it.
    pub fn claim(root: &Path, id: &str) -> Result<Claim, AgentError> {
        std::fs::create_dir_all(root).map_err(|e| state_dir(format!("cannot create the state directory {}: {e}", root.display())))?;
        let path = root.join(id);
        let dir = Self { id: id.to_owned(), path: path.clone() };
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(Claim::New(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Claim::Existing(dir)),
            Err(e) => Err(state_dir(format!("cannot create the job directory {}: {e}", path.display()))),
        }
    }

    /// The value of the job's marker variable: its directory, unique per gateway state and attempt.
    pub fn marker(&self) -> String {
        self.path.display().to_string()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A small text file's content, trimmed; `None` when absent or empty (being written).
    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.file(name)).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// Writes a file atomically (temporary file, then rename).
    pub fn write(&self, name: &str, content: &[u8]) -> Result<(), AgentError> {
        let tmp = self.file(&format!("{name}.agent-tmp"));
        std::fs::write(&tmp, content)
            .and_then(|()| std::fs::rename(&tmp, self.file(name)))
            .map_err(|e| state_dir(format!("cannot write {}: {e}", self.file(name).display())))
    }

    pub fn record(&self) -> Option<Record> {
        let bytes = std::fs::read(self.file("record.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_record(&self, record: &Record) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| state_dir(format!("cannot encode a job record: {e}")))?;
        self.write("record.json", &bytes)
    }

    /// The supervisor's pid: from the record, else from the file the supervisor writes.
    pub fn pid(&self) -> Option<u32> {
        self.record().and_then(|r| r.pid).or_else(|| self.read("pid").and_then(|p| p.parse().ok()))
    }

    /// Time since the job was created (its record; else the directory's last change; 0 when unknown).
    pub fn age(&self) -> Duration {
        let created = match self.record() {
            Some(r) => UNIX_EPOCH + Duration::from_secs(r.created_unix),
            None => match std::fs::metadata(&self.path).and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(_) => return Duration::ZERO,
            },
        };
        SystemTime::now().duration_since(created).unwrap_or_default()
    }

    /// Starts the supervisor. Its process outlives the gateway: it is reaped by a task
    /// of this process while the gateway runs, by init afterwards.
    pub fn spawn(&self, launch: &Launch) -> std::io::Result<u32> {
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

    /// Kills every process of the job: its supervisor's group when the supervisor is still
    /// the job's, and any process carrying the job's marker (one that left the group).
    pub fn kill(&self) {
        let marker = self.marker();
        if let Some(pid) = self.pid().filter(|pid| procs::is_job_process(*pid, &marker)) {
            tern_agent_api::local_process::kill_group(pid);
        }
        for pid in procs::job_processes(&marker) {
            tern_agent_api::local_process::kill_process(pid);
        }
    }
}

/// Removes the directories of jobs that ended (`exit` or `killed` written) more than `keep`
/// ago. Returns how many were removed; a directory that cannot be removed is left for the next time.
pub fn remove_finished(root: &Path, keep: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else { return 0 };
    let now = SystemTime::now();
    let ended_long_ago = |path: &Path| {
        ["exit", "killed"].iter().any(|f| {
            std::fs::metadata(path.join(f))
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > keep))
        })
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(valid_id) && ended_long_ago(p))
        .filter(|p| std::fs::remove_dir_all(p).is_ok())
        .count()
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_hex_and_checked() {
        let a = job_id("ns/exec/node/0");
        assert_eq!(a, job_id("ns/exec/node/0"));
        assert_ne!(a, job_id("ns/exec/node/1"));
        assert!(valid_id(&a));
        for bad in ["", "../../etc", &a[..39], &a.to_uppercase(), &format!("{}g", &a[..39])] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn claiming_a_key_twice_finds_the_first_claim() {
        let root = tempfile::tempdir().unwrap();
        let id = job_id("k");
        assert!(matches!(JobDir::claim(root.path(), &id).unwrap(), Claim::New(_)));
        assert!(matches!(JobDir::claim(root.path(), &id).unwrap(), Claim::Existing(_)));
        let dir = JobDir::open(root.path(), &id).unwrap();
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
        assert!(JobDir::open(root.path(), "../x").is_none());
    }

    #[test]
    fn only_jobs_that_ended_long_ago_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(24 * 3600);
        let make = |key: &str, marker: Option<(&str, Duration)>| {
            let id = job_id(key);
            std::fs::create_dir(root.path().join(&id)).unwrap();
            if let Some((name, age)) = marker {
                let f = std::fs::File::create(root.path().join(&id).join(name)).unwrap();
                f.set_modified(SystemTime::now() - age).unwrap();
            }
            id
        };
        let old_exit = make("old-exit", Some(("exit", 3 * day)));
        let old_kill = make("old-kill", Some(("killed", 3 * day)));
        let recent = make("recent", Some(("exit", Duration::from_secs(60))));
        let running = make("running", None);
        std::fs::create_dir(root.path().join("not-a-job")).unwrap();
        assert_eq!(remove_finished(root.path(), day), 2);
        for (id, kept) in [(old_exit, false), (old_kill, false), (recent, true), (running, true)] {
            assert_eq!(root.path().join(id).exists(), kept);
        }
        assert!(root.path().join("not-a-job").exists());
    }
}
