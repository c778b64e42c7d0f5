//! Task output caching around a node's attempts (docs/workflows.md, "Caching").
//!
//! Two hooks in `node::run_node`: [`lookup_or_reserve`] before the first attempt (a hit
//! completes the node without calling any agent) and [`CacheRun::store`] /
//! [`CacheRun::release`] when it ends. Only successes are stored. The cache never fails a
//! node: an entry that cannot be read back, or no longer matches the interface, is evicted
//! and counts as a miss; a failed lookup or store is logged and the node just runs.
mod key;
mod reserve;

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tern_agent_api::core;
use tern_agent_api::datastore::join_uri;
use tern_agent_api::outputs::check_outputs;

pub use key::{CacheKey, CachePolicy};
use reserve::{Reservation, REMOTE_POLL};

use super::attempt::NodeCtx;
use super::signal::{self, Interrupt};
use super::{NodeStart, TaskExecutionIntent};
use crate::exec::events::ExecutionEvent;
use crate::store::{
    now_millis, CacheEntry, CacheStatus, CachedOutputs, Eviction, HitAttempt, NewCacheEntry, StoreError,
};

/// Outputs up to this size are stored in the database; larger ones by the URI of the
/// producing attempt's `outputs.pb`.
const INLINE_MAX: usize = 64 * 1024;

/// What to do with a node before its first attempt.
pub(crate) enum Lookup {
    /// Served from the cache: the node succeeded with these outputs.
    Hit(core::LiteralMap),
    /// Given up while waiting for another runner of the same key (the driver said so).
    Stop,
    /// The driver stopped (halt) while waiting.
    Halt,
    /// Run it (then store or release).
    Run(CacheRun),
}

/// A cacheable node being run (or a non-cacheable one: then every method does nothing).
pub(crate) struct CacheRun {
    key: Option<CacheKey>,
    reservation: Option<Reservation>,
}

impl CacheRun {
    fn uncached() -> Self {
        Self { key: None, reservation: None }
    }

    /// After the attempt `attempt` succeeded: stores its outputs, marks the attempt, and lets
    /// waiters on the key go.
    pub(crate) async fn store(self, cx: &NodeCtx, attempt: u32, outputs: &core::LiteralMap) {
        let Some(key) = &self.key else { return };
        let run = &cx.run;
        let bytes = outputs.encode_to_vec();
        let stored = if bytes.len() <= INLINE_MAX {
            CachedOutputs::Inline(bytes)
        } else {
            CachedOutputs::Uri(join_uri(&cx.output_prefix(attempt), "outputs.pb"))
        };
        let put = run
            .store
            .cache_put(&NewCacheEntry {
                key: &key.key,
                task_project: &key.task_project,
                task_domain: &key.task_domain,
                task_name: &key.task_name,
                cache_version: &key.policy.version,
                outputs: stored,
                execution_id: &run.execution_id,
                node_id: &cx.node.id,
                attempt,
            })
            .await;
        let status = match put {
            Ok(()) => CacheStatus::Populated,
            Err(e) => {
                tracing::warn!(node = %cx.node.id, key = %key.key, error = %e, "cannot store outputs in the cache");
                CacheStatus::PutFailure
            }
        };
        if let Err(e) = run.store.set_attempt_cache(&run.execution_id, &cx.node.id, attempt, status, &key.key).await {
            tracing::warn!(node = %cx.node.id, error = %e, "cannot record the attempt's cache status");
        }
        self.release().await;
    }

    /// The node failed (nothing is cached): lets a waiter run it.
    pub(crate) async fn release(self) {
        if let Some(r) = self.reservation {
            r.release().await;
        }
    }
}

/// Before a node's first attempt in this run: a hit, or permission to run (for a
/// `cache_serializable` task, once this node holds the key's reservation: meanwhile it waits
/// for the holder's result).
pub(crate) async fn lookup_or_reserve(cx: &NodeCtx, start: &NodeStart) -> Lookup {
    let inputs = match cx.inputs.decode() {
        Ok(inputs) => inputs,
        Err(e) => {
            tracing::warn!(node = %cx.node.id, error = %e, "no cache key: running the task");
            return Lookup::Run(CacheRun::uncached());
        }
    };
    let Some(key) = CacheKey::compute(&cx.node.template, &inputs) else { return Lookup::Run(CacheRun::uncached()) };
    let run = &cx.run;
    let owner = format!("{}/{}", run.execution_id, cx.node.id);
    let attempt = match start {
        NodeStart::Fresh { attempt } => *attempt,
        // Recovery of an attempt already in flight: finish it (never a second job), taking
        // the reservation back (it is this node's own) so waiters keep waiting.
        NodeStart::Recreate { .. } | NodeStart::Resume { .. } => {
            let reservation = if key.policy.serialize {
                Reservation::take(&run.store, &key.key, &owner).await.ok().flatten()
            } else {
                None
            };
            return Lookup::Run(CacheRun { key: Some(key), reservation });
        }
    };
    let mut announced = false;
    loop {
        match signal::check(&run.signal) {
            Ok(()) => {}
            Err(Interrupt::Halt) => return Lookup::Halt,
            Err(Interrupt::GiveUp(_)) => return Lookup::Stop,
        }
        let waker = reserve::waker(&key.key);
        let woken = waker.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if let Some(outputs) = hit(cx, &key, attempt).await {
            return Lookup::Hit(outputs);
        }
        if !key.policy.serialize {
            return Lookup::Run(CacheRun { key: Some(key), reservation: None });
        }
        match Reservation::take(&run.store, &key.key, &owner).await {
            Ok(Some(r)) => {
                // The previous holder may have stored its result just before letting go.
                if let Some(outputs) = hit(cx, &key, attempt).await {
                    r.release().await;
                    return Lookup::Hit(outputs);
                }
                return Lookup::Run(CacheRun { key: Some(key), reservation: Some(r) });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(node = %cx.node.id, error = %e, "cannot reserve the cache key; running without");
                return Lookup::Run(CacheRun { key: Some(key), reservation: None });
            }
        }
        let holder = run.store.cache_reservation(&key.key).await.ok().flatten();
        if !announced {
            announced = true;
            let holder_name = holder.as_ref().map(|(o, _)| o.clone()).unwrap_or_default();
            run.events
                .emit(ExecutionEvent::NodeCacheWaiting {
                    node: cx.node.id.clone(),
                    key: key.key.clone(),
                    holder: holder_name,
                })
                .await;
        }
        tokio::select! {
            _ = woken => {}
            r = signal::sleep(&run.signal, next_look(holder.map(|(_, expires)| expires))) => match r {
                Ok(()) => {}
                Err(Interrupt::Halt) => return Lookup::Halt,
                Err(Interrupt::GiveUp(_)) => return Lookup::Stop,
            },
        }
    }
}

/// When a waiter looks at the database again (a runner in this process wakes it sooner): when
/// the holder's lease runs out (to take it over), at most about [`REMOTE_POLL`] from now, jittered
/// so waiters in several processes do not query in step.
fn next_look(expires_at_ms: Option<i64>) -> Duration {
    let jitter = Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]));
    let until_expiry = expires_at_ms
        .map(|e| Duration::from_millis(e.saturating_sub(now_millis()).max(0).unsigned_abs() + 5))
        .unwrap_or(REMOTE_POLL);
    until_expiry.min(REMOTE_POLL + jitter)
}

/// The entry of `key` when it reads back and matches the interface: copied to this attempt's
/// `outputs.pb` (the execution stays self-contained; recovery reads it there) and recorded as
/// a HIT attempt. Anything else is a miss; an unusable entry is evicted.
async fn hit(cx: &NodeCtx, key: &CacheKey, attempt: u32) -> Option<core::LiteralMap> {
    let run = &cx.run;
    let entry = match run.store.cache_get(&key.key).await {
        Ok(Some(e)) => e,
        Ok(None) => return None,
        Err(e @ StoreError::Corrupt { .. }) => {
            tracing::warn!(node = %cx.node.id, key = %key.key, error = %e, "evicting an unreadable cache entry");
            let _ = run.store.cache_evict(&Eviction::Keys(vec![key.key.clone()])).await;
            return None;
        }
        Err(e) => {
            tracing::warn!(node = %cx.node.id, error = %e, "cache lookup failed; running the task");
            return None;
        }
    };
    let outputs = match read_back(cx, &entry).await {
        Ok(o) => o,
        Err(why) => {
            tracing::warn!(node = %cx.node.id, key = %key.key, why, "evicting an unusable cache entry");
            if let Err(e) = run.store.cache_evict_stale(&entry).await {
                tracing::warn!(key = %key.key, error = %e, "cannot evict cache entry");
            }
            return None;
        }
    };
    let uri = join_uri(&cx.output_prefix(attempt), "outputs.pb");
    if let Err(e) = run.data.write(&uri, Bytes::from(outputs.encode_to_vec())).await {
        tracing::warn!(node = %cx.node.id, error = %e, "cannot copy cached outputs; running the task");
        return None;
    }
    let intent = TaskExecutionIntent::new(cx.node.template.id.as_ref(), &run.execution_id, &cx.node.id, attempt);
    let recorded = run
        .store
        .record_cache_hit(&HitAttempt {
            execution_id: &run.execution_id,
            node_id: &cx.node.id,
            attempt,
            task_type: &cx.node.category.name,
            task_version: cx.node.category.version,
            intent: &intent.to_json(),
            output_uri: &uri,
            cache_key: &key.key,
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(node = %cx.node.id, error = %e, "cannot record the cache hit; running the task");
        return None;
    }
    run.events
        .emit(ExecutionEvent::NodeCacheHit {
            node: cx.node.id.clone(),
            attempt,
            key: key.key.clone(),
            source_execution: entry.execution_id.clone(),
            source_node: entry.node_id.clone(),
        })
        .await;
    run.events.emit(ExecutionEvent::NodeSucceeded { node: cx.node.id.clone(), attempt }).await;
    Some(outputs)
}

async fn read_back(cx: &NodeCtx, entry: &CacheEntry) -> Result<core::LiteralMap, String> {
    let bytes = match &entry.stored {
        CachedOutputs::Inline(b) => Bytes::from(b.clone()),
        CachedOutputs::Uri(uri) => cx.run.data.read(uri).await.map_err(|e| format!("cannot read {uri}: {e}"))?,
    };
    let outputs = core::LiteralMap::decode(bytes).map_err(|e| format!("not a LiteralMap: {e}"))?;
    check_outputs(cx.node.template.interface.as_ref(), &outputs).map_err(|e| e.message)?;
    Ok(outputs)
}
