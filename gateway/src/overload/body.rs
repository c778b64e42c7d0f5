//! A reply body that holds its call's slot until it is sent, and ends a reply still
//! streaming at the call's deadline or the drain deadline (with that status in its trailers).
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

use super::Slot;

type Stop = Pin<Box<dyn Future<Output = Status> + Send>>;

pub(crate) struct GuardedBody {
    inner: tonic::body::Body,
    /// Freed when hyper drops the body: the reply is sent or the stream reset.
    _slot: Slot,
    /// Resolves to the status that ends the reply early.
    stop: Stop,
    done: bool,
}

impl GuardedBody {
    pub(crate) fn new(inner: tonic::body::Body, slot: Slot, stop: Stop) -> Self {
        Self { inner, _slot: slot, stop, done: false }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        // The inner body first: a unary reply is ready at once and never starts the timer.
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if frame.is_pending() {
            if let Poll::Ready(status) = self.stop.as_mut().poll(cx) {
                self.done = true;
                let mut trailers = http::HeaderMap::new();
                return Poll::Ready(Some(match status.add_header(&mut trailers) {
                    Ok(()) => Ok(Frame::trailers(trailers)),
                    Err(e) => Err(e),
                }));
            }
            return Poll::Pending;
        }
        // After the inner trailers nothing more may be sent, not even a late stop.
        if matches!(&frame, Poll::Ready(None)) || matches!(&frame, Poll::Ready(Some(Ok(f))) if f.is_trailers()) {
            self.done = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    /// A reply stream that never sends anything (a stuck server-streaming call).
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = Status;
        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stuck_stream_ends_with_the_stop_status_in_its_trailers_and_frees_its_slot() {
        let slots = Arc::new(Semaphore::new(1));
        let slot = Slot { _permit: slots.clone().try_acquire_owned().unwrap(), in_flight: Default::default() };
        let stop: Stop = Box::pin(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            super::super::status::drain_deadline(Duration::from_secs(3))
        });
        let mut body = GuardedBody::new(tonic::body::Body::new(Silent), slot, stop);
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await.unwrap().unwrap();
        let trailers = frame.into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "14");
        assert_eq!(trailers["tern-error-code"], "TERN-G041");
        let message = trailers["grpc-message"].to_str().unwrap();
        assert!(message.contains("drain%20deadline%203s%20passed"), "{message}");
        assert!(std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await.is_none());
        assert_eq!(slots.available_permits(), 0);
        drop(body);
        assert_eq!(slots.available_permits(), 1);
    }
}
