//! The `spark` agent (async; task type `spark`, version 0): runs flytekitplugins-spark
//! 1.16.31's Spark tasks (`@task(task_config=Spark(...))`) on a Spark standalone master
//! through its REST submission API, or with `spark-submit` in local mode on the gateway's host
//! — idempotent, with every driver state mapped, kill on delete and the driver's logs.
//!
//! - **Create** reads the `SparkJob` ([`template`]) and submits it ([`standalone`]: a
//!   `CreateSubmissionRequest` in cluster deploy mode; [`local`]: `spark-submit` under a
//!   wrapper recording its exit). The application is named `tern-<idempotency key>`; the handle
//!   is recorded in the attempt's output prefix (`spark_submission.json`), so a repeated create
//!   — after a gateway restart too — returns the first driver.
//! - **Get** maps `driverState` (or the process's state) through [`DRIVER_STATES`].
//! - **Delete** kills the driver (`/v1/submissions/kill`) or the process group; idempotent.
//! - **Logs** serve the driver's `stdout`/`stderr`.
//! - Errors have codes `TERN-Z001`…`TERN-Z008` ([`codes`]).
//!
//! `spark` is also Databricks' task type: this agent serves nothing until its section sets
//! `mode`, and one gateway cannot serve `spark` twice (docs/agents/spark.md).
use std::sync::Arc;

use tern_agent_api::prelude::*;

pub mod agent;
pub mod codes;
pub mod config;
pub mod local;
pub mod standalone;
pub mod states;
pub mod template;

pub use agent::{Handle, SparkAgent};
pub use config::{SparkConfig, SparkFactory, SparkMode};
pub use states::DRIVER_STATES;

/// The agent with `config`, ready to register.
pub fn agent_with(config: SparkConfig, init: &AgentInit) -> Result<Arc<SparkAgent>, AgentError> {
    config
        .check()
        .map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.spark] {m}")))?;
    Ok(Arc::new(SparkAgent::new(config, init)))
}
