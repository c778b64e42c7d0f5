//! Group commit for the engine's node-attempt writes.
//!
//! Every write of an execution's progress (intents, handles, phases, outputs, the end)
//! goes through one writer task, in order. The writer takes whatever is queued, applies it
//! in one transaction and commits once: one fsync for many nodes. A caller waits for
//! durability only when the next step needs it (an intent before CreateTask, the end of an
//! execution): because batches commit in order, a durable write implies every earlier write
//! is durable too, so a downstream node's durable intent also covers its upstream results.
//!
//! A failed batch rolls back, and every execution with a write in it is *poisoned*: its
//! later writes fail without being tried, and its driver, told through [`Journal::failures`],
//! halts (nothing continues on state that is not saved). A new driver of the execution
//! (`recover`) clears the mark.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use super::records::origin_str;
use super::{b64, now, q, AttemptPhase, CacheStatus, ExecutionPhase, Pool, RecordedError, StoreError};

/// The most writes in one transaction.
const MAX_BATCH: usize = 8192;

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
        }
    }
}

struct Job {
    write: Write,
    at: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// A submitted write; [`Ticket::durable`] waits for its commit.
pub(crate) struct Ticket(oneshot::Receiver<Result<(), String>>);

impl Ticket {
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Write { reason }),
            Err(_) => Err(StoreError::Write { reason: "the state writer stopped".into() }),
        }
    }
}

/// The writer's handle (shared by every clone of the store).
pub(crate) struct Journal {
    tx: mpsc::UnboundedSender<Job>,
    poisoned: Arc<Mutex<HashMap<String, String>>>,
    failures: watch::Receiver<u64>,
}

impl Journal {
    pub fn start(pool: Pool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let poisoned = Arc::new(Mutex::new(HashMap::new()));
        let (fail_tx, failures) = watch::channel(0u64);
        tokio::spawn(run(pool, rx, poisoned.clone(), fail_tx));
        Self { tx, poisoned, failures }
    }

    pub fn submit(&self, write: Write) -> Ticket {
        let (done, rx) = oneshot::channel();
        let job = Job { write, at: now(), done };
        if let Err(e) = self.tx.send(job) {
            let _ = e.0.done.send(Err("the state writer stopped".into()));
        }
        Ticket(rx)
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
    poisoned: Arc<Mutex<HashMap<String, String>>>,
    failures: watch::Sender<u64>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
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

/// Applies one write on a transaction of either backend.
macro_rules! apply {
    ($conn:expr, $job:expr) => {{
        let t = &$job.at;
        match &$job.write {
            Write::Intent {
                exec,
                node,
                attempt,
                phase,
                task_type,
                task_version,
                agent_endpoint,
                intent,
                output_uri,
            } => {
                sqlx::query(
                    "INSERT INTO node_attempts (execution_id, node_id, attempt, phase, task_type, task_version,
                        agent_endpoint, intent, output_uri, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                     ON CONFLICT (execution_id, node_id, attempt) DO NOTHING",
                )
                .bind(exec)
                .bind(node)
                .bind(i64::from(*attempt))
                .bind(phase.as_str())
                .bind(task_type)
                .bind(i64::from(*task_version))
                .bind(agent_endpoint)
                .bind(intent)
                .bind(output_uri)
                .bind(t)
                .execute(&mut *$conn)
                .await
                .map_err(q("record intent"))?;
            }
            Write::ResourceMeta { exec, node, attempt, meta } => {
                sqlx::query(
                    "UPDATE node_attempts SET resource_meta = $4, phase = $5, updated_at = $6
                     WHERE execution_id = $1 AND node_id = $2 AND attempt = $3",
                )
                .bind(exec)
                .bind(node)
                .bind(i64::from(*attempt))
                .bind(b64(meta))
                .bind(AttemptPhase::Running.as_str())
                .bind(t)
                .execute(&mut *$conn)
                .await
                .map_err(q("record resource_meta"))?;
            }
            Write::Phase { exec, node, attempt, phase, error, outputs } => {
                let finished = phase.is_terminal().then_some(t.as_str());
                sqlx::query(
                    "UPDATE node_attempts SET phase = $4, error_code = $5, error_message = $6, updated_at = $7,
                        finished_at = $8, error_origin = $9, outputs = $10
                     WHERE execution_id = $1 AND node_id = $2 AND attempt = $3",
                )
                .bind(exec)
                .bind(node)
                .bind(i64::from(*attempt))
                .bind(phase.as_str())
                .bind(error.as_ref().map(|e| e.code.as_str()))
                .bind(error.as_ref().map(|e| e.message.as_str()))
                .bind(t)
                .bind(finished)
                .bind(error.as_ref().and_then(|e| e.origin).map(origin_str))
                .bind(outputs.as_deref().map(b64))
                .execute(&mut *$conn)
                .await
                .map_err(q("update attempt"))?;
            }
            Write::Cache { exec, node, attempt, status, key } => {
                sqlx::query(
                    "UPDATE node_attempts SET cache_status = $4, cache_key = $5
                     WHERE execution_id = $1 AND node_id = $2 AND attempt = $3",
                )
                .bind(exec)
                .bind(node)
                .bind(i64::from(*attempt))
                .bind(status.as_str())
                .bind(key)
                .execute(&mut *$conn)
                .await
                .map_err(q("set attempt cache status"))?;
            }
            Write::Finish { exec, phase, failed_node, error, outputs_uri } => {
                sqlx::query(
                    "UPDATE executions SET phase = $2, failed_node = $3, error_code = $4, error_message = $5,
                     outputs_uri = $6, updated_at = $7, finished_at = $7 WHERE id = $1",
                )
                .bind(exec)
                .bind(phase.as_str())
                .bind(failed_node.as_deref())
                .bind(error.as_ref().map(|e| e.code.as_str()))
                .bind(error.as_ref().map(|e| e.message.as_str()))
                .bind(outputs_uri.as_deref())
                .bind(t)
                .execute(&mut *$conn)
                .await
                .map_err(q("finish execution"))?;
            }
        }
    }};
}

async fn commit(pool: &Pool, batch: &[Job]) -> Result<(), StoreError> {
    match pool {
        Pool::Sqlite(p) => {
            let mut tx = p.begin().await.map_err(q("begin a batch"))?;
            for job in batch {
                apply!(tx, job);
            }
            tx.commit().await.map_err(q("commit a batch"))
        }
        Pool::Postgres(p) => {
            let mut tx = p.begin().await.map_err(q("begin a batch"))?;
            for job in batch {
                apply!(tx, job);
            }
            tx.commit().await.map_err(q("commit a batch"))
        }
    }
}
