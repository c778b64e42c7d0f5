//! The `sleep` agent: a task that is RUNNING until a fixed time, then SUCCEEDED.
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

use crate::bounded::BoundedMap;
use crate::duration::sleep_duration;

pub const TASK_TYPE: &str = "sleep";

/// How many handles (and cancellations) are remembered for idempotency.
pub const REMEMBERED: usize = 65_536;

/// The handle: everything `get` needs, so any gateway replica can answer it.
#[derive(Debug, Serialize, Deserialize)]
struct SleepHandle {
    key: String,
    until_unix_ms: u64,
}

#[derive(Debug)]
pub struct SleepAgent {
    /// idempotency key → the `resource_meta` bytes the first create returned.
    created: Mutex<BoundedMap<String, Vec<u8>>>,
    /// Keys cancelled by `delete` before they were due.
    cancelled: Mutex<BoundedMap<String, ()>>,
}

impl Default for SleepAgent {
    fn default() -> Self {
        Self::with_capacity(REMEMBERED)
    }
}

impl SleepAgent {
    /// Remembers the last `capacity` handles and cancellations.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { created: Mutex::new(BoundedMap::new(capacity)), cancelled: Mutex::new(BoundedMap::new(capacity)) }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        if let Some(existing) = idempotency_key.as_ref().and_then(|k| lock(&self.created).get(k).cloned()) {
            return Ok(ResourceMeta::from_bytes(existing));
        }
        let duration = sleep_duration(&task.inputs)?;
        let until_unix_ms = now_unix_ms().saturating_add(duration.as_millis().try_into().unwrap_or(u64::MAX));
        let key = idempotency_key.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let meta = ResourceMeta::encode(&SleepHandle { key, until_unix_ms })?;
        Ok(match idempotency_key {
            // A concurrent create with the same key may have won: return its handle.
            Some(k) => ResourceMeta::from_bytes(lock(&self.created).get_or_insert(k, meta.into_bytes())),
            None => meta,
        })
    }

    async fn get(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let handle: SleepHandle = meta.decode()?;
        if lock(&self.cancelled).contains(&handle.key) {
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
            lock(&self.cancelled).get_or_insert(handle.key, ());
        }
        Ok(())
    }
}
