//! Live progress of an execution, for the CLI to render.
use std::fmt;

use tokio::sync::mpsc;

use crate::store::ExecutionPhase;

/// One step of an execution. Attempts are numbered from 0, like `retry_attempt`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExecutionEvent {
    Started {
        execution_id: String,
        workflow: String,
    },
    /// The node's upstream nodes succeeded; it is about to be submitted.
    NodeQueued {
        node: String,
        attempt: u32,
    },
    /// The agent accepted the task (async) or is executing it (sync).
    NodeRunning {
        node: String,
        attempt: u32,
        message: String,
    },
    NodeSucceeded {
        node: String,
        attempt: u32,
    },
    /// The node was served from the cache (no agent called); `NodeSucceeded` follows.
    NodeCacheHit {
        node: String,
        attempt: u32,
        key: String,
        source_execution: String,
        source_node: String,
    },
    /// Another runner (`holder`: `<execution>/<node>`) is computing the same cache key of a
    /// `cache_serializable` task; the node waits for its result.
    NodeCacheWaiting {
        node: String,
        key: String,
        holder: String,
    },
    /// The attempt failed retryably; attempt `attempt + 1` follows.
    NodeRetrying {
        node: String,
        attempt: u32,
        code: String,
        message: String,
    },
    NodeFailed {
        node: String,
        attempt: u32,
        code: String,
        message: String,
    },
    Finished {
        execution_id: String,
        phase: ExecutionPhase,
    },
    /// The engine waits for something outside it (e.g. an agent server that does not answer).
    Waiting {
        message: String,
    },
}

impl fmt::Display for ExecutionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started { execution_id, workflow } => write!(f, "execution {execution_id} of {workflow} started"),
            Self::NodeQueued { node, attempt } => write!(f, "{node} [attempt {attempt}] queued"),
            Self::NodeRunning { node, attempt, message } if message.is_empty() => {
                write!(f, "{node} [attempt {attempt}] running")
            }
            Self::NodeRunning { node, attempt, message } => write!(f, "{node} [attempt {attempt}] running: {message}"),
            Self::NodeSucceeded { node, attempt } => write!(f, "{node} [attempt {attempt}] succeeded"),
            Self::NodeCacheHit { node, attempt, key, source_execution, source_node } => write!(
                f,
                "{node} [attempt {attempt}] cache hit {}: outputs of {source_execution}/{source_node}",
                short(key)
            ),
            Self::NodeCacheWaiting { node, key, holder } => {
                write!(f, "{node} waiting for {holder}, which is computing cache key {}", short(key))
            }
            Self::NodeRetrying { node, attempt, code, message } => {
                write!(f, "{node} [attempt {attempt}] failed, retrying: [{code}] {message}")
            }
            Self::NodeFailed { node, attempt, code, message } => {
                write!(f, "{node} [attempt {attempt}] failed: [{code}] {message}")
            }
            Self::Finished { execution_id, phase } => write!(f, "execution {execution_id} {phase}"),
            Self::Waiting { message } => f.write_str(message),
        }
    }
}

/// The first 12 hex digits of a cache key (as `tern cache list` shows them).
fn short(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

/// Optional event sink; a closed receiver is ignored (progress is best-effort).
#[derive(Debug, Clone, Default)]
pub(crate) struct Events(pub Option<mpsc::Sender<ExecutionEvent>>);

impl Events {
    pub async fn emit(&self, e: ExecutionEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(e).await;
        }
    }
}
