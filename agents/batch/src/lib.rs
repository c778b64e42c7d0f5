//! The `batch` agent (async; task type `aws-batch`, version 0): runs flytekitplugins-awsbatch
//! 1.16.31's tasks on AWS Batch with the AWS SDK for Rust — what FlytePropeller's Go
//! `aws_array` plugin does, as a Flyte agent, and idempotent across gateway restarts.
//!
//! # Template conventions (what flytekit writes)
//!
//! `@task(task_config=AWSBatchConfig(...))` has type `aws-batch`; `custom` is the
//! `AWSBatchConfig` (`parameters`, `schedulingPriority`, `platformCapabilities`,
//! `propagateTags`, `tags`), `config` repeats `platformCapabilities`, and the container's
//! **rendered** args run `pyflyte-execute --inputs … --output-prefix <output_prefix>/0 …`.
//! [`template`] reads it all (plus the task's retries, timeout, resources and IAM role).
//!
//! # Behaviour
//!
//! - **Create** registers (once per image, role and platform; cached, and found again by
//!   name after a restart) a job definition `<prefix>-<hash>`, then submits the job to the
//!   configured queue as `tern-<idempotency key>`, tagged `tern:idempotency-key`. Before
//!   submitting it looks for a job of that name in the queue (`ListJobs` with a `JOB_NAME`
//!   filter): a repeated create of the same attempt (a propeller retry after a lost answer,
//!   a restarted gateway) attaches to the job already there. The handle is
//!   `{"job_id","job_name","queue","array_size","outputs","v":1}` — never a credential.
//! - **Get** reads `DescribeJobs`, classifies the status through [`JOB_STATES`] (`FAILED` by
//!   its reason), lists an array job's children in `custom_info`, reads the outputs from
//!   the output prefix on success ([`data`]), and links the Batch console and the CloudWatch
//!   log stream.
//! - **Delete** is `TerminateJob` (cancels a job not started, stops a running one); the job
//!   then reports `FAILED` with this agent's reason, which is `ABORTED`.
//! - **Logs** read the job's CloudWatch Logs stream (`GetLogEvents`).
//! - Errors have codes `TERN-V001`…`TERN-V010` ([`codes`]); only system errors retry.
use std::sync::Arc;

use tern_agent_api::prelude::{AgentError, AgentServices, AsyncAgent};

pub mod agent;
pub mod client;
pub mod codes;
pub mod config;
pub mod data;
pub mod states;
pub mod template;

pub use agent::{BatchAgent, Handle};
pub use config::{BatchConfig, BatchFactory};
pub use states::JOB_STATES;

/// The agent with `config`, ready to register.
pub fn agent_with(config: BatchConfig, services: &AgentServices) -> Result<Arc<dyn AsyncAgent>, AgentError> {
    config
        .check()
        .map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.batch] {m}")))?;
    Ok(Arc::new(BatchAgent::new(config, services)))
}
