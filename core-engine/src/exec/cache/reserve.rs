//! Cache serialize: one runner per key.
//!
//! Across processes sharing one state database the runner holds a row in
//! `cache_reservations` (owner + expiry) and heartbeats it while it works; a row past its
//! expiry is taken over (the holder crashed), as Flyte's datacatalog reservations are. The
//! owner is `<execution id>/<node id>`, so an execution recovered after a crash takes its own
//! reservation back at once instead of waiting for it to expire.
//!
//! Within one process, waiters sleep on a per-key [`Notify`] that the runner wakes when it
//! stores its result or lets go, and poll the database only slowly (for runners in other
//! processes): no polling storm when many executions wait on one key.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::store::{now_millis, StateStore, StoreError};

/// How often a runner extends its reservation.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a reservation lives without a heartbeat (then anyone may take it over).
pub(super) const LEASE: Duration = Duration::from_secs(20);
/// How often a waiter looks at the database for a runner in another process.
pub(super) const REMOTE_POLL: Duration = Duration::from_secs(1);

fn wakers() -> &'static Mutex<HashMap<String, Arc<Notify>>> {
    static WAKERS: OnceLock<Mutex<HashMap<String, Arc<Notify>>>> = OnceLock::new();
    WAKERS.get_or_init(Default::default)
}

/// The notifier a waiter on `key` sleeps on (register with `enable` before checking the
/// database, so a wake between the check and the sleep is not lost).
pub(super) fn waker(key: &str) -> Arc<Notify> {
    let mut map = wakers().lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key.to_owned()).or_default().clone()
}

/// Wakes this process's waiters on `key` (after the database changed).
pub(super) fn wake(key: &str) {
    let mut map = wakers().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = map.remove(key) {
        n.notify_waiters();
    }
}

fn expiry() -> i64 {
    now_millis().saturating_add(i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX))
}

/// A held reservation. Dropping it stops the heartbeat but keeps the row, which then
/// expires: a dropped runner (an interrupted execution) may be recovered and take it back.
pub(crate) struct Reservation {
    store: StateStore,
    key: String,
    owner: String,
    heartbeat: JoinHandle<()>,
}

impl Reservation {
    /// Takes the reservation of `key` when free, expired or already `owner`'s.
    pub(super) async fn take(store: &StateStore, key: &str, owner: &str) -> Result<Option<Self>, StoreError> {
        if !store.cache_reserve(key, owner, expiry()).await? {
            return Ok(None);
        }
        let heartbeat = tokio::spawn({
            let (store, key, owner) = (store.clone(), key.to_owned(), owner.to_owned());
            async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    match store.cache_heartbeat(&key, &owner, expiry()).await {
                        Ok(true) => {}
                        Ok(false) => {
                            // Taken over after a stall longer than the lease: the other runner's
                            // result will replace ours in the cache; nothing else to do.
                            tracing::warn!(key, owner, "cache reservation was taken over");
                            return;
                        }
                        Err(e) => tracing::warn!(key, owner, error = %e, "cannot heartbeat cache reservation"),
                    }
                }
            }
        });
        Ok(Some(Self { store: store.clone(), key: key.to_owned(), owner: owner.to_owned(), heartbeat }))
    }

    /// Lets go (the result is stored, or the runner failed) and wakes local waiters.
    pub(super) async fn release(self) {
        self.heartbeat.abort();
        if let Err(e) = self.store.cache_release(&self.key, &self.owner).await {
            // The row expires by itself; waiters take over then.
            tracing::warn!(key = %self.key, error = %e, "cannot release cache reservation");
        }
        wake(&self.key);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}
