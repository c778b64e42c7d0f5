//! The drain that runs when a shutdown is asked for, before the listener closes.
use std::sync::atomic::Ordering;
use std::time::Duration;

use tern_agent_api::server::SERVICE_NAMES;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use super::status::seconds;
use super::Overload;

/// How long the calls cut at the drain deadline get to send their answer.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// How long connections get to close once the drain is over (a client may hold a health
/// watch open forever); then the server stops without them.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The longest a whole shutdown takes with `drain_timeout`.
pub fn shutdown_bound(drain_timeout: Duration) -> Duration {
    drain_timeout + CUT_GRACE + CLOSE_GRACE
}

/// Health NOT_SERVING first, then refuse new calls, wait for those in flight until
/// `drain_timeout`, then end the rest.
pub(crate) async fn drain(state: &Overload, health: &HealthReporter) {
    health.set_service_status("", ServingStatus::NotServing).await;
    for name in SERVICE_NAMES {
        health.set_service_status(name, ServingStatus::NotServing).await;
    }
    state.draining.store(true, Ordering::Release);
    let limits = state.limits;
    let in_flight = state.in_flight();
    tracing::info!(in_flight, drain_timeout = %seconds(limits.drain_timeout), "draining: health NOT_SERVING, new calls refused");
    // Every slot back means every call (and its reply) is finished.
    let all = u32::try_from(limits.max_in_flight).unwrap_or(u32::MAX);
    let everything_back = || state.slots.acquire_many(all);
    if tokio::time::timeout(limits.drain_timeout, everything_back()).await.is_ok() {
        tracing::info!("drained: every in-flight call finished");
        return;
    }
    let left = state.in_flight();
    tracing::warn!(left, "drain deadline {} passed: ending the calls still in flight", seconds(limits.drain_timeout));
    state.cut.send_replace(true);
    if tokio::time::timeout(CUT_GRACE, everything_back()).await.is_err() {
        tracing::warn!(
            left = state.in_flight(),
            "calls still open after the drain deadline; closing their connections"
        );
    }
}
