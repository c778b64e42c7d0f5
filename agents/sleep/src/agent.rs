//! The `sleep` agent: a task that is RUNNING until a fixed time, then SUCCEEDED.
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

use crate::duration::sleep_duration;
use crate::records::{now_unix_ms, Claimed, JobRecord, Records};

pub const TASK_TYPE: &str = "sleep";

/// How long the records of ended sleeps are kept by default.
pub const KEEP_RECORDS: Duration = Duration::from_secs(7 * 24 * 3600);

/// The handle: everything `get` needs, so any gateway replica can answer it.
#[derive(Debug, Serialize, Deserialize)]
struct SleepHandle {
    key: String,
    until_unix_ms: u64,
}

#[derive(Debug)]
pub struct SleepAgent {
    records: Records,
}

impl SleepAgent {
    /// Keeps its job records under `<state_dir>/jobs` for `keep` after each sleep ends.
    pub fn new(state_dir: &Path, keep: Duration) -> Self {
        Self { records: Records::new(state_dir, keep) }
    }

    /// The durable records (one per job started: the submission count).
    pub fn records(&self) -> &Records {
        &self.records
    }
}

/// Who asked, for the record.
fn requester(ctx: &TaskContext) -> (String, String, u32, String) {
    let id = ctx.execution.as_ref().and_then(|m| m.task_execution_id.as_ref());
    let node = id.and_then(|i| i.node_execution_id.as_ref());
    (
        node.and_then(|n| n.execution_id.as_ref()).map(|e| e.name.clone()).unwrap_or_default(),
        node.map(|n| n.node_id.clone()).unwrap_or_default(),
        id.map(|i| i.retry_attempt).unwrap_or_default(),
        id.and_then(|i| i.task_id.as_ref()).map(|t| t.name.clone()).unwrap_or_default(),
    )
}

#[async_trait]
impl AsyncAgent for SleepAgent {
    fn name(&self) -> &str {
        TASK_TYPE
    }

    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new(TASK_TYPE, 0)]
    }

    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let idempotency_key = ctx.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
        if let Some(existing) = idempotency_key.as_deref().map(|k| self.records.find(k)).transpose()?.flatten() {
            return Ok(ResourceMeta::from_bytes(existing.resource_meta.into_bytes()));
        }
        let duration = sleep_duration(&task.inputs)?;
        let created_unix_ms = now_unix_ms();
        let until_unix_ms = created_unix_ms.saturating_add(duration.as_millis().try_into().unwrap_or(u64::MAX));
        let key = idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let meta = ResourceMeta::encode(&SleepHandle { key: key.clone(), until_unix_ms })?;
        let resource_meta = String::from_utf8(meta.into_bytes())
            .map_err(|e| AgentError::internal(crate::codes::STATE_DIR, format!("the sleep handle is not text: {e}")))?;
        let (execution, node, attempt, task_name) = requester(ctx);
        let record =
            JobRecord { key, resource_meta, created_unix_ms, until_unix_ms, execution, node, attempt, task: task_name };
        self.records.cleanup_if_due();
        // A concurrent create with the same key (this process or another) may have won: its handle counts.
        let record = match self.records.claim(record)? {
            Claimed::New(r) | Claimed::Existing(r) => r,
        };
        Ok(ResourceMeta::from_bytes(record.resource_meta.into_bytes()))
    }

    async fn get(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle: SleepHandle = meta.decode()?;
        if self.records.is_cancelled(&handle.key) {
            return Ok(TaskStatus::aborted("cancelled by DeleteTask"));
        }
        let now = now_unix_ms();
        if now < handle.until_unix_ms {
            let left = Duration::from_millis(handle.until_unix_ms - now);
            return Ok(TaskStatus::running(format!("sleeping, {:.1} s left", left.as_secs_f64())));
        }
        Ok(TaskStatus::succeeded(None))
    }

    /// Cancels a sleep that is not yet over; a finished one stays SUCCEEDED.
    async fn delete(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<(), AgentError> {
        let handle: SleepHandle = meta.decode()?;
        if now_unix_ms() < handle.until_unix_ms {
            self.records.cancel(&handle.key)?;
        }
        Ok(())
    }
}
