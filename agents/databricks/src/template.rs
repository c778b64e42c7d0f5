//! Reading a Databricks task template the way flytekitplugins-spark 1.16.31 writes it.
//!
//! `custom` is the `SparkJob` proto as camelCase JSON (`MessageToDict`) plus the
//! `DatabricksV2` extras; the container carries the image, the rendered args and the env.
use serde_json::{Map, Value};
use tern_agent_api::prelude::*;
use tern_type_transformers::render::struct_to_json;

use crate::codes;

/// Keys flytekit writes that this agent reads.
pub const READ_KEYS: &[&str] = &[
    "databricksConf",
    "databricksInstance",
    "sparkConf",
    "notebookPath",
    "notebookBaseParameters",
    "databricksAuthType",
    "databricksServiceCredentialProvider",
];

/// Keys flytekit writes that name Kubernetes secrets or identities of its connector's
/// namespace. Tern's credentials come from its own configuration, so they are ignored.
pub const IGNORED_AUTH_KEYS: &[&str] = &[
    "databricksTokenSecret",
    "databricksClientId",
    "databricksOauthSecret",
    "databricksOidcTokenFile",
    "databricksOidcAudience",
];

/// What a Databricks task asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatabricksTask {
    /// `databricksConf`: the Jobs API run spec (numbers that are whole are integers again).
    pub conf: Map<String, Value>,
    /// `databricksInstance`.
    pub instance: Option<String>,
    /// `sparkConf`.
    pub spark_conf: Map<String, Value>,
    /// `notebookPath` (runs a notebook instead of the entrypoint).
    pub notebook_path: Option<String>,
    /// `notebookBaseParameters`.
    pub notebook_base_parameters: Map<String, Value>,
    /// `databricksAuthType`: `pat`, `oauth_m2m` or `oidc_federation`.
    pub auth_type: Option<String>,
    /// `databricksServiceCredentialProvider` (serverless S3 access).
    pub service_credential_provider: Option<String>,
    /// `container.image`.
    pub image: String,
    /// `container.args`, already rendered by propeller or `tern run`.
    pub args: Vec<String>,
    /// `container.env`, in order.
    pub env: Vec<(String, String)>,
    /// The template's identifier name (a default `run_name`).
    pub task_name: String,
    /// The interface declares outputs (the task must write `<output_prefix>/outputs.pb`).
    pub declares_outputs: bool,
}

impl DatabricksTask {
    pub fn from_template(template: &core::TaskTemplate) -> Result<Self, AgentError> {
        let custom = template
            .custom
            .as_ref()
            .map(struct_to_json)
            .ok_or_else(|| codes::bad_template("the task has no custom config (flytekit writes the SparkJob there: databricksConf, …)"))?;
        let conf = match custom.get("databricksConf") {
            Some(Value::Object(o)) => whole_numbers(Value::Object(o.clone())),
            Some(Value::Null) | None => {
                return Err(codes::bad_template(
                    "custom has no databricksConf: give DatabricksV2(databricks_conf={...}) the Jobs API run spec",
                ))
            }
            Some(other) => return Err(codes::bad_template(format!("databricksConf must be an object, got {}", kind(other)))),
        };
        let Value::Object(conf) = conf else { unreachable!("an object stays an object") };
        let container = match &template.target {
            Some(core::task_template::Target::Container(c)) => c,
            _ => return Err(codes::bad_template("the task has no container (image and args of the flytekit entrypoint)")),
        };
        let declares_outputs = template
            .interface
            .as_ref()
            .and_then(|i| i.outputs.as_ref())
            .is_some_and(|o| !o.variables.is_empty());
        Ok(Self {
            conf,
            instance: opt_text(&custom, "databricksInstance")?,
            spark_conf: object(&custom, "sparkConf")?,
            notebook_path: opt_text(&custom, "notebookPath")?,
            notebook_base_parameters: object(&custom, "notebookBaseParameters")?,
            auth_type: opt_text(&custom, "databricksAuthType")?,
            service_credential_provider: opt_text(&custom, "databricksServiceCredentialProvider")?,
            image: container.image.clone(),
            args: container.args.clone(),
            env: container.env.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect(),
            task_name: template.id.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
            declares_outputs,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A text key; empty text counts as absent (flytekit tests truthiness).
fn opt_text(custom: &Map<String, Value>, key: &str) -> Result<Option<String>, AgentError> {
    match custom.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(codes::bad_template(format!("{key} must be a text, got {}", kind(other)))),
    }
}

fn object(custom: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, AgentError> {
    match custom.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(other) => Err(codes::bad_template(format!("{key} must be an object, got {}", kind(other)))),
    }
}

/// `custom` is a protobuf `Struct`, whose numbers are doubles: `num_workers: 2` arrives as
/// `2.0`. Whole numbers become integers again, so strict Jobs API fields accept them.
pub fn whole_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(whole_numbers).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, whole_numbers(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::render::json_to_struct;

    fn template(custom: Value) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "databricks".into(),
            custom: custom.as_object().map(json_to_struct),
            target: Some(core::task_template::Target::Container(core::Container {
                image: "ghcr.io/x/y:1".into(),
                args: vec!["pyflyte-execute".into(), "--inputs".into(), "s3://b/inputs.pb".into()],
                env: vec![core::KeyValuePair { key: "A".into(), value: "1".into() }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_flytekit_writes() {
        let t = template(json!({
            "databricksConf": {"run_name": "r", "new_cluster": {"num_workers": 2.0, "spark_version": "13.3.x"}},
            "databricksInstance": "dbc-1.cloud.databricks.com",
            "sparkConf": {"spark.x": "1"},
            "mainApplicationFile": "local:///x/entrypoint.py",
            "executorPath": "/usr/bin/python3",
            "applicationType": "PYTHON",
            "databricksAuthType": "pat",
            "databricksTokenSecret": "team-token",
            "notebookBaseParameters": {"a": "b"},
        }));
        let d = DatabricksTask::from_template(&t).unwrap();
        assert_eq!(d.conf["new_cluster"]["num_workers"], json!(2), "whole doubles are integers again");
        assert_eq!(d.instance.as_deref(), Some("dbc-1.cloud.databricks.com"));
        assert_eq!(d.spark_conf["spark.x"], "1");
        assert_eq!(d.auth_type.as_deref(), Some("pat"));
        assert_eq!(d.args.len(), 3);
        assert_eq!(d.env, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(d.notebook_path, None);
    }

    #[test]
    fn refuses_templates_flytekit_would_crash_on() {
        for custom in [json!({}), json!({"databricksConf": null}), json!({"databricksConf": "x"}), json!({"databricksConf": {}, "sparkConf": 3})] {
            let e = DatabricksTask::from_template(&template(custom.clone())).unwrap_err();
            assert_eq!(e.code, codes::BAD_TEMPLATE, "{custom}");
        }
        let mut t = template(json!({"databricksConf": {}}));
        t.target = None;
        assert_eq!(DatabricksTask::from_template(&t).unwrap_err().code, codes::BAD_TEMPLATE);
        t.custom = None;
        assert_eq!(DatabricksTask::from_template(&t).unwrap_err().code, codes::BAD_TEMPLATE);
    }

    #[test]
    fn whole_numbers_only() {
        assert_eq!(whole_numbers(json!({"a": [1.0, 1.5, "2.0"]})), json!({"a": [1, 1.5, "2.0"]}));
    }
}
