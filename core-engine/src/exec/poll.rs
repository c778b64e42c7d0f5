//! GetTask until the job ends.
//!
//! While a job may be alive it is never abandoned for want of an answer: a retryable
//! GetTask failure (the agent restarting, a network blip, an outage) only slows polling
//! down (backoff with jitter); the attempt's limits bound it. A permanent error ends the
//! poll, and the caller gives the job up (DeleteTask) before anything else.
use tern_agent_api::admin;
use tern_agent_api::client::AgentClient;
use tern_agent_api::status::TaskStatus;

use super::attempt::{emit_running, NodeCtx, Stop};
use super::signal;
use crate::config::jitter;

pub(crate) async fn poll(
    cx: &NodeCtx,
    client: &dyn AgentClient,
    prefix: &str,
    meta: Vec<u8>,
    attempt: u32,
) -> Result<TaskStatus, Stop> {
    let cfg = &cx.run.poll;
    let mut delay = cfg.initial;
    let mut failures = 0u32;
    let mut last_message = String::new();
    loop {
        #[allow(deprecated)]
        let req = admin::GetTaskRequest {
            task_type: cx.node.category.name.clone(),
            resource_meta: meta.clone(),
            task_category: Some(cx.category()),
            output_prefix: prefix.to_owned(),
        };
        match client.get_task(req).await {
            Ok(resource) => {
                if failures > 0 {
                    emit_running(cx, attempt, format!("agent answers again after {failures} failed polls")).await;
                    failures = 0;
                }
                let status = TaskStatus::from_resource(resource);
                if status.is_terminal() {
                    return Ok(status);
                }
                if !status.message.is_empty() && status.message != last_message {
                    last_message = status.message.clone();
                    emit_running(cx, attempt, status.message.clone()).await;
                }
            }
            Err(e) if e.is_retryable() => {
                failures += 1;
                if failures == 1 {
                    emit_running(cx, attempt, format!("GetTask failed, still polling: [{}] {}", e.code, e.message))
                        .await;
                }
                tracing::warn!(node = %cx.node.id, failures, error = %e, "GetTask failed; polling again");
            }
            Err(e) => return Err(Stop::Error(e)),
        }
        signal::sleep(&cx.run.signal, jitter(delay)).await?;
        delay = cfg.next(delay);
    }
}
