//! Durable records of jobs that run as supervised processes on the gateway's host (`dask`, `gpu`):
//! one directory per job in the agent's state directory, named by a hash of the attempt's
//! idempotency key, so they outlive the gateway process.
//!
//! Creating the directory is what claims the key: a second create with the same key
//! (concurrent, repeated, or after a restart) finds it and attaches instead of starting a
//! second job. Every process of a job carries an environment variable (the agent's marker
//! variable, e.g. `TERN_DASK_JOB`) whose value is the job's directory: a pid recorded before a
//! gateway restart is only taken for the job's when the process still carries it (Linux
//! `/proc`), so a pid reused by another program is never mistaken for the job, nor killed.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Length of a job id (hex digits of SHA-256).
const ID_LEN: usize = 40;

/// The job id for an idempotency key.
pub fn job_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(digest)[..ID_LEN].to_owned()
}

/// The job id of a create: from its attempt's idempotency key, else a fresh one (a create without a key
/// cannot be recognised when repeated).
pub fn job_id_for(key: Option<&crate::idempotency::IdempotencyKey>) -> String {
    static FRESH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match key {
        Some(k) => job_id(k.as_str()),
        None => {
            let n = FRESH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
            job_id(&format!("no-key/{}/{nanos}/{n}", std::process::id()))
        }
    }
}

/// Whether `id` can be a job id (so it is safe as a directory name).
pub fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The directory holding an agent's job directories.
pub fn jobs_root(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs")
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

impl JobDir {
    pub fn open(root: &Path, id: &str) -> Option<Self> {
        let path = root.join(id);
        (valid_id(id) && path.is_dir()).then(|| Self { id: id.to_owned(), path })
    }

    /// Claims `id`: creates its directory, or finds it. The error names the path.
    pub fn claim(root: &Path, id: &str) -> Result<Claim, String> {
        std::fs::create_dir_all(root).map_err(|e| format!("cannot create the state directory {}: {e}", root.display()))?;
        let path = root.join(id);
        let dir = Self { id: id.to_owned(), path: path.clone() };
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(Claim::New(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Claim::Existing(dir)),
            Err(e) => Err(format!("cannot create the job directory {}: {e}", path.display())),
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

    /// Writes a file atomically (temporary file, then rename). The error names the file.
    pub fn write(&self, name: &str, content: &[u8]) -> Result<(), String> {
        let tmp = self.file(&format!("{name}.agent-tmp"));
        std::fs::write(&tmp, content)
            .and_then(|()| std::fs::rename(&tmp, self.file(name)))
            .map_err(|e| format!("cannot write {}: {e}", self.file(name).display()))
    }

    /// A JSON file's content; `None` when absent or not of this shape.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        let bytes = std::fs::read(self.file(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| format!("cannot encode {name}: {e}"))?;
        self.write(name, &bytes)
    }

    /// Time since `created_unix` (else the directory's last change; 0 when unknown).
    pub fn age(&self, created_unix: Option<u64>) -> Duration {
        let created = match created_unix {
            Some(secs) => UNIX_EPOCH + Duration::from_secs(secs),
            None => match std::fs::metadata(&self.path).and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(_) => return Duration::ZERO,
            },
        };
        SystemTime::now().duration_since(created).unwrap_or_default()
    }

    /// Kills every process of the job: the group of `pid` (its supervisor) when that process
    /// still carries the marker, and any process carrying the marker (one that left the group).
    pub fn kill(&self, marker_var: &str, pid: Option<u32>) {
        let marker = self.marker();
        if let Some(pid) = pid.filter(|pid| is_job_process(marker_var, *pid, &marker)) {
            crate::local_process::kill_group(pid);
        }
        for pid in job_processes(marker_var, &marker) {
            crate::local_process::kill_process(pid);
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

/// How often [`Cleanup::run`] looks for ended jobs' records.
pub const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Runs [`remove_finished`] at most once per [`CLEANUP_EVERY`] (agents call it from their creates).
#[derive(Debug, Default)]
pub struct Cleanup {
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Cleanup {
    /// Removes the records of `agent`'s jobs under `root` that ended more than `keep` ago, unless that was done
    /// less than [`CLEANUP_EVERY`] ago.
    pub fn run(&self, root: &Path, keep: Duration, agent: &str) {
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < CLEANUP_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let removed = remove_finished(root, keep);
        if removed > 0 {
            tracing::info!(removed, agent, "removed the records of jobs that ended long ago");
        }
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn marker_entry(var: &str, job: &str) -> Vec<u8> {
    format!("{var}={job}").into_bytes()
}

/// Whether `pid` is a live (not zombie) process carrying `var=job`.
pub fn is_job_process(var: &str, pid: u32, job: &str) -> bool {
    carries(Path::new(&format!("/proc/{pid}")), &marker_entry(var, job))
}

fn carries(proc_dir: &Path, marker: &[u8]) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if !matches!(state, Some(s) if s != "Z" && s != "X" && s != "x") {
        return false;
    }
    let Ok(environ) = std::fs::read(proc_dir.join("environ")) else { return false };
    environ.split(|b| *b == 0).any(|kv| kv == marker)
}

/// Every live process carrying `var=job` (including ones that left the job's process group).
pub fn job_processes(var: &str, job: &str) -> Vec<u32> {
    let marker = marker_entry(var, job);
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| *pid != std::process::id() && carries(Path::new(&format!("/proc/{pid}")), &marker))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR: &str = "TERN_TEST_JOB";

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
        let root = std::env::temp_dir().join(format!("tern-jobdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let id = job_id("k");
        assert!(matches!(JobDir::claim(&root, &id).unwrap(), Claim::New(_)));
        assert!(matches!(JobDir::claim(&root, &id).unwrap(), Claim::Existing(_)));
        let dir = JobDir::open(&root, &id).unwrap();
        assert!(dir.read("pid").is_none());
        dir.write("pid", b"123\n").unwrap();
        assert_eq!(dir.read("pid").as_deref(), Some("123"));
        dir.write_json("r.json", &vec![1, 2]).unwrap();
        assert_eq!(dir.read_json::<Vec<u32>>("r.json"), Some(vec![1, 2]));
        assert!(dir.age(Some(now_unix() - 10)) >= Duration::from_secs(9));
        assert!(JobDir::open(&root, "../x").is_none());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn only_jobs_that_ended_long_ago_are_removed() {
        let root = std::env::temp_dir().join(format!("tern-jobdir-rm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let day = Duration::from_secs(24 * 3600);
        let make = |key: &str, marker: Option<(&str, Duration)>| {
            let id = job_id(key);
            std::fs::create_dir(root.join(&id)).unwrap();
            if let Some((name, age)) = marker {
                let f = std::fs::File::create(root.join(&id).join(name)).unwrap();
                f.set_modified(SystemTime::now() - age).unwrap();
            }
            id
        };
        let old_exit = make("old-exit", Some(("exit", 3 * day)));
        let old_kill = make("old-kill", Some(("killed", 3 * day)));
        let recent = make("recent", Some(("exit", Duration::from_secs(60))));
        let running = make("running", None);
        std::fs::create_dir(root.join("not-a-job")).unwrap();
        assert_eq!(remove_finished(&root, day), 2);
        for (id, kept) in [(old_exit, false), (old_kill, false), (recent, true), (running, true)] {
            assert_eq!(root.join(id).exists(), kept);
        }
        assert!(root.join("not-a-job").exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn recognises_a_process_by_its_marker_only() {
        let mut child = std::process::Command::new("sleep").arg("30").env(VAR, "job-under-test").spawn().unwrap();
        let pid = child.id();
        // Between fork and exec the child still has this process's environment.
        let started = std::time::Instant::now();
        while !is_job_process(VAR, pid, "job-under-test") {
            assert!(started.elapsed() < Duration::from_secs(5), "the marked child is never recognised");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!is_job_process(VAR, pid, "job-under"), "a prefix is another job");
        assert!(!is_job_process("OTHER_VAR", pid, "job-under-test"), "another agent's variable");
        assert!(!is_job_process(VAR, std::process::id(), "job-under-test"));
        assert_eq!(job_processes(VAR, "job-under-test"), [pid]);
        child.kill().unwrap();
        // A zombie (killed, not yet reaped) is not alive.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!is_job_process(VAR, pid, "job-under-test"));
        child.wait().unwrap();
        assert!(!is_job_process(VAR, pid, "job-under-test"));
    }
}
