//! One node: attempts until success, a permanent failure, an exhausted budget or the
//! node's deadline.
//!
//! Flyte's semantics: a user failure (the task's error, an attempt timeout) spends the
//! task's `retries`; a system failure (agent unreachable, infrastructure) spends the
//! engine's system budget. Attempts are spaced by exponential backoff with jitter. The
//! node's deadline, unlike an attempt's timeout, is final.
use std::time::{Instant, SystemTime};

use tern_agent_api::core;
use tern_agent_api::core::task_metadata::InterruptibleValue;
use tern_agent_api::error::{AgentError, ErrorOrigin};

use super::attempt::{run_attempt, AttemptEnd, Limits, NodeCtx};
use super::cache::{self, Lookup};
use super::signal::{self, Interrupt};
use super::NodeStart;
use crate::exec::events::ExecutionEvent;
use crate::store::StoreError;

/// A node's failures so far (recovery), and when its first attempt began.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeHistory {
    pub user_failures: u32,
    pub system_failures: u32,
    pub began: Option<SystemTime>,
}

/// How a node ended.
pub(crate) enum NodeEnd {
    Succeeded(core::LiteralMap),
    Failed(AgentError),
    /// Given up on the driver's signal.
    Aborted,
    /// The driver stopped; `Some` when a state write failed.
    Halted(Option<StoreError>),
}

fn interruptible(cx: &NodeCtx) -> bool {
    let meta = cx.node.template.metadata.as_ref();
    matches!(meta.and_then(|m| m.interruptible_value.as_ref()), Some(InterruptibleValue::Interruptible(true)))
}

/// `began` as an `Instant` in this process.
fn instant_of(began: Option<SystemTime>) -> Instant {
    let now = Instant::now();
    let ago = began.and_then(|b| SystemTime::now().duration_since(b).ok()).unwrap_or_default();
    now.checked_sub(ago).unwrap_or(now)
}

/// Runs the node from `start`, each retry a new attempt (new `retry_attempt`, new
/// idempotency key).
pub(crate) async fn run_node(cx: NodeCtx, mut start: NodeStart, history: NodeHistory) -> NodeEnd {
    let retry = &cx.run.retry;
    let events = &cx.run.events;
    let cache = match cache::lookup_or_reserve(&cx, &start).await {
        Lookup::Hit(outputs) => return NodeEnd::Succeeded(outputs),
        Lookup::Stop => return NodeEnd::Aborted,
        Lookup::Halt => return NodeEnd::Halted(None),
        Lookup::Run(c) => c,
    };
    let node_deadline = cx.node.deadline.map(|d| instant_of(history.began) + d);
    let threshold = retry.interruptible_failure_threshold.unwrap_or(retry.system_retries);
    let (mut user, mut system) = (history.user_failures, history.system_failures);
    loop {
        let attempt = start.attempt();
        let node = cx.node.id.clone();
        events.emit(ExecutionEvent::NodeQueued { node: node.clone(), attempt }).await;
        let limits = Limits {
            attempt_timeout: cx.node.timeout,
            node_deadline,
            interruptible: interruptible(&cx) && system < threshold,
            interruptible_failure_threshold: i32::try_from(threshold).unwrap_or(i32::MAX),
        };
        let mut e = match run_attempt(&cx, start, limits).await {
            AttemptEnd::Succeeded(outputs) => {
                cache.store(&cx, attempt, &outputs).await;
                events.emit(ExecutionEvent::NodeSucceeded { node, attempt }).await;
                return NodeEnd::Succeeded(outputs);
            }
            AttemptEnd::Halted(e) => return NodeEnd::Halted(e),
            AttemptEnd::Aborted(e) => {
                cache.release().await;
                emit_failed(&cx, attempt, &e).await;
                return NodeEnd::Aborted;
            }
            AttemptEnd::Failed(e) => e,
        };
        if e.is_retryable() {
            let (used, budget, kind) = match e.origin {
                ErrorOrigin::User => {
                    user += 1;
                    (user, cx.node.retries, "user")
                }
                ErrorOrigin::System => {
                    system += 1;
                    (system, retry.system_retries, "system")
                }
            };
            let wait = retry.backoff.delay(user + system - 1);
            let past_deadline = node_deadline.is_some_and(|d| Instant::now() + wait >= d);
            if used <= budget && !past_deadline {
                events
                    .emit(ExecutionEvent::NodeRetrying {
                        node,
                        attempt,
                        code: e.code.to_string(),
                        message: e.message.clone(),
                    })
                    .await;
                match signal::sleep(&cx.run.signal, wait).await {
                    Ok(()) => {}
                    Err(Interrupt::Halt) => return NodeEnd::Halted(None),
                    Err(Interrupt::GiveUp(_)) => {
                        cache.release().await;
                        return NodeEnd::Failed(e);
                    }
                }
                start = NodeStart::Fresh { attempt: attempt + 1 };
                continue;
            }
            e.message = if past_deadline {
                format!("{} (the node's deadline leaves no time for another attempt)", e.message)
            } else {
                format!("{} (no {kind} retries left: {budget} allowed)", e.message)
            };
        }
        cache.release().await;
        emit_failed(&cx, attempt, &e).await;
        return NodeEnd::Failed(e);
    }
}

async fn emit_failed(cx: &NodeCtx, attempt: u32, e: &AgentError) {
    cx.run
        .events
        .emit(ExecutionEvent::NodeFailed {
            node: cx.node.id.clone(),
            attempt,
            code: e.code.to_string(),
            message: e.message.clone(),
        })
        .await;
}
