//! `[agents.spark]`: where Spark tasks run (a standalone master's REST submission API, or
//! `spark-submit` in local mode on the gateway's host), and which task types are served.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// Where the agent runs Spark applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparkMode {
    /// A Spark standalone master's REST submission API (`spark.master.rest.enabled`): the
    /// driver runs on the cluster (deploy mode `cluster`). Safe to serve.
    Standalone,
    /// `spark-submit --master local[…]` as a subprocess of the gateway: the task's code runs on
    /// the gateway's host with its rights (served by `tern serve` only with `enabled = true`).
    Local,
}

/// Settings of the Spark agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparkConfig {
    /// `standalone` or `local`. Unset: the agent serves nothing (flytekit's `spark` type is also
    /// Databricks' and Spark-on-Kubernetes': the operator chooses who serves it).
    pub mode: Option<SparkMode>,
    /// Task types served (version 0) once `mode` is set. flytekit writes `spark` for
    /// `@task(task_config=Spark(...))`. Two agents of one gateway cannot both serve `spark`:
    /// give `[agents.databricks]` `task_types = ["databricks"]`, or route (docs/gateway.md).
    pub task_types: Vec<String>,
    /// Standalone: the master's REST submission server (`http://host:6066`).
    pub rest_url: Option<String>,
    /// The `spark.master` of submitted applications. Standalone: the master's RPC URL
    /// (`spark://host:7077`, default: `rest_url`'s host on port 7077). Local: default
    /// `local[2]`.
    pub master: Option<String>,
    /// Standalone: the master's web UI (`http://host:8080`), given as the task's log link.
    pub ui_url: Option<String>,
    /// Standalone: the worker's `--work-dir`, when it is readable from the gateway's host: the
    /// driver's `stdout`/`stderr` (`<work_dir>/<driver id>/`) are then served by GetTaskLogs.
    pub worker_work_dir: Option<PathBuf>,
    /// Standalone: a secret reference (`env:VAR`, `file:PATH`) to the bearer token the
    /// master's REST server requires (Spark's `JWSFilter`); unset: no `Authorization` header.
    pub token: Option<SecretRef>,
    /// `clientSparkVersion` sent to the master.
    pub spark_version: String,
    /// The Python of the driver and executors (`PYSPARK_PYTHON`), instead of the template's
    /// `executorPath` (flytekit writes the serializing interpreter, or the image's).
    pub python: Option<String>,
    /// The application file for every task instead of the template's `mainApplicationFile`
    /// (flytekit writes the image's entrypoint, `local:///opt/venv/bin/entrypoint.py` by default,
    /// or `local://` + the serializing host's path): where flytekit's `bin/entrypoint.py` is on
    /// the nodes. A local path, `local://`/`file:` path or a URL Spark fetches.
    pub main_application_file: Option<String>,
    /// Spark properties every application gets; the template's `sparkConf` wins.
    pub spark_conf: BTreeMap<String, String>,
    /// Environment variables of the driver (and executors); the container's `env` wins.
    pub env: BTreeMap<String, String>,
    /// Local: the `spark-submit` to run (default `$SPARK_HOME/bin/spark-submit`, else
    /// `spark-submit` on the `PATH`).
    pub spark_submit: Option<PathBuf>,
    /// Local: where each job's directory (`tern-<idempotency key>/`: pid, stdout, stderr, exit
    /// status) is kept. Default: `<temp dir>/tern-spark`.
    pub work_dir: Option<PathBuf>,
    /// Deadline of each call to the master.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for SparkConfig {
    fn default() -> Self {
        Self {
            mode: None,
            task_types: vec!["spark".into()],
            rest_url: None,
            master: None,
            ui_url: None,
            worker_work_dir: None,
            token: None,
            spark_version: "4.3.0".into(),
            python: None,
            main_application_file: None,
            spark_conf: BTreeMap::new(),
            env: BTreeMap::new(),
            spark_submit: None,
            work_dir: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// `text` as an `http(s)` base URL without a trailing slash.
pub fn http_url(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err(format!("{t:?} is not a URL (http://host:port)"));
    };
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('@') {
        return Err(format!("{t:?} is not an http(s) URL with a host"));
    }
    Ok(t.to_owned())
}

impl SparkConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        for t in &self.task_types {
            if t.trim().is_empty() {
                return Err("task_types contains an empty name".into());
            }
        }
        if self.mode.is_some() && self.task_types.is_empty() {
            return Err("task_types is empty: list the task types to serve (e.g. [\"spark\"])".into());
        }
        if self.mode == Some(SparkMode::Standalone) && self.rest_url.is_none() {
            return Err("mode = \"standalone\" needs `rest_url` (the master's REST submission server, http://host:6066)".into());
        }
        if let Some(u) = &self.rest_url {
            http_url(u).map_err(|e| format!("rest_url: {e}"))?;
        }
        if let Some(u) = &self.ui_url {
            http_url(u).map_err(|e| format!("ui_url: {e}"))?;
        }
        if self.mode == Some(SparkMode::Standalone) {
            if let Some(m) = &self.master {
                if !m.starts_with("spark://") {
                    return Err(format!("master {m:?}: a standalone master's URL is spark://host:port"));
                }
            }
        }
        if self.spark_version.trim().is_empty() {
            return Err("spark_version is empty".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        for dir in [&self.worker_work_dir, &self.work_dir].into_iter().flatten() {
            if !dir.is_absolute() {
                return Err(format!("{} is not an absolute path", dir.display()));
            }
        }
        Ok(())
    }

    /// The `spark.master` applications get.
    pub fn spark_master(&self) -> String {
        if let Some(m) = self.master.as_deref().filter(|m| !m.trim().is_empty()) {
            return m.trim().to_owned();
        }
        match self.mode {
            Some(SparkMode::Local) | None => "local[2]".into(),
            Some(SparkMode::Standalone) => {
                let host = self
                    .rest_url
                    .as_deref()
                    .and_then(|u| u.split_once("://"))
                    .map(|(_, r)| r.split('/').next().unwrap_or(r))
                    .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h))
                    .unwrap_or("127.0.0.1");
                format!("spark://{host}:7077")
            }
        }
    }

    /// The task types actually served: none until `mode` is set.
    pub fn served_task_types(&self) -> Vec<String> {
        if self.mode.is_none() {
            return Vec::new();
        }
        self.task_types.clone()
    }
}

/// The factory behind `[agents.spark]`.
pub struct SparkFactory;

impl AgentFactory for SparkFactory {
    type Config = SparkConfig;
    const NAME: &'static str = "spark";
    const DESCRIPTION: &'static str = "flytekit Spark tasks on a standalone master (REST submission) or spark-submit in local mode";

    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[StandardEnv::value("SPARK_MASTER_REST_URL", "rest_url")];
        ENV
    }

    /// Standalone submits to the cluster; local mode runs the task's code on this host.
    fn exposure(config: &SparkConfig) -> Exposure {
        match config.mode {
            Some(SparkMode::Local) => Exposure::ArbitraryCode,
            Some(SparkMode::Standalone) | None => Exposure::Safe,
        }
    }

    fn build(config: SparkConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        Ok(AgentHandle::Async(crate::agent_with(config, init)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfigured_serves_nothing_and_is_safe() {
        let c = SparkConfig::default();
        assert!(c.check().is_ok());
        assert!(c.served_task_types().is_empty());
        assert_eq!(SparkFactory::exposure(&c), Exposure::Safe);
    }

    #[test]
    fn exposure_follows_the_mode() {
        let local: SparkConfig = toml::from_str("mode = \"local\"").unwrap();
        assert_eq!(SparkFactory::exposure(&local), Exposure::ArbitraryCode);
        assert_eq!(local.spark_master(), "local[2]");
        assert_eq!(local.served_task_types(), ["spark"]);
        let m: SparkConfig = toml::from_str("mode = \"local\"\nmain_application_file = \"local:///venv/flytekit/bin/entrypoint.py\"").unwrap();
        assert_eq!(m.main_application_file.as_deref(), Some("local:///venv/flytekit/bin/entrypoint.py"));
        let sa: SparkConfig = toml::from_str("mode = \"standalone\"\nrest_url = \"http://10.0.0.5:6066/\"\ntask_types = [\"spark\", \"pyspark\"]").unwrap();
        assert!(sa.check().is_ok());
        assert_eq!(SparkFactory::exposure(&sa), Exposure::Safe);
        assert_eq!(sa.spark_master(), "spark://10.0.0.5:7077");
        assert_eq!(sa.served_task_types(), ["spark", "pyspark"]);
    }

    #[test]
    fn refusals_name_the_key() {
        let bad = [
            ("mode = \"standalone\"", "rest_url"),
            ("mode = \"standalone\"\nrest_url = \"127.0.0.1:6066\"", "rest_url"),
            ("mode = \"standalone\"\nrest_url = \"http://h:6066\"\nmaster = \"local[1]\"", "master"),
            ("mode = \"local\"\ntask_types = []", "task_types"),
            ("mode = \"local\"\nwork_dir = \"rel\"", "absolute"),
            ("mode = \"local\"\nrequest_timeout = \"0s\"", "request_timeout"),
        ];
        for (text, key) in bad {
            let c: SparkConfig = toml::from_str(text).unwrap();
            let e = c.check().unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
        assert!(toml::from_str::<SparkConfig>("mode = \"yarn\"").is_err());
        assert!(toml::from_str::<SparkConfig>("maste = \"x\"").is_err());
        assert!(toml::from_str::<SparkConfig>("token = \"plain-token\"").is_err(), "a value is not a reference");
    }
}
