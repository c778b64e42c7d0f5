//! Durable records of the sleep agent's jobs, in its state directory, so that a repeated
//! create after a gateway restart (or a crash of an embedded `tern run`) attaches to the
//! job it started before, and a cancellation outlives the process.
//!
//! Layout under `<state_dir>/jobs/`, one file per job, named by a hash of the attempt's
//! idempotency key ([`job_dir::job_id`]):
//!
//! - `<id>.json`: the [`JobRecord`], written once. It is claimed atomically: the content is
//!   written to a temporary file that is then hard-linked to its name, which fails when the
//!   name exists, so of two concurrent creates (threads, processes, replicas sharing the
//!   directory) exactly one writes the record and both return its handle.
//! - `<id>.cancelled`: written by a `delete` before the sleep is over.
//!
//! One record per job that was started, never one per attach: counting the records (by
//! execution, node and attempt) counts submissions, which is what the chaos harness
//! (`scripts/chaos.py`) reads. Records are not fsynced: they survive the death of the
//! process (SIGKILL), not a power cut. Records whose sleep ended more than `keep` ago are
//! removed, at most once per [`CLEANUP_EVERY`], by a later create.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tern_agent_api::job_dir::job_id;
use tern_agent_api::prelude::*;

use crate::codes;

/// How often records that ended long ago are looked for.
pub const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Leftover temporary files (a process killed between writing and linking) older than this are removed.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// What a record says about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The attempt's idempotency key (a fresh one for a create without an execution identity).
    pub key: String,
    /// The handle the first create returned, byte for byte (the sleep handle is JSON text).
    pub resource_meta: String,
    pub created_unix_ms: u64,
    pub until_unix_ms: u64,
    /// Who asked, from the create's `task_execution_id` (empty when it had none): lets an
    /// operator or the chaos harness count submissions per node and attempt.
    #[serde(default)]
    pub execution: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub task: String,
}

/// Whether a create started the job or found it.
#[derive(Debug)]
pub enum Claimed {
    New(JobRecord),
    Existing(JobRecord),
}

/// The records of one agent.
#[derive(Debug)]
pub struct Records {
    dir: PathBuf,
    keep: Duration,
    last_cleanup: Mutex<Option<Instant>>,
}

fn state_error(message: String) -> AgentError {
    AgentError::unavailable(codes::STATE_DIR, message)
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Records {
    /// Records under `<state_dir>/jobs`; nothing is created until the first job.
    pub fn new(state_dir: &Path, keep: Duration) -> Self {
        Self { dir: state_dir.join("jobs"), keep, last_cleanup: Mutex::new(None) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", job_id(key)))
    }

    fn cancel_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.cancelled", job_id(key)))
    }

    /// The record of `key`, if one was written. An unreadable or damaged record (cut short by
    /// a power cut) is `Ok(None)` after a warning, so the next claim replaces it.
    pub fn find(&self, key: &str) -> Result<Option<JobRecord>, AgentError> {
        let path = self.record_path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_error(format!("cannot read the sleep record {}: {e}", path.display()))),
        };
        match serde_json::from_slice::<JobRecord>(&bytes) {
            Ok(r) if r.key == key => Ok(Some(r)),
            Ok(r) => Err(state_error(format!(
                "the sleep record {} belongs to key {}, not {key} (a hash collision or a copied file)",
                path.display(),
                r.key
            ))),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "damaged sleep record; it will be replaced");
                Ok(None)
            }
        }
    }

    /// Writes `record` unless a record of its key exists; returns the one that counts.
    pub fn claim(&self, record: JobRecord) -> Result<Claimed, AgentError> {
        if let Some(existing) = self.find(&record.key)? {
            return Ok(Claimed::Existing(existing));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| state_error(format!("cannot create the sleep state directory {}: {e}", self.dir.display())))?;
        let path = self.record_path(&record.key);
        let temp = self.temp_path(&record.key);
        let text =
            serde_json::to_vec(&record).map_err(|e| state_error(format!("cannot encode a sleep record: {e}")))?;
        let written = std::fs::File::create(&temp).and_then(|mut f| f.write_all(&text));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(state_error(format!("cannot write {}: {e}", temp.display())));
        }
        let linked = std::fs::hard_link(&temp, &path);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(Claimed::New(record)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match self.find(&record.key)? {
                    Some(existing) => Ok(Claimed::Existing(existing)),
                    // The existing file is damaged: replace it (rename overwrites).
                    None => self.replace(&path, &text).map(|()| Claimed::New(record)),
                }
            }
            Err(e) => Err(state_error(format!("cannot write the sleep record {}: {e}", path.display()))),
        }
    }

    fn replace(&self, path: &Path, text: &[u8]) -> Result<(), AgentError> {
        let temp = path.with_extension("replace.tmp");
        std::fs::write(&temp, text)
            .and_then(|()| std::fs::rename(&temp, path))
            .map_err(|e| state_error(format!("cannot replace the damaged sleep record {}: {e}", path.display())))
    }

    /// A name no other writer uses: this process, a counter.
    fn temp_path(&self, key: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{}.{}-{n}.tmp", job_id(key), std::process::id()))
    }

    /// Records that `key`'s sleep was cancelled.
    pub fn cancel(&self, key: &str) -> Result<(), AgentError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| state_error(format!("cannot create the sleep state directory {}: {e}", self.dir.display())))?;
        let path = self.cancel_path(key);
        std::fs::write(&path, b"").map_err(|e| state_error(format!("cannot write {}: {e}", path.display())))
    }

    pub fn is_cancelled(&self, key: &str) -> bool {
        self.cancel_path(key).exists()
    }

    /// [`remove_ended`] unless that ran less than [`CLEANUP_EVERY`] ago; in the background
    /// when on a tokio runtime, so reading a large directory holds up no call.
    pub fn cleanup_if_due(&self) {
        {
            let mut last = self.last_cleanup.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < CLEANUP_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let (dir, keep) = (self.dir.clone(), self.keep);
        let work = move || {
            let removed = remove_ended(&dir, keep, now_unix_ms());
            if removed > 0 {
                tracing::info!(removed, agent = "sleep", "removed the records of sleeps that ended long ago");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(work)),
            Err(_) => work(),
        }
    }

    /// [`remove_ended`] over this agent's records.
    pub fn remove_ended(&self, now_ms: u64) -> usize {
        remove_ended(&self.dir, self.keep, now_ms)
    }

    /// Every record (for operators and the chaos harness; order unspecified).
    pub fn list(&self) -> Vec<JobRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter_map(|p| std::fs::read(p).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }
}

/// Removes the records (and cancellation marks) in `dir` of sleeps that ended more than
/// `keep` before `now_ms`, marks whose record is gone, and stale temporary files. Returns
/// how many records were removed.
pub fn remove_ended(dir: &Path, keep: Duration, now_ms: u64) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let keep_ms = keep.as_millis() as u64;
    let old = |path: &Path, age: Duration| {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| SystemTime::now().duration_since(t).is_ok_and(|a| a > age))
    };
    let mut removed = 0;
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        match ext {
            // A record can only have ended `keep` ago if it was written longer ago than that.
            "json" if old(&path, keep) => {
                let ended = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<JobRecord>(&b).ok())
                    .is_none_or(|r| r.until_unix_ms.saturating_add(keep_ms) < now_ms);
                if ended && std::fs::remove_file(&path).is_ok() {
                    let _ = std::fs::remove_file(path.with_extension("cancelled"));
                    removed += 1;
                }
            }
            "cancelled" if old(&path, keep) && !path.with_extension("json").exists() => {
                let _ = std::fs::remove_file(&path);
            }
            "tmp" if old(&path, STALE_TEMP) => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
    removed
}
