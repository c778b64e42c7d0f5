//! The `results` output: flytekit's URI naming the query, or the rows as Parquet.
use std::sync::Arc;

use prost::Message;
use tern_agent_api::core;
use tern_agent_api::prelude::*;
use tern_type_transformers::dataframe::write_parquet;
use tern_type_transformers::StructuredDataset;

use crate::client::{Credentials, Rows, SnowflakeClient};
use crate::codes;
use crate::results;
use crate::template::{Target, RESULTS};

const OUTPUTS_FILE: &str = "outputs.pb";

/// flytekit's URI for a query's results: `snowflake://user:account/warehouse/database/schema/<query id>`.
pub fn results_uri(target: &Target, query_id: &str) -> String {
    format!(
        "snowflake://{}:{}/{}/{}/{}/{}",
        target.user, target.account, target.warehouse, target.database, target.schema, query_id
    )
}

/// flytekit's output: `{"results": StructuredDataset(uri=…)}` with format `""` and no columns.
pub fn uri_outputs(target: &Target, query_id: &str) -> core::LiteralMap {
    let sd = StructuredDataset { uri: results_uri(target, query_id), format: String::new(), columns: Vec::new() };
    core::LiteralMap { literals: [(RESULTS.to_owned(), sd.to_dataset_literal())].into() }
}

/// The rows of `query_id` (`RESULT_SCAN`) written as Parquet at `<prefix>/results/00000`; the
/// outputs are also stored at `<prefix>/outputs.pb`, so later polls read them instead of
/// materializing again.
pub async fn parquet_outputs(
    ctx: &TaskContext,
    client: &SnowflakeClient,
    target: &Target,
    credentials: &Credentials,
    query_id: &str,
    prefix: &str,
    max_bytes: u64,
) -> Result<core::LiteralMap, AgentError> {
    let store: &Arc<dyn DataStore> = ctx.data_store();
    let outputs_uri = join_uri(prefix, OUTPUTS_FILE);
    if store.exists(&outputs_uri).await? {
        let bytes = store.read(&outputs_uri).await?;
        match core::LiteralMap::decode(bytes) {
            Ok(outputs) => return Ok(outputs),
            // A torn or foreign file: the rows are still in Snowflake, so materialize them again over it.
            Err(e) => tracing::warn!(uri = %outputs_uri, error = %e, "stored outputs are not a LiteralMap; materializing again"),
        }
    }
    let sql = format!("SELECT * FROM TABLE(RESULT_SCAN('{query_id}'))");
    let (schema, batches) = match client.exec(target, credentials, &sql).await.map_err(|e| e.context("reading the query's rows"))? {
        Rows::Arrow(chunks) => {
            let size: u64 = chunks.iter().map(|c| c.len() as u64).sum();
            if size > max_bytes {
                return Err(AgentError::user(
                    codes::MATERIALIZE_FAILED,
                    format!(
                        "the query's result is {size} bytes, more than max_materialize_bytes ({max_bytes}): \
                         write it to a table or stage instead, or raise the limit in [agents.snowflake]"
                    ),
                ));
            }
            results::from_ipc(&chunks)?
        }
        Rows::Json { columns, rows } => results::from_json(&columns, &rows)?,
        Rows::Empty => {
            let columns = client.describe(target, credentials, &sql).await.map_err(|e| e.context("describing the query's rows"))?;
            (results::schema_of(&columns), Vec::new())
        }
    };
    let dir = join_uri(prefix, RESULTS);
    let sd = write_parquet(store.as_ref(), &dir, schema, &batches).await.map_err(|e| match e {
        tern_type_transformers::DataError::Store(e) => AgentError::from(e).context("writing the query's rows as Parquet"),
        other => AgentError::user(codes::MATERIALIZE_FAILED, format!("writing the query's rows as Parquet: {other}")),
    })?;
    let outputs = core::LiteralMap { literals: [(RESULTS.to_owned(), sd.to_dataset_literal())].into() };
    store.write(&outputs_uri, outputs.encode_to_vec().into()).await?;
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flytekit_uri() {
        let t = Target { account: "org-a".into(), user: "U".into(), warehouse: "W".into(), database: "D".into(), schema: "S".into() };
        assert_eq!(results_uri(&t, "q-1"), "snowflake://U:org-a/W/D/S/q-1");
        let m = uri_outputs(&t, "q-1");
        let sd = StructuredDataset::from_dataset_literal(&m.literals[RESULTS]).unwrap();
        assert_eq!((sd.uri.as_str(), sd.format.as_str(), sd.columns.len()), ("snowflake://U:org-a/W/D/S/q-1", "", 0));
    }
}
