//! The Snowflake agent: flytekitplugins-snowflake's `snowflake` tasks, run on Snowflake.
//!
//! Task type `snowflake` (version 0), asynchronous, a drop-in for flytekit's "Snowflake
//! Connector": the same template (`template.rs`), inputs bound as parameters the way flytekit's
//! connector passes them (`params.rs`), the same `resource_meta` fields plus Tern's, the same
//! `results` output (`outputs.rs`) — and what flytekit's lacks:
//!
//! - **No blocking.** CreateTask submits the statement asynchronously and returns the query id;
//!   GetTask reads the query's status by id, statelessly (any gateway replica, after any restart);
//!   DeleteTask cancels it (`SYSTEM$CANCEL_QUERY`), idempotently. How the crate `snowflake-api`
//!   and the connector endpoints share a session: `client.rs`.
//! - **Idempotent create.** The attempt's idempotency key travels as the query's `QUERY_TAG`
//!   (`tern:<key>`). A repeated CreateTask for the same `task_execution_id` returns the first
//!   query: from this process's memory, else from the submission record the agent writes in the
//!   attempt's output prefix (`snowflake_query.json`), else from Snowflake's query history
//!   (`INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER` filtered by the tag; `history_lookup`).
//!   What remains: see `docs/agents/snowflake.md`.
//! - **Every status mapped** (`states.rs`), including QUEUED, RESUMING_WAREHOUSE, BLOCKED and
//!   NO_DATA, which flytekit's connector fails on; an unknown one is a retryable failure naming it.
//! - **Classified errors** (`codes.rs`, `TERN-F0xx`): the query's fault is permanent, Snowflake's
//!   or the network's is retryable.
//! - **Parquet results** on request (`materialize = "parquet"`), for a downstream DuckDB node.
//! - **Secrets by reference** (password or key pair), never in handles, logs or errors.
//! - **Configurable endpoint** (private links, proxies, emulators).
//!
//! # Writing a Snowflake task
//! With flytekit, `SnowflakeTask(name=…, query_template="SELECT … WHERE id = %(id)s",
//! task_config=SnowflakeConfig(user=…, account=…, database=…, schema=…, warehouse=…),
//! inputs=kwtypes(id=int), output_schema_type=StructuredDataset)`. In a Tern workflow, `type:
//! snowflake`, `sql:` and `config: {account: …, user: …, …}` (or the agent's defaults), and
//! `custom: {materialize: parquet}` to get the rows as a dataframe.
use std::sync::Arc;

use tern_agent_api::prelude::AsyncAgent;

mod agent;
pub mod client;
pub mod codes;
pub mod config;
pub mod outputs;
pub mod params;
pub mod results;
pub mod states;
pub mod template;

pub use agent::{history_sql, QueryMeta, Rejection, SnowflakeAgent, LEDGER_FILE};
pub use config::{Materialize, SnowflakeConfig, SnowflakeFactory};
pub use states::QUERY_STATES;
pub use template::TASK_TYPE;

/// The agent with `config`.
pub fn agent(config: SnowflakeConfig) -> Result<Arc<dyn AsyncAgent>, tern_agent_api::prelude::AgentError> {
    Ok(Arc::new(SnowflakeAgent::new(config)?))
}
