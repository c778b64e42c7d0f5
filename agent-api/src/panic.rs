//! Turning a caught panic into an error: one wording for every place that contains one
//! (a dispatched call, a local job), so operators search for one message.
use std::any::Any;

use crate::error::{codes, AgentError};

/// The panic's message (`panic!("…")` payloads are `&str` or `String`).
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A system error (`TERN-A012`, permanent) saying what panicked during what.
pub fn panic_error(what: &str, op: &str, panic: &(dyn Any + Send)) -> AgentError {
    let message = panic_message(panic);
    tracing::error!(what, op, panic = %message, "panicked");
    AgentError::internal(codes::INTERNAL, format!("{what} panicked during {op}: {message}"))
}
