//! Admission control: at most `max_concurrency` tasks of one agent at once on a gateway.
//!
//! Two scopes, declared by the agent ([`AdmissionScope`](crate::factory::AdmissionScope)):
//! - **call**: a slot is held for the length of a create/execute call (agents whose work
//!   runs elsewhere: a warehouse, a cluster, an HTTP endpoint);
//! - **job**: a slot is held for the life of a job run inside the gateway process
//!   ([`LocalJobs`](crate::local_jobs::LocalJobs): DuckDB queries, shell commands).
//!
//! When every slot is taken, `on_full` decides: `queue` waits (a call up to
//! `queue_timeout`; a job reports `QUEUED` until a slot frees), `reject` answers
//! `RESOURCE_EXHAUSTED` at once with a retry hint.
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::AgentError;

/// What happens to work that finds every slot taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Wait for a slot.
    #[default]
    Queue,
    /// Refuse with `RESOURCE_EXHAUSTED` and a retry hint.
    Reject,
}

/// How long a refused caller is told to wait before trying again: when a slot frees is
/// unknown, so this is a hint, not a promise.
const RETRY_HINT: Duration = Duration::from_secs(1);

struct Limit {
    max: usize,
    slots: Arc<Semaphore>,
    on_full: OnFull,
    queue_timeout: Duration,
}

/// Counts shared by an admission and its slots (for metrics, limited or not).
#[derive(Default)]
struct Counts {
    in_use: AtomicUsize,
    waiting: AtomicUsize,
}

struct Inner {
    agent: String,
    limit: Option<Limit>,
    counts: Counts,
}

/// The admission policy of one agent. Cheap to clone; clones share the slots.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

impl Default for Admission {
    fn default() -> Self {
        Self::unlimited()
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner.limit {
            None => f.write_str("Admission(unlimited)"),
            Some(l) => write!(f, "Admission({} of {} for {}, {:?})", self.in_use(), l.max, self.inner.agent, l.on_full),
        }
    }
}

/// A held slot; dropping it frees the slot.
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({})", self.inner.agent)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.counts.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a waiter for as long as it waits.
struct Waiting(Arc<Inner>);

impl Waiting {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.counts.waiting.fetch_add(1, Ordering::Relaxed);
        Self(inner.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.counts.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a job gets from [`Admission::admit_job`].
pub enum JobAdmission {
    /// A slot is free (or there is no limit): start now.
    Now(Slot),
    /// Every slot is taken: the job waits for this future before it starts.
    Wait(Pin<Box<dyn Future<Output = Slot> + Send>>),
}

fn slot(inner: &Arc<Inner>, permit: Option<OwnedSemaphorePermit>) -> Slot {
    inner.counts.in_use.fetch_add(1, Ordering::Relaxed);
    Slot { _permit: permit, inner: inner.clone() }
}

impl Admission {
    /// No limit (slots are still counted, for metrics).
    pub fn unlimited() -> Self {
        Self::named_unlimited("agent")
    }

    /// No limit, counting slots for `agent`.
    pub fn named_unlimited(agent: impl Into<String>) -> Self {
        Self { inner: Arc::new(Inner { agent: agent.into(), limit: None, counts: Counts::default() }) }
    }

    /// At most `max` (at least 1) at once for `agent`.
    pub fn new(agent: impl Into<String>, max: usize, on_full: OnFull, queue_timeout: Duration) -> Self {
        let max = max.max(1);
        let limit = Limit { max, slots: Arc::new(Semaphore::new(max)), on_full, queue_timeout };
        Self { inner: Arc::new(Inner { agent: agent.into(), limit: Some(limit), counts: Counts::default() }) }
    }

    /// The limit, or `None` when unlimited.
    pub fn max(&self) -> Option<usize> {
        self.inner.limit.as_ref().map(|l| l.max)
    }

    /// What happens when every slot is taken (`Queue` when unlimited).
    pub fn on_full(&self) -> OnFull {
        self.inner.limit.as_ref().map(|l| l.on_full).unwrap_or_default()
    }

    /// How long a call waits for a slot under `Queue` (zero when unlimited).
    pub fn queue_timeout(&self) -> Duration {
        self.inner.limit.as_ref().map(|l| l.queue_timeout).unwrap_or_default()
    }

    /// Slots taken now.
    pub fn in_use(&self) -> usize {
        self.inner.counts.in_use.load(Ordering::Relaxed)
    }

    /// Calls and jobs waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.inner.counts.waiting.load(Ordering::Relaxed)
    }

    fn full(&self, limit: &Limit, waited: Option<Duration>) -> AgentError {
        let why = match waited {
            Some(d) => format!("no slot freed within {} ms", d.as_millis()),
            None => "[agents.*] on_full = \"reject\"".to_owned(),
        };
        AgentError::resource_exhausted(
            format!(
                "agent {:?} is at its concurrency limit ({} of max_concurrency = {} in use; {why}); retry later",
                self.inner.agent, limit.max, limit.max
            ),
            Some(RETRY_HINT),
        )
    }

    /// A slot for the length of one call: waits up to `queue_timeout` (queue) or refuses
    /// at once (reject).
    pub async fn admit_call(&self) -> Result<Slot, AgentError> {
        let Some(limit) = &self.inner.limit else { return Ok(slot(&self.inner, None)) };
        if let Ok(permit) = limit.slots.clone().try_acquire_owned() {
            return Ok(slot(&self.inner, Some(permit)));
        }
        match limit.on_full {
            OnFull::Reject => Err(self.full(limit, None)),
            OnFull::Queue => {
                let _waiting = Waiting::new(&self.inner);
                match tokio::time::timeout(limit.queue_timeout, limit.slots.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Ok(slot(&self.inner, Some(permit))),
                    // The semaphore is never closed; a closed one would mean shutdown.
                    Ok(Err(_)) | Err(_) => Err(self.full(limit, Some(limit.queue_timeout))),
                }
            }
        }
    }

    /// A slot for a job's whole life: `Now` when free, `Wait` when queued, an error when
    /// full and `reject`.
    pub fn admit_job(&self) -> Result<JobAdmission, AgentError> {
        let Some(limit) = &self.inner.limit else { return Ok(JobAdmission::Now(slot(&self.inner, None))) };
        if let Ok(permit) = limit.slots.clone().try_acquire_owned() {
            return Ok(JobAdmission::Now(slot(&self.inner, Some(permit))));
        }
        match limit.on_full {
            OnFull::Reject => Err(self.full(limit, None)),
            OnFull::Queue => {
                let slots = limit.slots.clone();
                let inner = self.inner.clone();
                let waiting = Waiting::new(&inner);
                Ok(JobAdmission::Wait(Box::pin(async move {
                    let permit = slots.acquire_owned().await.ok();
                    drop(waiting);
                    slot(&inner, permit)
                })))
            }
        }
    }

    /// What a queued job reports while it waits.
    pub fn queued_message(&self) -> String {
        match &self.inner.limit {
            Some(l) => format!(
                "waiting for a slot: all {} of {}'s slots (max_concurrency) are in use",
                l.max, self.inner.agent
            ),
            None => "waiting to start".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{codes, ErrorClass};

    #[tokio::test]
    async fn reject_refuses_with_a_hint_and_frees_on_drop() {
        let a = Admission::new("duckdb", 1, OnFull::Reject, Duration::from_secs(1));
        let held = a.admit_call().await.unwrap();
        assert_eq!(a.in_use(), 1);
        let err = a.admit_call().await.unwrap_err();
        assert_eq!(err.code, codes::RESOURCE_EXHAUSTED);
        assert_eq!(err.class, ErrorClass::ResourceExhausted);
        assert!(err.retry_after.is_some() && err.message.contains("max_concurrency = 1"), "{err}");
        assert!(a.admit_job().is_err());
        drop(held);
        assert_eq!(a.in_use(), 0);
        assert!(a.admit_call().await.is_ok());
    }

    #[tokio::test]
    async fn queue_waits_for_a_slot_then_times_out() {
        let a = Admission::new("x", 1, OnFull::Queue, Duration::from_millis(50));
        let held = a.admit_call().await.unwrap();
        let err = a.admit_call().await.unwrap_err();
        assert!(err.message.contains("within 50 ms"), "{err}");
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.admit_call().await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        assert!(waiter.await.unwrap());
        let JobAdmission::Now(slot) = a.admit_job().unwrap() else { panic!("a free slot must admit at once") };
        let JobAdmission::Wait(wait) = a.admit_job().unwrap() else { panic!("a full queue must make the job wait") };
        drop(slot);
        let _slot = tokio::time::timeout(Duration::from_secs(1), wait).await.expect("the queued job gets the freed slot");
    }

    #[tokio::test]
    async fn unlimited_never_refuses_and_still_counts() {
        let a = Admission::unlimited();
        let slots: Vec<Slot> = futures::future::join_all((0..100).map(|_| a.admit_call())).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(a.max(), None);
        assert_eq!(a.in_use(), 100);
        drop(slots);
        assert_eq!(a.in_use(), 0);
    }

    #[tokio::test]
    async fn waiters_are_counted_while_they_wait() {
        let a = Admission::new("x", 1, OnFull::Queue, Duration::from_secs(5));
        let held = a.admit_call().await.unwrap();
        let JobAdmission::Wait(job) = a.admit_job().unwrap() else { panic!("must wait") };
        let call = {
            let a = a.clone();
            tokio::spawn(async move { a.admit_call().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!((a.in_use(), a.waiting()), (1, 2));
        drop(held);
        call.await.unwrap().unwrap();
        let job_slot = tokio::time::timeout(Duration::from_secs(1), job).await.expect("the job gets a slot");
        assert_eq!((a.in_use(), a.waiting()), (1, 0));
        drop(job_slot);
        assert_eq!(a.in_use(), 0);
    }
}
