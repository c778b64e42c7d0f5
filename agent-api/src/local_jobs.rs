//! Background jobs run inside the agent's own process (DuckDB queries, subprocesses),
//! keyed by idempotency key so a repeated create never starts a second job.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::status::TaskStatus;

/// How long a finished job's status stays available to `get`.
const FINISHED_RETENTION: Duration = Duration::from_secs(3600);

enum Job {
    Running(tokio::task::AbortHandle),
    Finished(TaskStatus, Instant),
}

#[derive(Default, Clone)]
pub struct LocalJobs {
    jobs: Arc<Mutex<HashMap<String, Job>>>,
}

impl LocalJobs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `work` under `key` unless a job with that key exists. Returns whether it started.
    pub fn spawn<F>(&self, key: &str, work: F) -> bool
    where
        F: Future<Output = TaskStatus> + Send + 'static,
    {
        let mut jobs = self.lock();
        jobs.retain(|_, j| !matches!(j, Job::Finished(_, at) if at.elapsed() > FINISHED_RETENTION));
        if jobs.contains_key(key) {
            return false;
        }
        let table = self.jobs.clone();
        let k = key.to_owned();
        let handle = tokio::spawn(async move {
            let status = work.await;
            let mut jobs = table.lock().unwrap_or_else(|p| p.into_inner());
            // A cancelled job keeps its ABORTED status.
            if matches!(jobs.get(&k), Some(Job::Running(_))) {
                jobs.insert(k, Job::Finished(status, Instant::now()));
            }
        });
        jobs.insert(key.to_owned(), Job::Running(handle.abort_handle()));
        true
    }

    /// `None` if no job with this key is known to this process.
    pub fn status(&self, key: &str) -> Option<TaskStatus> {
        match self.lock().get(key)? {
            Job::Running(_) => Some(TaskStatus::running("")),
            Job::Finished(s, _) => Some(s.clone()),
        }
    }

    /// Stops a running job (its status becomes ABORTED); finished jobs are left alone.
    pub fn cancel(&self, key: &str) {
        let mut jobs = self.lock();
        if let Some(Job::Running(h)) = jobs.get(key) {
            h.abort();
            jobs.insert(key.to_owned(), Job::Finished(TaskStatus::aborted("cancelled by DeleteTask"), Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}
