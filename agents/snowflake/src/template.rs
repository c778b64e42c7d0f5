//! Reading a `snowflake` task template exactly as flytekitplugins-snowflake 1.16.31 writes it.
//!
//! - `type` = `"snowflake"`, `task_type_version` = 0;
//! - `sql.statement` = the query (flytekit's `SQLTask` collapses whitespace to single spaces),
//!   dialect ANSI;
//! - `config` (the template's string map, field 16 — not `custom`) = `user`, `account`,
//!   `database`, `schema`, `warehouse` (`SnowflakeConfig`); the agent's section fills any that a
//!   template (e.g. a Tern YAML workflow) leaves out or empty;
//! - `custom`: flytekit writes none. Tern reads one optional key, `materialize`
//!   (`"none"`/`"parquet"`), and refuses any other;
//! - interface: inputs are query parameters (`params.rs`); the only output flytekit declares is
//!   `results` (a StructuredDataset), present when the task has an `output_schema_type`.
use tern_agent_api::core;
use tern_agent_api::prelude::AgentError;
use tern_type_transformers::render::struct_to_json;

use crate::codes;
use crate::config::{valid_account, Materialize, SnowflakeConfig};

/// The task type flytekit's SnowflakeTask declares.
pub const TASK_TYPE: &str = "snowflake";
/// The output flytekit's SnowflakeTask declares when it has an output schema type.
pub const RESULTS: &str = "results";

/// Where a query runs: the login and its session's context.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub account: String,
    pub user: String,
    #[serde(default)]
    pub warehouse: String,
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub schema: String,
}

/// A Snowflake task, read from its template.
#[derive(Debug, Clone, PartialEq)]
pub struct SnowflakeTask {
    pub statement: String,
    pub target: Target,
    /// The template's `custom.materialize`, when given.
    pub materialize: Option<Materialize>,
    /// The interface declares outputs (flytekit's `has_output`).
    pub has_output: bool,
    /// The declared `results` output's type, when declared.
    pub results_type: Option<core::LiteralType>,
}

impl SnowflakeTask {
    pub fn from_template(template: &core::TaskTemplate, defaults: &SnowflakeConfig) -> Result<Self, AgentError> {
        let statement = match &template.target {
            Some(core::task_template::Target::Sql(sql)) => sql.statement.trim().to_owned(),
            _ => String::new(),
        };
        if statement.is_empty() {
            return Err(codes::bad_template(
                "the task template has no SQL: a Snowflake task's query is TaskTemplate.sql.statement",
            ));
        }
        let pick = |key: &str, default: &Option<String>| -> String {
            template
                .config
                .get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .or_else(|| default.clone())
                .unwrap_or_default()
        };
        let target = Target {
            account: pick("account", &defaults.account),
            user: pick("user", &defaults.user),
            warehouse: pick("warehouse", &defaults.warehouse),
            database: pick("database", &defaults.database),
            schema: pick("schema", &defaults.schema),
        };
        for (key, value) in [("account", &target.account), ("user", &target.user)] {
            if value.is_empty() {
                return Err(codes::bad_template(format!(
                    "the task names no Snowflake {key}: set TaskTemplate.config[\"{key}\"] (SnowflakeConfig.{key} in flytekit) \
                     or `{key}` in [agents.snowflake]"
                )));
            }
        }
        if !valid_account(&target.account) {
            return Err(AgentError::permission_denied(
                codes::ACCOUNT_NOT_ALLOWED,
                format!("{:?} is not a Snowflake account identifier (org-account or locator.region)", target.account),
            ));
        }
        let mut materialize = None;
        if let Some(custom) = &template.custom {
            for (key, value) in struct_to_json(custom) {
                match (key.as_str(), value) {
                    ("materialize", serde_json::Value::String(text)) => {
                        materialize = Some(Materialize::parse(&text).ok_or_else(|| {
                            codes::bad_template(format!("custom.materialize = {text:?}: expected \"none\" or \"parquet\""))
                        })?);
                    }
                    ("materialize", other) => {
                        return Err(codes::bad_template(format!(
                            "custom.materialize = {other}: expected \"none\" or \"parquet\""
                        )))
                    }
                    (other, _) => {
                        return Err(codes::bad_template(format!(
                            "unknown custom key {other:?} (a Snowflake task's custom may only set \"materialize\")"
                        )))
                    }
                }
            }
        }
        let outputs = template.interface.as_ref().and_then(|i| i.outputs.as_ref());
        let has_output = outputs.is_some_and(|o| !o.variables.is_empty());
        let results_type = outputs.and_then(|o| o.variables.get(RESULTS)).and_then(|v| v.r#type.clone());
        if let Some(o) = outputs {
            if let Some(other) = o.variables.keys().find(|k| k.as_str() != RESULTS) {
                return Err(codes::bad_template(format!(
                    "output {other:?}: a Snowflake task has one output, `results` (a StructuredDataset)"
                )));
            }
        }
        Ok(Self { statement, target, materialize, has_output, results_type })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::render::json_to_struct;

    fn template(config: &[(&str, &str)], sql: &str) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: TASK_TYPE.into(),
            target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
            config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    const FLYTEKIT: &[(&str, &str)] =
        &[("user", "u"), ("account", "org-acct"), ("database", "db"), ("schema", "PUBLIC"), ("warehouse", "wh")];

    #[test]
    fn reads_flytekit_config() {
        let t = SnowflakeTask::from_template(&template(FLYTEKIT, " SELECT 1 "), &SnowflakeConfig::default()).unwrap();
        assert_eq!(t.statement, "SELECT 1");
        assert_eq!(
            t.target,
            Target { account: "org-acct".into(), user: "u".into(), warehouse: "wh".into(), database: "db".into(), schema: "PUBLIC".into() }
        );
        assert!(!t.has_output && t.materialize.is_none());
    }

    #[test]
    fn agent_defaults_fill_what_the_template_leaves_out() {
        let defaults = SnowflakeConfig { account: Some("a1".into()), user: Some("bob".into()), warehouse: Some("W".into()), ..Default::default() };
        let t = SnowflakeTask::from_template(&template(&[("warehouse", "")], "SELECT 1"), &defaults).unwrap();
        assert_eq!((t.target.account.as_str(), t.target.user.as_str(), t.target.warehouse.as_str()), ("a1", "bob", "W"));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let d = SnowflakeConfig::default();
        let e = SnowflakeTask::from_template(&template(FLYTEKIT, "  "), &d).unwrap_err();
        assert!(e.code == codes::BAD_TEMPLATE && e.message.contains("sql.statement"), "{e}");
        let e = SnowflakeTask::from_template(&template(&[("user", "u")], "SELECT 1"), &d).unwrap_err();
        assert!(e.message.contains("account"), "{e}");
        let e = SnowflakeTask::from_template(&template(&[("user", "u"), ("account", "x.evil.com/")], "SELECT 1"), &d).unwrap_err();
        assert_eq!(e.code, codes::ACCOUNT_NOT_ALLOWED);
        let mut t = template(FLYTEKIT, "SELECT 1");
        t.custom = Some(json_to_struct(serde_json::json!({"materialise": "parquet"}).as_object().unwrap()));
        assert!(SnowflakeTask::from_template(&t, &d).unwrap_err().message.contains("materialise"));
        t.custom = Some(json_to_struct(serde_json::json!({"materialize": "csv"}).as_object().unwrap()));
        assert!(SnowflakeTask::from_template(&t, &d).unwrap_err().message.contains("csv"));
        t.custom = Some(json_to_struct(serde_json::json!({"materialize": "parquet"}).as_object().unwrap()));
        assert_eq!(SnowflakeTask::from_template(&t, &d).unwrap().materialize, Some(Materialize::Parquet));
    }
}
