//! One node: attempts until success, a permanent failure, or no retries left.
use tern_agent_api::core;
use tern_agent_api::error::AgentError;

use super::attempt::{run_attempt, AttemptEnd, NodeCtx};
use super::cache::{self, Lookup};
use super::NodeStart;
use crate::exec::events::ExecutionEvent;

/// Runs the node from `start`. Only retryable failures are retried, each retry a new
/// attempt (new `retry_attempt`, new idempotency key), up to the template's `retries`.
pub(crate) async fn run_node(cx: NodeCtx, mut start: NodeStart) -> Result<core::LiteralMap, AgentError> {
    let max_attempts = cx.node.retries.saturating_add(1);
    let events = &cx.run.events;
    let cache = match cache::lookup_or_reserve(&cx, &start).await {
        Lookup::Hit(outputs) => return Ok(outputs),
        Lookup::Stop(e) => return Err(e),
        Lookup::Run(c) => c,
    };
    loop {
        let attempt = start.attempt();
        let node = cx.node.id.clone();
        events.emit(ExecutionEvent::NodeQueued { node: node.clone(), attempt }).await;
        match run_attempt(&cx, start).await {
            AttemptEnd::Succeeded(outputs) => {
                cache.store(&cx, attempt, &outputs).await;
                events.emit(ExecutionEvent::NodeSucceeded { node, attempt }).await;
                return Ok(outputs);
            }
            AttemptEnd::Failed(e) if e.is_retryable() && attempt + 1 < max_attempts && !*cx.run.cancel.borrow() => {
                events
                    .emit(ExecutionEvent::NodeRetrying {
                        node,
                        attempt,
                        code: e.code.to_string(),
                        message: e.message.clone(),
                    })
                    .await;
                tokio::time::sleep(cx.run.poll.initial).await;
                start = NodeStart::Fresh { attempt: attempt + 1 };
            }
            AttemptEnd::Failed(e) | AttemptEnd::Aborted(e) => {
                cache.release().await;
                events
                    .emit(ExecutionEvent::NodeFailed {
                        node,
                        attempt,
                        code: e.code.to_string(),
                        message: e.message.clone(),
                    })
                    .await;
                return Err(e);
            }
        }
    }
}
