//! Background jobs run inside the agent's own process (DuckDB queries, subprocesses),
//! keyed by idempotency key so a repeated create never starts a second job.
//!
//! With an [`Admission`] limit, a job holds a slot for its whole life: extra jobs wait
//! `QUEUED` for a slot (`on_full = "queue"`) or are refused at create (`"reject"`).
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;

use crate::admission::{Admission, JobAdmission};
use crate::error::AgentError;
use crate::status::TaskStatus;

/// How long a finished job's status stays available to `get`.
const FINISHED_RETENTION: Duration = Duration::from_secs(3600);

enum Job {
    Queued(tokio::task::AbortHandle),
    Running(tokio::task::AbortHandle),
    Finished(TaskStatus, Instant),
}

#[derive(Default, Clone)]
pub struct LocalJobs {
    jobs: Arc<Mutex<HashMap<String, Job>>>,
    admission: Admission,
}

impl LocalJobs {
    /// No limit on jobs running at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Jobs hold a slot of `admission` while they run.
    pub fn with_admission(admission: Admission) -> Self {
        Self { jobs: Arc::default(), admission }
    }

    /// Starts `work` under `key` unless a job with that key exists. Returns whether it
    /// started (or was queued); an error when every slot is taken and the policy rejects.
    pub fn spawn<F>(&self, key: &str, work: F) -> Result<bool, AgentError>
    where
        F: Future<Output = TaskStatus> + Send + 'static,
    {
        let mut jobs = self.lock();
        jobs.retain(|_, j| !matches!(j, Job::Finished(_, at) if at.elapsed() > FINISHED_RETENTION));
        if jobs.contains_key(key) {
            return Ok(false);
        }
        let admission = self.admission.admit_job()?;
        let queued = matches!(admission, JobAdmission::Wait(_));
        let table = self.jobs.clone();
        let k = key.to_owned();
        let handle = tokio::spawn(async move {
            let _slot = match admission {
                JobAdmission::Now(slot) => slot,
                JobAdmission::Wait(wait) => {
                    let slot = wait.await;
                    let mut jobs = table.lock().unwrap_or_else(|p| p.into_inner());
                    match jobs.get(&k) {
                        Some(Job::Queued(h)) => {
                            let h = h.clone();
                            jobs.insert(k.clone(), Job::Running(h));
                        }
                        // Cancelled while queued: never start.
                        _ => return,
                    }
                    slot
                }
            };
            // A panic inside the job must end it (FAILED), not leave it RUNNING forever.
            let status = match AssertUnwindSafe(work).catch_unwind().await {
                Ok(status) => status,
                Err(panic) => TaskStatus::failed(crate::panic::panic_error("local job", "run", panic.as_ref())),
            };
            let mut jobs = table.lock().unwrap_or_else(|p| p.into_inner());
            // A cancelled job keeps its ABORTED status.
            if matches!(jobs.get(&k), Some(Job::Running(_))) {
                jobs.insert(k, Job::Finished(status, Instant::now()));
            }
        });
        let abort = handle.abort_handle();
        jobs.insert(key.to_owned(), if queued { Job::Queued(abort) } else { Job::Running(abort) });
        Ok(true)
    }

    /// `None` if no job with this key is known to this process.
    pub fn status(&self, key: &str) -> Option<TaskStatus> {
        match self.lock().get(key)? {
            Job::Queued(_) => Some(TaskStatus::queued(self.admission.queued_message())),
            Job::Running(_) => Some(TaskStatus::running("")),
            Job::Finished(s, _) => Some(s.clone()),
        }
    }

    /// Stops a queued or running job (its status becomes ABORTED); finished jobs are left alone.
    pub fn cancel(&self, key: &str) {
        let mut jobs = self.lock();
        if let Some(Job::Running(h) | Job::Queued(h)) = jobs.get(key) {
            h.abort();
            jobs.insert(key.to_owned(), Job::Finished(TaskStatus::aborted("cancelled by DeleteTask"), Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::OnFull;
    use crate::status::Phase;

    #[tokio::test]
    async fn jobs_beyond_the_limit_queue_then_run() {
        let jobs = LocalJobs::with_admission(Admission::new("t", 1, OnFull::Queue, Duration::from_secs(1)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        assert!(jobs
            .spawn("a", async move {
                let _ = rx.await;
                TaskStatus::succeeded(None)
            })
            .unwrap());
        assert!(jobs.spawn("b", async { TaskStatus::succeeded(None) }).unwrap());
        assert!(!jobs.spawn("b", async { TaskStatus::succeeded(None) }).unwrap(), "same key, same job");
        tokio::task::yield_now().await;
        assert_eq!(jobs.status("a").unwrap().phase, Phase::Running);
        let queued = jobs.status("b").unwrap();
        assert_eq!(queued.phase, Phase::Queued);
        assert!(queued.message.contains("max_concurrency"), "{}", queued.message);
        tx.send(()).unwrap();
        for _ in 0..100 {
            if jobs.status("b").unwrap().phase == Phase::Succeeded {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the queued job never ran after the slot freed");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_with_a_system_error_instead_of_running_forever() {
        let jobs = LocalJobs::new();
        assert!(jobs
            .spawn("boom", async {
                if std::hint::black_box(true) {
                    panic!("index out of bounds in the job");
                }
                TaskStatus::succeeded(None)
            })
            .unwrap());
        for _ in 0..200 {
            let status = jobs.status("boom").unwrap();
            if status.phase != Phase::Running {
                assert_eq!(status.phase, Phase::Failed);
                let error = status.error.expect("a failed job carries its error");
                assert_eq!(error.code, crate::error::codes::INTERNAL);
                assert_eq!(error.origin, crate::error::ErrorOrigin::System);
                assert!(error.message.contains("index out of bounds in the job"), "{}", error.message);
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the panicked job is still RUNNING");
    }

    #[tokio::test]
    async fn reject_refuses_a_job_beyond_the_limit_and_cancel_frees_queued_ones() {
        let jobs = LocalJobs::with_admission(Admission::new("t", 1, OnFull::Reject, Duration::from_secs(1)));
        assert!(jobs.spawn("a", std::future::pending()).unwrap());
        let err = jobs.spawn("b", async { TaskStatus::succeeded(None) }).unwrap_err();
        assert_eq!(err.grpc_code(), tonic::Code::ResourceExhausted);
        jobs.cancel("a");
        assert_eq!(jobs.status("a").unwrap().phase, Phase::Aborted);
        tokio::task::yield_now().await;
        assert!(
            jobs.spawn("b", async { TaskStatus::succeeded(None) }).unwrap(),
            "the aborted job's slot is free again"
        );
    }
}
