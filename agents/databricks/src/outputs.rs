//! Outputs, as flytekit: the task writes them itself.
//!
//! The run executes flytekit's entrypoint (`pyflyte-execute …` from the rendered container
//! args), which reads `<input prefix>/inputs.pb` and writes `<output_prefix>/outputs.pb`
//! (and any files or dataframes under the raw output prefix). The connector returns no
//! outputs in `Resource.outputs`; propeller, or `tern run`, then reads `outputs.pb`.
//! This agent does the same, with one guard: when the interface declares outputs and the
//! gateway's data store can reach the output prefix, a run that succeeded without writing
//! `outputs.pb` is reported as a failure naming the file (an entrypoint that is not
//! flytekit's would otherwise pass as a success and fail later, far from the cause).
//!
//! Parquet materialization (offered by the SQL agents) does not apply: a Databricks task is
//! Python code whose dataframe outputs flytekit already writes as Parquet under the raw
//! output prefix (a `StructuredDataset` literal in `outputs.pb`), which a downstream DuckDB
//! node reads as any other dataframe.
use tern_agent_api::prelude::*;

use crate::codes;

/// `Some(error)` when the outputs the interface declares are certainly missing.
pub async fn missing_outputs(ctx: &TaskContext, declares_outputs: bool) -> Option<AgentError> {
    if !declares_outputs || ctx.output_prefix.trim().is_empty() {
        return None;
    }
    let uri = join_uri(&ctx.output_prefix, "outputs.pb");
    match ctx.data_store().exists(&uri).await {
        Ok(true) => None,
        Ok(false) => Some(AgentError::user(
            codes::RUN_FAILED,
            format!(
                "the Databricks run succeeded but wrote no {uri}: the interface declares outputs, which flytekit's \
                 entrypoint (pyflyte-execute in the container args) writes there; check python_file"
            ),
        )),
        // Not reachable from this gateway (another bucket, a path outside its roots): trust the run.
        Err(e) => {
            tracing::debug!(%uri, error = %e, "cannot check the task's outputs from this gateway");
            None
        }
    }
}
