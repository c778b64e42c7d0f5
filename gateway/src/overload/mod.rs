//! Overload and drain of the gRPC server (`[server] max_in_flight`, `call_timeout`,
//! `drain_timeout`).
//!
//! One tower layer in front of every service counts the calls in flight. A call beyond
//! `max_in_flight` is answered `RESOURCE_EXHAUSTED` (`TERN-A013`, with a retry hint) before
//! its body is read, so a flood costs a header block per refused call, not a request
//! buffer. Every admitted call gets a deadline: the client's `grpc-timeout` or
//! `call_timeout`, whichever is shorter (`DEADLINE_EXCEEDED`, `TERN-A010`, past it).
//!
//! Health is outside the limit and the drain: a probe must see NOT_SERVING, not a refusal.
//!
//! Shutdown ([`drain`]): health turns NOT_SERVING, new calls are refused `UNAVAILABLE`
//! (`TERN-G040`) while the listener stays open (so load balancers can still read health),
//! in-flight calls get until `drain_timeout`, then the ones left end `UNAVAILABLE`
//! (`TERN-G041`) and the server closes.
mod body;
pub mod drain;
mod layer;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::metrics::ServerSeries;

pub use layer::OverloadLayer;

/// The `[server]` settings this module enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Calls served at once, every service but health.
    pub max_in_flight: usize,
    /// The longest a call may take; a client's shorter `grpc-timeout` wins.
    pub call_timeout: Duration,
    /// How long in-flight calls may finish after a shutdown is asked for.
    pub drain_timeout: Duration,
}

/// Default `max_in_flight`: far above what one FlytePropeller sends (its agent plugin's
/// workers, each one call at a time), while bounding the worst case to
/// 1024 × `max_message_bytes` of request buffers.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Largest accepted `max_in_flight` (a drain waits for all the slots at once, a `u32`).
pub const MAX_MAX_IN_FLIGHT: usize = 1 << 20;
/// Default `call_timeout`: above every built-in agent's own bound (webhook's `max_timeout`
/// is 300 s), so it only catches calls that would otherwise hang.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Default `drain_timeout`: inside Kubernetes' default 30 s termination grace period,
/// leaving time to answer the calls cut at the deadline before SIGKILL.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl ServerLimits {
    /// Why these settings cannot be served, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.max_in_flight == 0 || self.max_in_flight > MAX_MAX_IN_FLIGHT {
            return Err(format!(
                "[server] max_in_flight must be between 1 and {MAX_MAX_IN_FLIGHT}, not {}",
                self.max_in_flight
            ));
        }
        if self.call_timeout.is_zero() {
            return Err("[server] call_timeout must be longer than zero".into());
        }
        Ok(())
    }
}

/// State shared by the layer (every connection's copy) and the drain.
pub(crate) struct Overload {
    limits: ServerLimits,
    slots: Arc<Semaphore>,
    draining: AtomicBool,
    /// Turns `true` when the drain deadline passes: every call still in flight ends.
    cut: watch::Sender<bool>,
    series: ServerSeries,
}

/// One call's `max_in_flight` slot; dropping it frees the slot.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    in_flight: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

impl Overload {
    pub(crate) fn new(mut limits: ServerLimits, series: ServerSeries) -> Arc<Self> {
        limits.max_in_flight = limits.max_in_flight.clamp(1, MAX_MAX_IN_FLIGHT);
        let (cut, _) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(limits.max_in_flight));
        Arc::new(Self { limits, slots, draining: AtomicBool::new(false), cut, series })
    }

    /// A slot for one call, or `None` when all are taken.
    fn admit(&self) -> Option<Slot> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        self.series.in_flight.inc();
        Some(Slot { _permit: permit, in_flight: self.series.in_flight.clone() })
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Calls in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.limits.max_in_flight - self.slots.available_permits()
    }

    /// Resolves once the drain deadline has passed.
    fn cut_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.cut.subscribe();
        async move {
            // An error means the sender (the server) is gone: nothing is served any more.
            let _ = rx.wait_for(|cut| *cut).await;
        }
    }
}
