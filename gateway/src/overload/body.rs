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
        if let Poll::Ready(status) = self.stop.as_mut().poll(cx) {
            self.done = true;
            let mut trailers = http::HeaderMap::new();
            return Poll::Ready(Some(match status.add_header(&mut trailers) {
                Ok(()) => Ok(Frame::trailers(trailers)),
                Err(e) => Err(e),
            }));
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
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
