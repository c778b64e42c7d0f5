//! The engine's side of the execution lease (the store's side is `store::lease`): only the
//! process holding an execution's lease drives it; it renews the lease while it does, and
//! stops (leaving jobs alone) the moment it cannot prove it still holds it.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::exec::signal::RunSignal;
use crate::store::{ExecutionPhase, StateStore};

pub(crate) use crate::store::now_millis as now_ms;

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}

/// `host:pid:random`: names the driving process in `tern show` and in LeaseHeld errors.
pub(crate) fn owner_id() -> String {
    let host = this_host();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a lease `owner` (`host:pid:random`) names a process of this host that no longer
/// exists (Linux `/proc`). Anything else (another host, a live or reused pid, no `/proc`)
/// is treated as alive: the lease then has to expire.
pub(crate) fn holder_is_gone(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(_random), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    host == this_host()
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A lease this engine holds. Released explicitly when driving ends; if the driver's
/// future is dropped instead (Ctrl-C, a cancelled task), released in the background, so
/// `tern recover` need not wait for it to expire.
pub(crate) struct LeaseHold {
    store: StateStore,
    id: String,
    owner: String,
    released: bool,
}

impl LeaseHold {
    pub fn new(store: StateStore, id: &str, owner: &str) -> Self {
        Self { store, id: id.to_owned(), owner: owner.to_owned(), released: false }
    }

    pub async fn release(mut self) {
        self.released = true;
        // The next driver reads what this one wrote (writes nobody waited for linger).
        self.store.flush().await;
        if let Err(e) = self.store.release_lease(&self.id, &self.owner).await {
            tracing::warn!(execution = %self.id, error = %e, "cannot release the execution's lease; it expires by itself");
        }
    }
}

impl Drop for LeaseHold {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, id, owner) = (self.store.clone(), self.id.clone(), self.owner.clone());
            rt.spawn(async move {
                let _ = store.release_lease(&id, &owner).await;
            });
        }
    }
}

/// Renews the lease while the execution is driven, and watches its row: an abort asked
/// by another process (`tern abort`) becomes the `Abort` signal; a lease lost (taken over)
/// or unprovable (renewals failing for a whole TTL), or the execution finished by someone
/// else, becomes `Halt`. Stops with the driver (dropped).
pub(crate) struct Monitor {
    task: tokio::task::JoinHandle<()>,
    lost_to: Arc<Mutex<Option<String>>>,
}

impl Monitor {
    pub fn start(hold: &LeaseHold, ttl: Duration, signal: Arc<watch::Sender<RunSignal>>) -> Self {
        let (store, id, owner) = (hold.store.clone(), hold.id.clone(), hold.owner.clone());
        let lost_to = Arc::new(Mutex::new(None));
        let lost = lost_to.clone();
        let every = (ttl / 3).max(Duration::from_millis(20));
        let task = tokio::spawn(async move {
            let mut last_renewed = std::time::Instant::now();
            let mut abort_sent = false;
            loop {
                tokio::time::sleep(every).await;
                match store.renew_lease(&id, &owner, now_ms(), ms(ttl)).await {
                    Ok(true) => last_renewed = std::time::Instant::now(),
                    Ok(false) => {
                        let holder = store.lease(&id).await.ok().flatten().map(|l| l.owner);
                        if let Ok(mut l) = lost.lock() {
                            *l = Some(holder.unwrap_or_else(|| "another process".into()));
                        }
                        let _ = signal.send(RunSignal::Halt);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(execution = %id, error = %e, "cannot renew the execution's lease");
                        if last_renewed.elapsed() >= ttl {
                            let _ = signal.send(RunSignal::Halt);
                            return;
                        }
                    }
                }
                match store.execution_phase(&id).await {
                    Ok(Some(ExecutionPhase::Aborting)) if !abort_sent => {
                        abort_sent = true;
                        let _ = signal.send(RunSignal::Abort);
                    }
                    Ok(Some(p)) if p.is_terminal() => {
                        let _ = signal.send(RunSignal::Halt);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(execution = %id, error = %e, "cannot read the execution's phase"),
                }
            }
        });
        Self { task, lost_to }
    }

    /// Who took the lease over, if this driver lost it.
    pub fn lost_to(&self) -> Option<String> {
        self.lost_to.lock().ok().and_then(|l| l.clone())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_vanished_process_of_this_host_is_gone() {
        let me = owner_id();
        assert!(!holder_is_gone(&me), "this process is alive");
        let host = this_host();
        // Above the kernel's pid_max (at most 2^22): no such process can exist.
        assert!(holder_is_gone(&format!("{host}:99999999:abcd1234")));
        assert!(!holder_is_gone("some-other-host:99999999:abcd1234"), "another host: wait for expiry");
        assert!(!holder_is_gone("garbage"));
        assert!(!holder_is_gone(&format!("{host}:notapid:x")));
    }
}
