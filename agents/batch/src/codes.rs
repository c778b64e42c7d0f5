//! Error codes of the AWS Batch agent (`TERN-V0xx`, documented in `docs/errors.md`), and
//! their classification. Only system errors are retryable.
use std::time::Duration;

use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template cannot be submitted: no container or image, a `custom` key of the
/// wrong type (`parameters`, `tags`, `schedulingPriority`, `propagateTags`,
/// `platformCapabilities`, `arrayProperties`), a resource quantity that is not one,
/// container args with unrendered `{{.…}}` variables. User error, permanent.
pub const BAD_TEMPLATE: &str = "TERN-V001";
/// No job queue: the section sets no `job_queue`, or the template's `dynamic_queue` is not
/// one of the section's `queues`. User error (the gateway's configuration), permanent.
pub const NO_QUEUE: &str = "TERN-V002";
/// The template's IAM role (`security_context.run_as.iam_role`) is not one the section
/// lets templates choose (`job_role_arn` or `allowed_job_roles`). Nothing is submitted.
/// User error, permanent.
pub const ROLE_NOT_ALLOWED: &str = "TERN-V003";
/// AWS refused the credentials or the caller's rights (`AccessDeniedException`,
/// `UnrecognizedClientException`, an invalid signature, an expired token, HTTP 401/403), or
/// no credentials could be loaded. User error, permanent.
pub const PERMISSION_DENIED: &str = "TERN-V004";
/// AWS Batch rejected the request (`ClientException`, other 4xx): a queue or job definition
/// that does not exist, a parameter Batch refuses. User error, permanent.
pub const REQUEST_REJECTED: &str = "TERN-V005";
/// The handle's job does not exist at AWS Batch (`DescribeJobs` knows no such id: another
/// account or region, or older than Batch keeps jobs). User error, permanent.
pub const JOB_NOT_FOUND: &str = "TERN-V006";
/// AWS could not be reached or answered with a server error: connection refused, DNS,
/// TLS, timeout, HTTP 5xx, `ServerException`, throttling (`TooManyRequestsException`,
/// HTTP 429), or an answer the SDK cannot read. System error, retryable.
pub const UNAVAILABLE: &str = "TERN-V007";
/// The job ended `FAILED` because of the task: a non-zero exit code, out of memory, its
/// timeout (`attemptDurationSeconds`), an image that cannot be pulled, a failed dependency,
/// or any array child failing. User error, permanent.
pub const JOB_FAILED: &str = "TERN-V008";
/// The job ended `FAILED` because of the platform: its host was terminated (a Spot
/// reclaim, a scale-in), the container runtime or the task's networking could not start it.
/// System error, retryable.
pub const PLATFORM_FAILURE: &str = "TERN-V009";
/// The job succeeded but its outputs are unusable: the interface declares outputs and
/// neither `<output_prefix>/outputs.pb` nor `<output_prefix>/0/outputs.pb` (where
/// flytekitplugins-awsbatch's `pyflyte-execute` writes) exists, or it is not a `LiteralMap`.
/// User error, permanent.
pub const OUTPUTS_MISSING: &str = "TERN-V010";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn no_queue(message: impl Into<String>) -> AgentError {
    AgentError::new(NO_QUEUE, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn role_not_allowed(message: impl Into<String>) -> AgentError {
    AgentError::permission_denied(ROLE_NOT_ALLOWED, message)
}

pub(crate) fn denied(message: impl Into<String>) -> AgentError {
    AgentError::permission_denied(PERMISSION_DENIED, message)
}

pub(crate) fn rejected(message: impl Into<String>) -> AgentError {
    AgentError::new(REQUEST_REJECTED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

pub(crate) fn job_not_found(message: impl Into<String>) -> AgentError {
    AgentError::not_found(JOB_NOT_FOUND, message)
}

pub(crate) fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> AgentError {
    let mut e = AgentError::unavailable(UNAVAILABLE, message);
    e.retry_after = retry_after;
    e
}

pub(crate) fn outputs_missing(message: impl Into<String>) -> AgentError {
    AgentError::user(OUTPUTS_MISSING, message)
}
