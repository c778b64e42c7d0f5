//! The tower layer in front of every gRPC service: admission against `max_in_flight`,
//! refusal while draining, and each call's deadline.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use tern_agent_api::call::parse_grpc_timeout;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codegen::Service;

use super::body::GuardedBody;
use super::{status, Overload};

/// Health answers during overload and drain: probes must read NOT_SERVING, not a refusal.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Wraps the server's routes; see the module documentation.
#[derive(Clone)]
pub struct OverloadLayer {
    state: Arc<Overload>,
}

impl OverloadLayer {
    pub(crate) fn new(state: Arc<Overload>) -> Self {
        Self { state }
    }
}

impl<S> tower_layer::Layer<S> for OverloadLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded { inner, state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    state: Arc<Overload>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Guarded<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if request.uri().path().starts_with(HEALTH_PREFIX) {
            return Box::pin(inner.call(request));
        }
        let state = self.state.clone();
        if state.is_draining() {
            state.series.refused_draining.inc();
            return Box::pin(async { Ok(status::draining().into_http()) });
        }
        let Some(slot) = state.admit() else {
            state.series.refused_full.inc();
            tracing::debug!(path = request.uri().path(), "refused: max_in_flight reached");
            let max = state.limits.max_in_flight;
            return Box::pin(async move { Ok(status::full(max).into_http()) });
        };
        let (after, by_server) = deadline(&mut request, state.limits.call_timeout);
        let until = Instant::now() + after;
        Box::pin(async move {
            let cut = state.cut_signal();
            tokio::select! {
                response = inner.call(request) => {
                    let drain_timeout = state.limits.drain_timeout;
                    let series = state.series.clone();
                    let stop = Box::pin(async move {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => {
                                series.deadline.inc();
                                status::deadline(after, by_server)
                            }
                            _ = cut => {
                                series.drain_deadline.inc();
                                status::drain_deadline(drain_timeout)
                            }
                        }
                    });
                    Ok(response?.map(|body| Body::new(GuardedBody::new(body, slot, stop))))
                }
                _ = tokio::time::sleep_until(until) => {
                    state.series.deadline.inc();
                    Ok(status::deadline(after, by_server).into_http())
                }
                _ = state.cut_signal() => {
                    state.series.drain_deadline.inc();
                    Ok(status::drain_deadline(state.limits.drain_timeout).into_http())
                }
            }
        })
    }
}

/// The call's deadline: the client's `grpc-timeout` or `call_timeout`, whichever is
/// shorter, and whether the gateway's was. When it is the gateway's, the header is
/// rewritten so the layers below (the call context, a call forwarded to a group) see it.
fn deadline<B>(request: &mut Request<B>, call_timeout: Duration) -> (Duration, bool) {
    let asked = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
    match asked {
        Some(d) if d <= call_timeout => (d, false),
        _ => {
            if let Ok(v) = HeaderValue::try_from(grpc_timeout(call_timeout)) {
                request.headers_mut().insert("grpc-timeout", v);
            }
            (call_timeout, true)
        }
    }
}

/// `grpc-timeout` text: at most 8 digits, so the coarsest unit that keeps millisecond
/// precision where it fits.
fn grpc_timeout(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 100_000_000 {
        format!("{ms}m")
    } else {
        format!("{}S", d.as_secs().min(99_999_999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shorter_deadline_wins_and_is_written_back() {
        let ten = Duration::from_secs(10);
        let mut r = Request::new(());
        assert_eq!(deadline(&mut r, ten), (ten, true));
        assert_eq!(r.headers()["grpc-timeout"], "10000m");
        let mut r = Request::builder().header("grpc-timeout", "2S").body(()).unwrap();
        assert_eq!(deadline(&mut r, ten), (Duration::from_secs(2), false));
        assert_eq!(r.headers()["grpc-timeout"], "2S");
        let mut r = Request::builder().header("grpc-timeout", "1H").body(()).unwrap();
        assert_eq!(deadline(&mut r, ten), (ten, true));
        let mut r = Request::builder().header("grpc-timeout", "garbage").body(()).unwrap();
        assert_eq!(deadline(&mut r, ten), (ten, true));
        assert_eq!(parse_grpc_timeout(&grpc_timeout(Duration::from_secs(400_000))), Some(Duration::from_secs(400_000)));
    }
}
