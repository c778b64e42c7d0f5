//! What a `bigquery_query_job_task` template says, read the way flytekitplugins-bigquery 1.16.31
//! writes it:
//!
//! - `sql.statement`: the query (dialect ANSI); inputs are its named parameters (`@name`);
//! - `custom`: `ProjectID` (string), `Location` (string or null), `Domain` (the registration
//!   domain, used by flytekit only in its user agent), plus the keys of a `QueryJobConfig`'s REST
//!   form (`useLegacySql`, `maximumBytesBilled`, `labels`, `priority`, `defaultDataset`,
//!   `destinationTable`, `writeDisposition`, …) when the task set one. flytekit's Python connector
//!   ignores those; this agent passes them on in the job's `configuration.query` (as Flyte's Go
//!   plugin does), except `query`, `queryParameters` and `parameterMode`, which come from the SQL
//!   and the inputs;
//! - Tern's own key `materialize` (`"parquet"` or `"none"`) overrides `[agents.bigquery] materialize`;
//! - `interface.outputs.results` (a StructuredDataset): the job's destination table.
use serde_json::{Map, Value};
use tern_agent_api::prelude::core;
use tern_type_transformers::structs::struct_to_json;

use crate::codes::bad_template;
use crate::config::{BigQueryConfig, Materialize};
use tern_agent_api::prelude::AgentError;

/// The name flytekit gives the query's output.
pub const RESULTS: &str = "results";
/// Custom keys flytekit writes that are not job configuration.
const FLYTEKIT_KEYS: &[&str] = &["ProjectID", "Location", "Domain"];
/// Tern's own custom keys.
pub const MATERIALIZE_KEY: &str = "materialize";
/// Query configuration this agent sets itself.
const OWN_QUERY_KEYS: &[&str] = &["query", "queryParameters", "parameterMode"];

/// A template, read.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTask {
    pub sql: String,
    pub project: String,
    pub location: Option<String>,
    /// Extra `configuration.query` keys from `custom` (a QueryJobConfig's REST form).
    pub query_config: Map<String, Value>,
    /// Whether the interface declares the output `results`.
    pub declares_results: bool,
    pub materialize: Materialize,
}

impl QueryTask {
    pub fn read(template: &core::TaskTemplate, config: &BigQueryConfig) -> Result<Self, AgentError> {
        let sql = match &template.target {
            Some(core::task_template::Target::Sql(sql)) if !sql.statement.trim().is_empty() => sql.statement.clone(),
            _ => return Err(bad_template("the task has no SQL (`sql.statement` is empty)")),
        };
        let custom = template.custom.as_ref().map(struct_to_json).unwrap_or_default();
        let project = match custom.get("ProjectID") {
            Some(Value::String(p)) if !p.trim().is_empty() => p.trim().to_owned(),
            Some(Value::Null) | None => match &config.default_project {
                Some(p) if !p.trim().is_empty() => p.trim().to_owned(),
                _ => {
                    return Err(bad_template(
                        "no project: set custom.ProjectID (BigQueryConfig(ProjectID=...)) or [agents.bigquery] default_project",
                    ))
                }
            },
            Some(other) => return Err(bad_template(format!("custom.ProjectID must be a string, got {other}"))),
        };
        if !project.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '_')) {
            return Err(bad_template(format!("custom.ProjectID {project:?} is not a BigQuery project id")));
        }
        let location = match custom.get("Location") {
            Some(Value::String(l)) if !l.trim().is_empty() => Some(l.trim().to_owned()),
            Some(Value::String(_)) | Some(Value::Null) | None => config.default_location.clone(),
            Some(other) => return Err(bad_template(format!("custom.Location must be a string, got {other}"))),
        };
        let materialize = match custom.get(MATERIALIZE_KEY) {
            None | Some(Value::Null) => config.materialize,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("parquet") => Materialize::Parquet,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => Materialize::None,
            Some(other) => {
                return Err(bad_template(format!("custom.{MATERIALIZE_KEY} must be \"parquet\" or \"none\", got {other}")))
            }
        };
        let query_config = custom
            .into_iter()
            .filter(|(k, _)| !FLYTEKIT_KEYS.contains(&k.as_str()) && k != MATERIALIZE_KEY && !OWN_QUERY_KEYS.contains(&k.as_str()))
            .filter(|(_, v)| !v.is_null())
            .collect();
        let declares_results = template
            .interface
            .as_ref()
            .and_then(|i| i.outputs.as_ref())
            .is_some_and(|o| o.variables.contains_key(RESULTS));
        Ok(Self { sql, project, location, query_config, declares_results, materialize })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::structs::json_to_struct;

    fn template(custom: Value, sql: &str) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "bigquery_query_job_task".into(),
            custom: Some(json_to_struct(custom.as_object().unwrap())),
            target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
            ..Default::default()
        }
    }

    #[test]
    fn reads_flytekits_custom_keys_and_passes_query_job_config_on() {
        let t = template(
            serde_json::json!({"ProjectID": "proj", "Location": null, "Domain": "development",
                               "useLegacySql": false, "maximumBytesBilled": "1000", "query": "ignored"}),
            "SELECT @x",
        );
        let q = QueryTask::read(&t, &BigQueryConfig { default_location: Some("EU".into()), ..Default::default() }).unwrap();
        assert_eq!((q.project.as_str(), q.location.as_deref(), q.sql.as_str()), ("proj", Some("EU"), "SELECT @x"));
        assert_eq!(q.query_config.keys().collect::<Vec<_>>(), ["maximumBytesBilled", "useLegacySql"]);
        assert!(!q.declares_results);
        assert_eq!(q.materialize, Materialize::None);
    }

    #[test]
    fn refusals_name_the_key() {
        let config = BigQueryConfig::default();
        for (custom, sql, key) in [
            (serde_json::json!({}), "SELECT 1", "ProjectID"),
            (serde_json::json!({"ProjectID": 3}), "SELECT 1", "ProjectID"),
            (serde_json::json!({"ProjectID": "p", "Location": 1}), "SELECT 1", "Location"),
            (serde_json::json!({"ProjectID": "p", "materialize": "csv"}), "SELECT 1", "materialize"),
            (serde_json::json!({"ProjectID": "p"}), "  ", "sql.statement"),
        ] {
            let e = QueryTask::read(&template(custom, sql), &config).unwrap_err();
            assert!(e.message.contains(key), "{e}");
            assert_eq!(e.code, crate::codes::BAD_TEMPLATE);
        }
        let q = QueryTask::read(
            &template(serde_json::json!({"materialize": "parquet"}), "SELECT 1"),
            &BigQueryConfig { default_project: Some("dp".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!((q.project.as_str(), q.materialize), ("dp", Materialize::Parquet));
    }
}
