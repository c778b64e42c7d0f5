//! The `databricks` agent (async; task types `databricks` and `spark`, version 0, by
//! default): runs flytekitplugins-spark 1.16.31's Databricks tasks on the Databricks Jobs
//! REST API, as a drop-in for flytekit's `DatabricksConnectorV2`/`DatabricksConnector` —
//! idempotent, with every run state mapped, and no credential in `resource_meta`.
//!
//! # Template conventions (what flytekit writes)
//!
//! `DatabricksV2(...)` tasks have type `databricks`; the deprecated `Databricks(...)` ones
//! type `spark` (which is also Spark-on-Kubernetes' type: [`DatabricksConfig::task_types`]
//! chooses what this agent serves). `custom` is the `SparkJob` proto as camelCase JSON:
//!
//! | key | use |
//! |---|---|
//! | `databricksConf` | the Jobs API run spec (required): compute (`new_cluster`, `existing_cluster_id`, or serverless `environment_key`/`environments`), `run_name`, `timeout_seconds`, `libraries`, `git_source`, `python_file`, … |
//! | `databricksInstance` | the workspace, used when the section allows it (see [`workspace`]) |
//! | `sparkConf` | the new cluster's `spark_conf` when it sets none |
//! | `notebookPath`, `notebookBaseParameters` | run a notebook instead of the entrypoint ([`params`]) |
//! | `databricksAuthType` | `pat` or `oauth_m2m`: must be configured (`oidc_federation` is refused) |
//! | `databricksServiceCredentialProvider` | serverless S3 credentials, passed to the entrypoint |
//! | `databricksTokenSecret`, `databricksClientId`, `databricksOauthSecret`, `databricksOidc*` | ignored: credentials are the gateway's, by reference |
//! | `mainApplicationFile`, `executorPath`, `applicationType`, `hadoopConf`, `driverPod`, `executorPod` | ignored (Spark-on-Kubernetes fields), as flytekit's connector does |
//!
//! `container.image` becomes the new cluster's `docker_image`, `container.env` (plus
//! `FLYTE_FAIL_ON_ERROR=true`) its `spark_env_vars`, and the **rendered** `container.args`
//! (`pyflyte-execute --inputs … --output-prefix …`) the `parameters` of a
//! `spark_python_task` running flytekit's entrypoint. [`submit`] has the whole body.
//!
//! # Behaviour
//!
//! - **Create** posts `runs/submit` with `idempotency_token = "tern-" + <idempotency key>`:
//!   a repeated create of the same attempt (a propeller retry after a lost answer, a
//!   restarted gateway, another replica) returns the first run. The handle is
//!   `{"run_id","instance","auth","outputs","v":1}` — never a token.
//! - **Get** reads `runs/get`, classifies `status` (2.2) or `state` through [`RUN_STATES`]
//!   and adds the run page as the `Databricks Console` log link. Outputs are written by the
//!   task itself ([`outputs`]).
//! - **Delete** posts `runs/cancel`; an unknown or finished run is fine (idempotent).
//! - **Logs** serve `runs/get-output` of the run's task runs ([`logs`]).
//! - Errors have codes `TERN-X001`…`TERN-X011` ([`codes`]); only system errors retry.
use std::sync::Arc;

use tern_agent_api::prelude::{AgentError, AgentServices, AsyncAgent};

pub mod agent;
pub mod client;
pub mod codes;
pub mod config;
pub mod logs;
pub mod outputs;
pub mod params;
pub mod states;
pub mod submit;
pub mod template;
pub mod workspace;

pub use agent::{DatabricksAgent, Handle};
pub use config::{DatabricksConfig, DatabricksFactory};
pub use states::RUN_STATES;

/// The agent with `config`, ready to register.
pub fn agent_with(config: DatabricksConfig, services: &AgentServices) -> Result<Arc<dyn AsyncAgent>, AgentError> {
    config
        .check()
        .map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.databricks] {m}")))?;
    Ok(Arc::new(DatabricksAgent::new(config, services)?))
}
