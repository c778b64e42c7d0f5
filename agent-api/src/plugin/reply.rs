//! Replies across the ABI, used by both sides: a guard that answers exactly once (an error
//! if it is dropped unanswered), and the two ways of receiving an answer (a oneshot channel
//! for replies that come later, a slot for replies that come before the call returns).
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::sync::oneshot;

use super::abi::{ReplyFn, STATUS_ERROR, STATUS_OK};
use super::wire::{plugin_codes, WireError};
use crate::error::AgentError;

/// A reply owed to the other side. Answers exactly once: [`ok`](Self::ok) or
/// [`err`](Self::err), or, when dropped unanswered (a panic unwinding, a runtime dropping
/// the future), an error saying so.
pub struct Replier {
    target: Option<(ReplyFn, usize)>,
    /// What was being done, for the dropped-reply message.
    what: &'static str,
}

// SAFETY: the ABI requires reply functions and their contexts to be usable from any thread.
unsafe impl Send for Replier {}

impl Replier {
    /// # Safety
    /// `reply` and `ctx` must come from the other side of the ABI, which accepts exactly one
    /// call of `reply(ctx, ..)` from any thread.
    pub unsafe fn new(reply: ReplyFn, ctx: *mut c_void, what: &'static str) -> Self {
        Self { target: Some((reply, ctx as usize)), what }
    }

    /// Whether the reply was already sent.
    pub fn is_sent(&self) -> bool {
        self.target.is_none()
    }

    pub fn ok(mut self, payload: &[u8]) {
        self.send(STATUS_OK, payload);
    }

    pub fn err(mut self, error: &AgentError) {
        self.send(STATUS_ERROR, &WireError::from_agent(error).encode_bytes());
    }

    pub fn err_wire(mut self, error: &WireError) {
        self.send(STATUS_ERROR, &error.encode_bytes());
    }

    /// Answers with an error unless already answered (for use after `catch_unwind`).
    pub fn err_if_unsent(&mut self, error: &AgentError) {
        self.send(STATUS_ERROR, &WireError::from_agent(error).encode_bytes());
    }

    fn send(&mut self, status: u32, payload: &[u8]) {
        if let Some((reply, ctx)) = self.target.take() {
            // SAFETY: `reply`/`ctx` are the pair handed over in `new`, used exactly once here
            // (`take`), with a payload borrowed for the duration of the call.
            unsafe { reply(ctx as *mut c_void, status, payload.as_ptr(), payload.len()) };
        }
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        if self.target.is_some() {
            let e = AgentError::internal(
                plugin_codes::PROTOCOL,
                format!("the reply to {} was dropped before it was sent (its task was cancelled or its runtime stopped)", self.what),
            );
            self.err_if_unsent(&e);
        }
    }
}

type Answer = (u32, Vec<u8>);

/// A reply that comes later: pass `(reply, ctx)` to the other side and await the receiver.
/// If the other side never answers, the `ctx` box leaks (the other side broke the ABI).
pub fn channel() -> (ReplyFn, *mut c_void, oneshot::Receiver<Answer>) {
    let (tx, rx) = oneshot::channel::<Answer>();
    let ctx = Box::into_raw(Box::new(tx)) as *mut c_void;
    (oneshot_reply, ctx, rx)
}

/// The payload of an answer: `Ok(bytes)` or the decoded error.
pub fn into_result(answer: Result<Answer, oneshot::error::RecvError>, from: &str) -> Result<Vec<u8>, AgentError> {
    into_wire_result(answer, from).map_err(WireError::into_agent)
}

/// [`into_result`] keeping the error's wire form (data store errors rebuild their variant).
#[allow(clippy::result_large_err)] // the error path is cold; boxing would only add an allocation
pub fn into_wire_result(answer: Result<Answer, oneshot::error::RecvError>, from: &str) -> Result<Vec<u8>, WireError> {
    let protocol = |m: String| WireError::from_agent(&AgentError::internal(plugin_codes::PROTOCOL, m));
    match answer {
        Ok((STATUS_OK, bytes)) => Ok(bytes),
        Ok((STATUS_ERROR, bytes)) => {
            Err(<WireError as prost::Message>::decode(bytes.as_slice()).unwrap_or_else(|e| {
                protocol(format!("{from} answered an error that cannot be decoded ({e})"))
            }))
        }
        Ok((status, _)) => Err(protocol(format!("{from} answered unknown status {status}"))),
        Err(_) => Err(protocol(format!("{from} dropped its reply"))),
    }
}

unsafe extern "C" fn oneshot_reply(ctx: *mut c_void, status: u32, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the `Box<Sender>` made by `channel`, and the ABI answers it once.
        let tx = unsafe { Box::from_raw(ctx as *mut oneshot::Sender<Answer>) };
        // SAFETY: the payload is readable for the duration of this call.
        let bytes = unsafe { copy_payload(ptr, len) };
        let _ = tx.send((status, bytes));
    }));
}

/// A reply that comes before the call returns: pass `(sync_reply, slot.as_ctx())`.
#[derive(Default)]
pub struct Slot(Option<Answer>);

impl Slot {
    pub fn as_ctx(&mut self) -> *mut c_void {
        self as *mut Slot as *mut c_void
    }

    pub fn into_result(self, from: &str) -> Result<Vec<u8>, AgentError> {
        self.into_wire_result(from).map_err(WireError::into_agent)
    }

    #[allow(clippy::result_large_err)] // as `into_wire_result` above
    pub fn into_wire_result(self, from: &str) -> Result<Vec<u8>, WireError> {
        match self.0 {
            Some(answer) => into_wire_result(Ok(answer), from),
            None => Err(WireError::from_agent(&AgentError::internal(
                plugin_codes::PROTOCOL,
                format!("{from} returned without answering"),
            ))),
        }
    }
}

/// The [`ReplyFn`] of a [`Slot`].
///
/// # Safety
/// `ctx` must come from [`Slot::as_ctx`] on a slot that outlives this call, and `ptr` must be
/// null with `len == 0` or point to `len` readable bytes.
pub unsafe extern "C" fn sync_reply(ctx: *mut c_void, status: u32, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is a `&mut Slot` alive for the call that passed it (the answer comes
        // before that call returns).
        let slot = unsafe { &mut *(ctx as *mut Slot) };
        // SAFETY: the payload is readable for the duration of this call.
        slot.0 = Some((status, unsafe { copy_payload(ptr, len) }));
    }));
}

/// # Safety
/// `ptr` must be null with `len == 0`, or point to `len` readable bytes.
pub unsafe fn copy_payload(ptr: *const u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        Vec::new()
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;

    #[tokio::test]
    async fn a_replier_answers_once_and_an_error_when_dropped_unanswered() {
        let (reply, ctx, rx) = channel();
        // SAFETY: a fresh pair from `channel`.
        let replier = unsafe { Replier::new(reply, ctx, "a test call") };
        replier.ok(b"payload");
        assert_eq!(into_result(rx.await, "test").unwrap(), b"payload");

        let (reply, ctx, rx) = channel();
        // SAFETY: as above.
        let replier = unsafe { Replier::new(reply, ctx, "a test call") };
        replier.err(&AgentError::user("X-1", "no"));
        assert_eq!(into_result(rx.await, "test").unwrap_err(), AgentError::user("X-1", "no"));

        let (reply, ctx, rx) = channel();
        // SAFETY: as above.
        drop(unsafe { Replier::new(reply, ctx, "a test call") });
        let e = into_result(rx.await, "test").unwrap_err();
        assert_eq!(e.code, plugin_codes::PROTOCOL);
        assert!(e.message.contains("a test call") && e.message.contains("dropped"), "{e}");

        let (reply, ctx, rx) = channel();
        // SAFETY: as above.
        let mut replier = unsafe { Replier::new(reply, ctx, "a test call") };
        replier.err_if_unsent(&AgentError::internal(codes::INTERNAL, "first"));
        assert!(replier.is_sent());
        replier.err_if_unsent(&AgentError::internal(codes::INTERNAL, "second"));
        drop(replier);
        assert_eq!(into_result(rx.await, "test").unwrap_err().message, "first");
    }

    #[test]
    fn a_slot_without_an_answer_is_an_error() {
        let e = Slot::default().into_result("plugin x").unwrap_err();
        assert!(e.message.contains("plugin x returned without answering"), "{e}");
        let mut slot = Slot::default();
        // SAFETY: the slot outlives the call; the payload is a live slice.
        unsafe { sync_reply(slot.as_ctx(), 7, b"?".as_ptr(), 1) };
        assert!(slot.into_result("plugin x").unwrap_err().message.contains("unknown status 7"));
    }
}
