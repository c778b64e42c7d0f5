//! The external job of one async attempt: what the engine knows of it, and how it is
//! given up without ever leaving it running unnoticed.
//!
//! At most one job per attempt: a job is only abandoned after the agent confirmed it is
//! gone (DeleteTask answered). A create whose answer was lost (timeout, outage) may have
//! started a job the engine has no handle for; re-issuing it with the same
//! `task_execution_id` makes the agent return the existing job's handle (attach), which
//! is then deleted.
use std::sync::Arc;
use std::time::Instant;

use tern_agent_api::admin;
use tern_agent_api::client::AgentClient;
use tern_agent_api::error::{AgentError, ErrorClass, ErrorOrigin, Retry};

use super::attempt::NodeCtx;
use crate::error::codes;

/// What is known of an attempt's job.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobState {
    /// The handle CreateTask returned.
    pub meta: Option<Vec<u8>>,
    /// A CreateTask may have reached the agent without its answer reaching us.
    pub maybe_created: bool,
    /// The CreateTask request, kept to re-issue it (attach).
    pub create: Option<Box<admin::CreateTaskRequest>>,
}

impl JobState {
    pub fn may_be_alive(&self) -> bool {
        self.meta.is_some() || self.maybe_created
    }
}

fn unconfirmed(what: &str, e: &AgentError) -> AgentError {
    AgentError::new(
        codes::JOB_UNCONFIRMED,
        format!(
            "{what}; the job may still be running, so the node is not retried (a retry would run it twice): {}",
            e.message
        ),
        ErrorOrigin::System,
        Retry::Permanent,
        ErrorClass::Unavailable,
    )
}

/// Gives up the attempt's job: attaches to a create whose answer was lost, then deletes.
/// `Ok` once the agent confirmed there is no job left running for this attempt.
pub(crate) async fn give_up(cx: &NodeCtx, client: &Arc<dyn AgentClient>, job: &mut JobState) -> Result<(), AgentError> {
    if job.meta.is_none() && job.maybe_created {
        match attach(cx, client, job).await {
            Ok(Some(meta)) => job.meta = Some(meta),
            // The agent rejected the create: it started nothing.
            Ok(None) => job.maybe_created = false,
            Err(e) => {
                return Err(unconfirmed("the handle of a CreateTask whose answer was lost cannot be obtained", &e))
            }
        }
    }
    let Some(meta) = job.meta.clone() else {
        return Ok(());
    };
    delete(cx, client, &meta).await.map_err(|e| unconfirmed("DeleteTask was not confirmed", &e))
}

/// Re-issues the create (same key) until the agent answers: `Some(handle)`, or `None`
/// when it answers with a permanent error (no job exists or will).
async fn attach(cx: &NodeCtx, client: &Arc<dyn AgentClient>, job: &JobState) -> Result<Option<Vec<u8>>, AgentError> {
    let Some(req) = job.create.clone() else {
        return Err(AgentError::internal(codes::NODE_INTERNAL, "no CreateTask request to re-issue"));
    };
    let cfg = &cx.run.poll;
    let started = Instant::now();
    let mut n = 0;
    loop {
        match client.create_task(req.as_ref().clone()).await {
            Ok(meta) => return Ok(Some(meta)),
            Err(e) if !e.is_retryable() => return Ok(None),
            Err(e) if started.elapsed() >= cfg.confirm_for => return Err(e),
            Err(e) => {
                tracing::warn!(node = %cx.node.id, error = %e, "re-issued CreateTask failed; trying again")
            }
        }
        tokio::time::sleep(cfg.backoff().delay(n)).await;
        n += 1;
    }
}

/// DeleteTask until the agent answers. NOT_FOUND counts as deleted.
pub(crate) async fn delete(cx: &NodeCtx, client: &Arc<dyn AgentClient>, meta: &[u8]) -> Result<(), AgentError> {
    let cfg = &cx.run.poll;
    let started = Instant::now();
    let mut n = 0;
    loop {
        #[allow(deprecated)]
        let req = admin::DeleteTaskRequest {
            task_type: cx.node.category.name.clone(),
            resource_meta: meta.to_vec(),
            task_category: Some(cx.category()),
        };
        match client.delete_task(req).await {
            Ok(()) => return Ok(()),
            Err(e) if e.class == ErrorClass::NotFound => return Ok(()),
            Err(e) if !e.is_retryable() || started.elapsed() >= cfg.confirm_for => return Err(e),
            Err(e) => {
                tracing::warn!(node = %cx.node.id, error = %e, "DeleteTask failed; trying again")
            }
        }
        tokio::time::sleep(cfg.backoff().delay(n)).await;
        n += 1;
    }
}
