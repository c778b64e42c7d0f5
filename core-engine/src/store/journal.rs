//! Group commit for the engine's node-attempt writes.
//!
//! Every write of an execution's progress (intents, handles, phases, outputs, the end)
//! goes through one writer task, in order. The writer takes whatever is queued, applies it
//! in one transaction and commits once: one fsync for many nodes. A caller waits for
//! durability only when the next step needs it (an intent before CreateTask, the end of an
//! execution): because batches commit in order, a durable write implies every earlier write
//! is durable too, so a downstream node's durable intent also covers its upstream results.
//!
//! Writes nobody waits for (handles, phases, outputs) are not committed on their own: they
//! ride with the next durable write, or are committed after [`LINGER`] at the latest. Losing
//! them in a crash is safe by design (recovery re-issues the create with the same key and
//! attaches, or polls the recorded handle again); committing each alone would cost an fsync
//! and a transaction of CPU per wave of nodes for nothing.
//!
//! A failed batch rolls back, and every execution with a write in it is *poisoned*: its
//! later writes fail without being tried, and its driver, told through [`Journal::failures`],
//! halts (nothing continues on state that is not saved). A new driver of the execution
//! (`recover`) clears the mark.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::{now, AttemptPhase, CacheStatus, ExecutionPhase, Pool, RecordedError, StoreError};

mod apply;
use apply::commit;

/// The most writes in one transaction.
const MAX_BATCH: usize = 8192;

/// The longest a write nobody waits for stays uncommitted (what `tern show` may lag behind).
pub(crate) const LINGER: Duration = Duration::from_millis(20);

/// One write of an execution's progress.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// A node attempt's intent (an existing row is kept: recovery re-issuing a create).
    Intent {
        exec: String,
        node: String,
        attempt: u32,
        phase: AttemptPhase,
        task_type: String,
        task_version: i32,
        agent_endpoint: String,
        intent: String,
        output_uri: String,
    },
    /// The handle CreateTask returned; the attempt is RUNNING.
    ResourceMeta { exec: String, node: String, attempt: u32, meta: Vec<u8> },
    /// An attempt's phase, its error, and (succeeded, small) its outputs inline.
    Phase {
        exec: String,
        node: String,
        attempt: u32,
        phase: AttemptPhase,
        error: Option<RecordedError>,
        outputs: Option<Vec<u8>>,
    },
    /// How the cache was involved in an attempt.
    Cache { exec: String, node: String, attempt: u32, status: CacheStatus, key: String },
    /// Nothing: waiting for it waits for every write queued before it ([`Journal::flush`]).
    Barrier,
    /// The execution's end.
    Finish {
        exec: String,
        phase: ExecutionPhase,
        failed_node: Option<String>,
        error: Option<RecordedError>,
        outputs_uri: Option<String>,
    },
}

impl Write {
    fn execution(&self) -> &str {
        match self {
            Self::Intent { exec, .. }
            | Self::ResourceMeta { exec, .. }
            | Self::Phase { exec, .. }
            | Self::Cache { exec, .. }
            | Self::Finish { exec, .. } => exec,
            Self::Barrier => "",
        }
    }
}

struct Job {
    /// Submission order: a waiter asks for every write up to its own.
    seq: u64,
    write: Write,
    at: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// Who waits for durability: the highest submission asked for, and the writer's wake-up.
#[derive(Default)]
struct Flush {
    wanted: AtomicU64,
    wake: Notify,
}

impl Flush {
    fn ask(&self, seq: u64) {
        self.wanted.fetch_max(seq, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Someone waits for a write in `batch` (or queued before it).
    fn wanted_in(&self, batch: &[Job]) -> bool {
        batch.first().is_some_and(|j| self.wanted.load(Ordering::Acquire) >= j.seq)
    }
}

/// A submitted write; [`Ticket::durable`] waits for its commit.
pub(crate) struct Ticket {
    seq: u64,
    done: oneshot::Receiver<Result<(), String>>,
    flush: Arc<Flush>,
}

impl Ticket {
    /// Asks the writer to commit now (this write and everything queued before it) and waits.
    pub async fn durable(self) -> Result<(), StoreError> {
        self.flush.ask(self.seq);
        match self.done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Write { reason }),
            Err(_) => Err(StoreError::Write { reason: "the state writer stopped".into() }),
        }
    }
}

/// The writer's handle (shared by every clone of the store).
pub(crate) struct Journal {
    tx: mpsc::UnboundedSender<Job>,
    seq: AtomicU64,
    flush: Arc<Flush>,
    poisoned: Arc<Mutex<HashMap<String, String>>>,
    failures: watch::Receiver<u64>,
}

impl Journal {
    pub fn start(pool: Pool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let poisoned = Arc::new(Mutex::new(HashMap::new()));
        let (fail_tx, failures) = watch::channel(0u64);
        let flush = Arc::new(Flush::default());
        tokio::spawn(run(pool, rx, flush.clone(), poisoned.clone(), fail_tx));
        Self { tx, seq: AtomicU64::new(1), flush, poisoned, failures }
    }

    pub fn submit(&self, write: Write) -> Ticket {
        let (done, rx) = oneshot::channel();
        let seq = self.seq.fetch_add(1, Ordering::AcqRel);
        let job = Job { seq, write, at: now(), done };
        if let Err(e) = self.tx.send(job) {
            let _ = e.0.done.send(Err("the state writer stopped".into()));
        }
        Ticket { seq, done: rx, flush: self.flush.clone() }
    }

    /// Commits every write queued so far (reads after it see them).
    pub async fn flush(&self) {
        if let Err(e) = self.submit(Write::Barrier).durable().await {
            // The writes' own executions are poisoned and halt; a reader goes on.
            tracing::debug!(error = %e, "flushing the state writer");
        }
    }

    /// Changes whenever a batch fails; then [`Journal::poisoned`] tells which executions.
    pub fn failures(&self) -> watch::Receiver<u64> {
        self.failures.clone()
    }

    /// Why `exec`'s writes fail, if they do.
    pub fn poisoned(&self, exec: &str) -> Option<String> {
        self.poisoned.lock().ok().and_then(|p| p.get(exec).cloned())
    }

    /// A new driver takes over `exec`: its writes are tried again.
    pub fn clear(&self, exec: &str) {
        if let Ok(mut p) = self.poisoned.lock() {
            p.remove(exec);
        }
    }
}

async fn run(
    pool: Pool,
    mut rx: mpsc::UnboundedReceiver<Job>,
    flush: Arc<Flush>,
    poisoned: Arc<Mutex<HashMap<String, String>>>,
    failures: watch::Sender<u64>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        gather(&mut rx, &flush, &mut batch).await;
        // Writes of a poisoned execution are not tried: they would land after a gap.
        let (mut live, mut refused) = (Vec::with_capacity(batch.len()), Vec::new());
        {
            let p = poisoned.lock().map(|p| p.clone()).unwrap_or_default();
            for job in batch {
                match p.get(job.write.execution()) {
                    Some(reason) => refused.push((job, reason.clone())),
                    None => live.push(job),
                }
            }
        }
        for (job, reason) in refused {
            let _ = job.done.send(Err(reason));
        }
        if live.is_empty() {
            continue;
        }
        match commit(&pool, &live).await {
            Ok(()) => {
                for job in live {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, writes = live.len(), "a state write failed; its executions halt");
                if let Ok(mut p) = poisoned.lock() {
                    for job in &live {
                        p.insert(job.write.execution().to_owned(), reason.clone());
                    }
                }
                for job in live {
                    let _ = job.done.send(Err(reason.clone()));
                }
                failures.send_modify(|n| *n += 1);
            }
        }
    }
}

/// Adds to `batch` until someone waits for durability, [`LINGER`] passes or the batch is full.
async fn gather(rx: &mut mpsc::UnboundedReceiver<Job>, flush: &Flush, batch: &mut Vec<Job>) {
    let linger = tokio::time::sleep(LINGER);
    tokio::pin!(linger);
    loop {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() >= MAX_BATCH || flush.wanted_in(batch) {
            return;
        }
        tokio::select! {
            biased;
            // A wake-up for a write already committed leaves a stale permit: check again.
            () = flush.wake.notified() => continue,
            job = rx.recv() => match job {
                Some(job) => batch.push(job),
                None => return,
            },
            () = &mut linger => return,
        }
    }
}
