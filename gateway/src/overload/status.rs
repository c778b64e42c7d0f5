//! The answers of the overload layer, as Tern errors (code, class and retry hint travel
//! in metadata like every other Tern error).
use std::time::Duration;

use tern_agent_api::error::{AgentError, ErrorClass, ErrorOrigin, Retry};
use tonic::Status;

/// A new call while the gateway drains.
pub const DRAINING: &str = "TERN-G040";
/// An in-flight call still running when the drain deadline passed.
pub const DRAIN_DEADLINE: &str = "TERN-G041";

/// How long a refused caller is told to wait: in-flight calls are short (a create or a
/// poll), so a slot is likely free within a second.
const RETRY_HINT: Duration = Duration::from_secs(1);

/// `30s`, `0.5s`: durations as the configuration writes them.
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

pub(crate) fn full(max_in_flight: usize) -> Status {
    AgentError::resource_exhausted(
        format!("the gateway is at its limit of {max_in_flight} calls in flight ([server] max_in_flight); retry later"),
        Some(RETRY_HINT),
    )
    .into_status()
}

pub(crate) fn draining() -> Status {
    unavailable(DRAINING, "gateway shutting down: not accepting new calls; retry on another replica".into())
}

pub(crate) fn drain_deadline(drain_timeout: Duration) -> Status {
    unavailable(
        DRAIN_DEADLINE,
        format!(
            "gateway shutting down (drain deadline {} passed): the call was ended unfinished",
            seconds(drain_timeout)
        ),
    )
}

/// Past the call's deadline: `by_server` when the gateway's `call_timeout` was the shorter.
pub(crate) fn deadline(after: Duration, by_server: bool) -> Status {
    let whose = if by_server {
        "the gateway's call deadline ([server] call_timeout)"
    } else {
        "the caller's deadline (grpc-timeout)"
    };
    AgentError::deadline_exceeded(format!("the call did not finish within {} ({whose})", seconds(after))).into_status()
}

fn unavailable(code: &'static str, message: String) -> Status {
    AgentError::new(code, message, ErrorOrigin::System, Retry::Retryable, ErrorClass::Unavailable).into_status()
}
