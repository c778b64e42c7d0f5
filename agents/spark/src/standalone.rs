//! The standalone master's REST submission API (`spark.master.rest.enabled`, port 6066):
//! `POST /v1/submissions/create`, `GET /v1/submissions/status/<id>`,
//! `POST /v1/submissions/kill/<id>`.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use tern_agent_api::prelude::*;

use crate::codes;
use crate::config::SparkConfig;
use crate::template::{AppType, SparkTask};

/// Spark's runner of Python applications in cluster mode.
pub const PYTHON_RUNNER: &str = "org.apache.spark.deploy.PythonRunner";

/// What the REST server answers (every action shares these fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestResponse {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub submission_id: Option<String>,
    #[serde(default)]
    pub driver_state: Option<String>,
    #[serde(default)]
    pub worker_id: Option<String>,
    #[serde(default)]
    pub worker_host_port: Option<String>,
    #[serde(default)]
    pub server_spark_version: Option<String>,
}

/// A submission id as the master makes them (`driver-20261130231500-0001`): checked before it
/// goes into a URL or a path.
pub fn valid_submission_id(id: &str) -> bool {
    id.starts_with("driver-") && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The `CreateSubmissionRequest` for `task`, named `app_name`.
pub fn create_body(task: &SparkTask, config: &SparkConfig, app_name: &str, key: Option<&str>) -> Value {
    let (app_resource, main_class, mut app_args) = match task.app_type {
        AppType::Python => {
            let resource = if task.app_file.starts_with('/') { format!("file:{}", task.app_file) } else { task.app_file.clone() };
            (resource, PYTHON_RUNNER.to_owned(), vec![task.app_file.clone(), String::new()])
        }
        AppType::Java | AppType::Scala => {
            let resource = if task.app_file.starts_with('/') { format!("file:{}", task.app_file) } else { task.app_file.clone() };
            (resource, task.main_class.clone().unwrap_or_default(), Vec::new())
        }
    };
    app_args.extend(task.args.iter().cloned());
    let env = environment(task, config);
    let mut props: BTreeMap<String, String> = config.spark_conf.clone();
    for (k, v) in &task.properties {
        props.insert(k.clone(), v.clone());
    }
    for (k, v) in &env {
        if k != "SPARK_ENV_LOADED" {
            props.insert(format!("spark.executorEnv.{k}"), v.clone());
        }
    }
    props.insert("spark.app.name".into(), app_name.to_owned());
    props.insert("spark.master".into(), config.spark_master());
    props.insert("spark.submit.deployMode".into(), "cluster".into());
    props.entry("spark.driver.supervise".into()).or_insert_with(|| "false".into());
    if let Some(k) = key {
        props.insert("spark.tern.idempotencyKey".into(), k.to_owned());
    }
    json!({
        "action": "CreateSubmissionRequest",
        "appResource": app_resource,
        "mainClass": main_class,
        "appArgs": app_args,
        "clientSparkVersion": config.spark_version,
        "environmentVariables": env,
        "sparkProperties": props,
    })
}

/// The driver's environment: `FLYTE_FAIL_ON_ERROR=true` (as flytekit's Databricks connector sets:
/// without it `pyflyte-execute` records a task's exception in `error.pb` and exits 0), the
/// section's `env`, the container's, and `PYSPARK_PYTHON`.
pub fn environment(task: &SparkTask, config: &SparkConfig) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("SPARK_ENV_LOADED".into(), "1".into());
    env.insert("FLYTE_FAIL_ON_ERROR".into(), "true".into());
    env.extend(config.env.clone());
    env.extend(task.env.iter().cloned());
    if task.app_type == AppType::Python {
        if let Some(python) = config.python.clone().or_else(|| task.executor_path.clone()) {
            env.insert("PYSPARK_PYTHON".into(), python);
        }
    }
    env
}

/// Calls to one master.
#[derive(Debug, Clone)]
pub struct RestClient {
    base: String,
    config: std::sync::Arc<SparkConfig>,
}

impl RestClient {
    pub fn new(config: std::sync::Arc<SparkConfig>) -> Self {
        let base = config.rest_url.as_deref().unwrap_or_default().trim().trim_end_matches('/').to_owned();
        Self { base, config }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call(&self, ctx: &TaskContext, request: reqwest::RequestBuilder, what: &str) -> Result<RestResponse, AgentError> {
        let mut request = request.timeout(self.config.request_timeout);
        if let Some(reference) = &self.config.token {
            let token = ctx
                .secrets()
                .resolve(reference)
                .map_err(|e| codes::denied(format!("[agents.spark] token {}: {}", reference.reference(), e.message)))?;
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| codes::unavailable(format!("{what}: the Spark master at {} cannot be reached: {e}", self.base)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| codes::unavailable(format!("{what}: reading the Spark master's answer failed: {e}")))?;
        let shown = || {
            let mut t: String = text.lines().take(3).collect::<Vec<_>>().join(" ");
            t.truncate(500);
            t
        };
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(codes::denied(format!("{what}: the Spark master refused the credentials (HTTP {status}): {}", shown())));
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(codes::unavailable(format!("{what}: the Spark master answered HTTP {status}: {}", shown())));
        }
        let parsed: RestResponse = serde_json::from_str(&text).map_err(|_| {
            if status.is_client_error() {
                codes::rejected(format!("{what}: the Spark master answered HTTP {status}: {}", shown()))
            } else {
                codes::unavailable(format!("{what}: the answer (HTTP {status}) is not the Spark REST API's JSON: {}", shown()))
            }
        })?;
        if parsed.action.as_deref() == Some("ErrorResponse") {
            let mut m = parsed.message.clone().unwrap_or_default();
            m.truncate(2000);
            return Err(codes::rejected(format!("{what}: the Spark master refused the request: {}", first_line(&m))));
        }
        if status.is_client_error() {
            return Err(codes::rejected(format!("{what}: the Spark master answered HTTP {status}: {}", shown())));
        }
        Ok(parsed)
    }

    /// Submits; the driver's submission id.
    pub async fn create(&self, ctx: &TaskContext, body: &Value) -> Result<String, AgentError> {
        let url = format!("{}/v1/submissions/create", self.base);
        let r = self.call(ctx, ctx.http().post(url).json(body), "submitting the driver").await?;
        match (r.success, r.submission_id) {
            (Some(true), Some(id)) if valid_submission_id(&id) => Ok(id),
            (Some(true), Some(id)) => Err(codes::unavailable(format!(
                "the Spark master answered an unexpected submission id {:?}",
                id.chars().take(60).collect::<String>()
            ))),
            _ => Err(codes::rejected(format!(
                "the Spark master did not accept the driver: {}",
                first_line(r.message.as_deref().unwrap_or("no message"))
            ))),
        }
    }

    pub async fn status(&self, ctx: &TaskContext, id: &str) -> Result<RestResponse, AgentError> {
        let url = format!("{}/v1/submissions/status/{id}", self.base);
        self.call(ctx, ctx.http().get(url), "reading the driver's state").await
    }

    /// Asks the master to kill the driver. A finished or unknown driver is fine.
    pub async fn kill(&self, ctx: &TaskContext, id: &str) -> Result<RestResponse, AgentError> {
        let url = format!("{}/v1/submissions/kill/{id}", self.base);
        self.call(ctx, ctx.http().post(url), "killing the driver").await
    }
}

/// The first line of a message (the master's messages carry Java stack traces).
pub fn first_line(m: &str) -> String {
    let mut line = m.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned();
    line.truncate(1000);
    line
}

/// The table name of a status answer.
pub fn state_name(r: &RestResponse) -> String {
    match r.driver_state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_owned(),
        None if r.success == Some(false) => crate::states::NOT_FOUND.to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> SparkTask {
        SparkTask {
            app_type: AppType::Python,
            app_file: "/venv/flytekit/bin/entrypoint.py".into(),
            executor_path: Some("/venv/bin/python".into()),
            properties: vec![("spark.driver.memory".into(), "1g".into()), ("spark.master".into(), "yarn".into())],
            args: vec!["pyflyte-execute".into(), "--inputs".into(), "/d/inputs.pb".into()],
            env: vec![("FOO".into(), "bar".into())],
            ..Default::default()
        }
    }

    #[test]
    fn a_python_application_in_cluster_mode() {
        let config = SparkConfig {
            rest_url: Some("http://127.0.0.1:6066".into()),
            mode: Some(crate::config::SparkMode::Standalone),
            spark_conf: [("spark.ui.enabled".to_owned(), "false".to_owned()), ("spark.driver.memory".to_owned(), "512m".to_owned())].into(),
            env: [("SPARK_LOCAL_IP".to_owned(), "127.0.0.1".to_owned())].into(),
            ..Default::default()
        };
        let b = create_body(&task(), &config, "tern-abc", Some("abc"));
        assert_eq!(b["action"], "CreateSubmissionRequest");
        assert_eq!(b["appResource"], "file:/venv/flytekit/bin/entrypoint.py");
        assert_eq!(b["mainClass"], PYTHON_RUNNER);
        assert_eq!(b["appArgs"], json!(["/venv/flytekit/bin/entrypoint.py", "", "pyflyte-execute", "--inputs", "/d/inputs.pb"]));
        assert_eq!(b["clientSparkVersion"], "4.3.0");
        let env = &b["environmentVariables"];
        assert_eq!((env["PYSPARK_PYTHON"].as_str(), env["FOO"].as_str(), env["SPARK_LOCAL_IP"].as_str()), (Some("/venv/bin/python"), Some("bar"), Some("127.0.0.1")));
        assert_eq!(env["FLYTE_FAIL_ON_ERROR"], "true", "a failing task must end the driver non-zero");
        let p = &b["sparkProperties"];
        assert_eq!(p["spark.driver.memory"], "1g", "the template wins over the section");
        assert_eq!(p["spark.ui.enabled"], "false");
        assert_eq!(p["spark.master"], "spark://127.0.0.1:7077", "the agent's master, never the template's");
        assert_eq!(p["spark.submit.deployMode"], "cluster");
        assert_eq!(p["spark.app.name"], "tern-abc");
        assert_eq!(p["spark.tern.idempotencyKey"], "abc");
        assert_eq!(p["spark.executorEnv.FOO"], "bar");
        let forced = SparkConfig { python: Some("/opt/py".into()), ..config };
        assert_eq!(create_body(&task(), &forced, "n", None)["environmentVariables"]["PYSPARK_PYTHON"], "/opt/py");
    }

    #[test]
    fn a_jvm_application() {
        let t = SparkTask { app_type: AppType::Scala, app_file: "hdfs://n/app.jar".into(), main_class: Some("a.Main".into()), args: vec!["x".into()], ..Default::default() };
        let b = create_body(&t, &SparkConfig::default(), "n", None);
        assert_eq!((b["appResource"].as_str(), b["mainClass"].as_str()), (Some("hdfs://n/app.jar"), Some("a.Main")));
        assert_eq!(b["appArgs"], json!(["x"]));
        assert!(b["environmentVariables"].get("PYSPARK_PYTHON").is_none());
    }

    #[test]
    fn ids_and_states() {
        assert!(valid_submission_id("driver-20261130231500-0001"));
        for bad in ["", "driver-../x", "app-1", "driver-1/2", "driver-1?x"] {
            assert!(!valid_submission_id(bad), "{bad}");
        }
        let r: RestResponse = serde_json::from_str(r#"{"action":"SubmissionStatusResponse","driverState":"FINISHED","success":true,"workerId":"w"}"#).unwrap();
        assert_eq!(state_name(&r), "FINISHED");
        let r: RestResponse = serde_json::from_str(r#"{"action":"SubmissionStatusResponse","success":false,"submissionId":"driver-x"}"#).unwrap();
        assert_eq!(state_name(&r), "NOT_FOUND");
        assert_eq!(first_line("\n  java.lang.X: boom\n\tat a.b"), "java.lang.X: boom");
    }
}
