//! The result of a flytekit command run by an agent on the gateway's host (`dask`, `gpu`):
//! `pyflyte-execute` writes `<output_prefix>/outputs.pb` (a `LiteralMap`) when the task
//! returns, and `<output_prefix>/error.pb` (a `flyteidl.core.ErrorDocument`) when it raises.
use prost::Message;

use crate::context::TaskContext;
use crate::datastore::{join_uri, DataStoreError};
use crate::error::{AgentError, ErrorClass, ErrorOrigin, Retry};
use crate::proto::flyteidl::core;
use crate::status::TaskStatus;

/// `flyteidl.core.ErrorDocument` (core/errors.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorDocument {
    #[prost(message, optional, tag = "1")]
    error: Option<ContainerError>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ContainerError {
    #[prost(string, tag = "1")]
    code: String,
    #[prost(string, tag = "2")]
    message: String,
    /// NON_RECOVERABLE = 0, RECOVERABLE = 1.
    #[prost(int32, tag = "3")]
    kind: i32,
}

fn user_failure(code: &'static str, message: String) -> AgentError {
    AgentError::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

/// The status of a command that exited 0: SUCCEEDED with `<prefix>/outputs.pb`, or without
/// outputs when the interface declares none; else FAILED with `no_outputs_code` (user error).
pub async fn command_outputs(
    ctx: &TaskContext,
    prefix: &str,
    declared: &[String],
    no_outputs_code: &'static str,
) -> Result<TaskStatus, AgentError> {
    let uri = join_uri(prefix, "outputs.pb");
    match ctx.data_store().read(&uri).await {
        Ok(bytes) => match core::LiteralMap::decode(bytes) {
            Ok(outputs) => Ok(TaskStatus::succeeded(Some(outputs))),
            Err(e) => Ok(TaskStatus::failed(user_failure(
                no_outputs_code,
                format!("the command exited 0, but {uri} is not a LiteralMap: {e}"),
            ))),
        },
        Err(DataStoreError::NotFound { .. }) if declared.is_empty() => Ok(TaskStatus::succeeded(None)),
        Err(DataStoreError::NotFound { .. }) => Ok(TaskStatus::failed(user_failure(
            no_outputs_code,
            format!("the command exited 0 but wrote no {uri}; the task declares the outputs {}", declared.join(", ")),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The error flytekit's `pyflyte-execute` wrote to `<prefix>/error.pb` when the task raised,
/// as a `task_failed_code` user error (retryable when flytekit says RECOVERABLE).
pub async fn flytekit_error(ctx: &TaskContext, prefix: &str, program: &str, task_failed_code: &'static str) -> Option<AgentError> {
    let bytes = ctx.data_store().read(&join_uri(prefix, "error.pb")).await.ok()?;
    let error = ErrorDocument::decode(bytes).ok()?.error?;
    if error.message.trim().is_empty() {
        return None;
    }
    let message = format!("{program} failed: {}: {}", error.code, error.message.trim());
    // ContainerError.Kind RECOVERABLE (1): flytekit says a retry may succeed.
    Some(if error.kind == 1 {
        AgentError::new(task_failed_code, message, ErrorOrigin::User, Retry::Retryable, ErrorClass::FailedPrecondition)
    } else {
        user_failure(task_failed_code, message)
    })
}
