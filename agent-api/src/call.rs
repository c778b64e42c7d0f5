//! [`CallContext`]: what the transport knows about the call being served (its deadline,
//! who made it), carried alongside the request to every layer below the gRPC adapter
//! without widening the [`AgentClient`](crate::client::AgentClient) trait.
//!
//! The gRPC adapter opens a scope for each call; anything running inside it (the gateway's
//! router, the in-process dispatcher) reads [`CallContext::current`]. Outside a scope
//! (embedded calls) there is no context and nothing is restricted.
use std::time::{Duration, Instant};

tokio::task_local! {
    static CALL: CallContext;
}

/// The transport's facts about one call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// When the caller stops waiting (from `grpc-timeout`).
    pub deadline: Option<Instant>,
    /// Request extensions set by the transport's layers (e.g. the authenticated caller).
    pub extensions: http::Extensions,
}

impl CallContext {
    /// From a gRPC request's metadata and extensions.
    pub fn from_parts(metadata: &tonic::metadata::MetadataMap, extensions: http::Extensions) -> Self {
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|d| Instant::now() + d);
        Self { deadline, extensions }
    }

    /// The context of the call being served, if any.
    pub fn current() -> Option<CallContext> {
        CALL.try_with(Clone::clone).ok()
    }

    /// A value the transport attached to the current call (e.g. its principal).
    pub fn current_extension<T: Clone + Send + Sync + 'static>() -> Option<T> {
        CALL.try_with(|c| c.extensions.get::<T>().cloned()).ok().flatten()
    }

    /// The current call's deadline.
    pub fn current_deadline() -> Option<Instant> {
        CALL.try_with(|c| c.deadline).ok().flatten()
    }

    /// Runs `fut` with this context current.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CALL.scope(self, fut).await
    }
}

/// `grpc-timeout` is an ASCII integer of at most 8 digits followed by a unit:
/// H, M, S, m (milli), u (micro), n (nano).
pub fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeouts_and_refuses_garbage() {
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        for bad in ["", "S", "10", "10x", "123456789S", "-1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_context_is_visible_inside_its_scope_only() {
        #[derive(Clone, PartialEq, Debug)]
        struct Who(&'static str);
        let mut ext = http::Extensions::new();
        ext.insert(Who("propeller"));
        let ctx = CallContext { deadline: None, extensions: ext };
        let seen = ctx.scope(async { CallContext::current_extension::<Who>() }).await;
        assert_eq!(seen, Some(Who("propeller")));
        assert_eq!(CallContext::current_extension::<Who>(), None);
    }
}
