//! `[agents.ray]`: which Ray cluster (its dashboard's Jobs API), which credentials, and
//! what the section adds to every job.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tern_agent_api::prelude::*;

/// Settings of the Ray agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RayConfig {
    /// Task types served (version 0). flytekitplugins-ray writes `ray`.
    pub task_types: Vec<String>,
    /// The Ray cluster's dashboard, which serves the Jobs REST API (`RAY_ADDRESS`):
    /// `http://127.0.0.1:8265`, `https://ray.example.com`, or `host:port` (plain HTTP).
    /// Not the GCS port (6379) nor a `ray://` client address.
    pub address: Option<String>,
    /// Bearer token of a secured dashboard, a secret reference (`env:RAY_AUTH_TOKEN`,
    /// `file:/run/secrets/ray-token`): sent as `Authorization: Bearer …`.
    pub token: Option<SecretRef>,
    /// More HTTP headers for every call (an API gateway's key, a proxy's cookie), each
    /// value a secret reference: `{ "X-Api-Key" = "env:RAY_API_KEY" }`.
    pub headers: BTreeMap<String, SecretRef>,
    /// `runtime_env` keys for every job, used where the task's own runtime env does not
    /// set them (`env_vars` are merged key by key, the task's winning):
    /// `{ env_vars = { PYTHONPATH = "/srv/app" }, working_dir = "s3://bucket/app.zip" }`.
    pub runtime_env: BTreeMap<String, Value>,
    /// CPUs reserved for each job's entrypoint (Ray's `entrypoint_num_cpus`; Ray's default
    /// reserves none).
    pub entrypoint_num_cpus: Option<f64>,
    /// GPUs reserved for each job's entrypoint (`entrypoint_num_gpus`).
    pub entrypoint_num_gpus: Option<f64>,
    /// Memory in bytes reserved for each job's entrypoint (`entrypoint_memory`).
    pub entrypoint_memory: Option<u64>,
    /// Custom resources reserved for each job's entrypoint (`entrypoint_resources`).
    pub entrypoint_resources: BTreeMap<String, f64>,
    /// Deadline of each call to the dashboard.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for RayConfig {
    fn default() -> Self {
        Self {
            task_types: vec!["ray".into()],
            address: None,
            token: None,
            headers: BTreeMap::new(),
            runtime_env: BTreeMap::new(),
            entrypoint_num_cpus: None,
            entrypoint_num_gpus: None,
            entrypoint_memory: None,
            entrypoint_resources: BTreeMap::new(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The dashboard's base URL for `address` (no trailing slash), or why it is not one.
pub fn base_url(address: &str) -> Result<String, String> {
    let a = address.trim();
    if a.is_empty() {
        return Err("is empty".into());
    }
    if a.eq_ignore_ascii_case("auto") || a.starts_with("ray://") {
        return Err(format!(
            "{a:?} is a Ray client/GCS address: give the dashboard's HTTP address, which serves the Jobs API \
             (e.g. http://127.0.0.1:8265)"
        ));
    }
    let (scheme, rest) = match a.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest),
        Some(_) => return Err(format!("{a:?} is not an http(s) URL")),
        None => ("http", a),
    };
    let rest = rest.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.ends_with(':') || host.contains('@') || rest.contains(['?', '#', ' ']) {
        return Err(format!("{a:?} is not a plain http(s) address (a host, no user info, query or fragment)"));
    }
    Ok(format!("{scheme}://{rest}"))
}

impl RayConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.task_types.is_empty() {
            return Err("task_types is empty: list the task types to serve (e.g. [\"ray\"])".into());
        }
        if self.task_types.iter().any(|t| t.trim().is_empty()) {
            return Err("task_types contains an empty name".into());
        }
        if let Some(a) = &self.address {
            base_url(a).map_err(|e| format!("address: {e}"))?;
        }
        for name in self.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("headers: {name:?} is not an HTTP header name"));
            }
        }
        if let Some(v) = self.runtime_env.get("env_vars") {
            if !v.as_object().is_some_and(|o| o.values().all(Value::is_string)) {
                return Err("runtime_env.env_vars must map names to texts".into());
            }
        }
        let env: serde_json::Map<String, Value> = self.runtime_env.clone().into_iter().collect();
        if let Some(path) = crate::template::local_paths(&env).first() {
            return Err(format!("runtime_env names the local path {path:?}: working_dir and py_modules must be URIs (s3://, gs://, https://….zip)"));
        }
        for (key, value) in [("entrypoint_num_cpus", self.entrypoint_num_cpus), ("entrypoint_num_gpus", self.entrypoint_num_gpus)] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(format!("{key} must be a number ≥ 0"));
            }
        }
        if let Some((name, _)) = self.entrypoint_resources.iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return Err(format!("entrypoint_resources.{name} must be a number ≥ 0"));
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        Ok(())
    }
}

/// The factory behind `[agents.ray]`.
pub struct RayFactory;

impl AgentFactory for RayFactory {
    type Config = RayConfig;
    const NAME: &'static str = "ray";
    const DESCRIPTION: &'static str = "flytekit Ray tasks as jobs of an existing Ray cluster (Ray Jobs REST API, idempotent)";

    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[
            StandardEnv::value("RAY_ADDRESS", "address"),
            StandardEnv::secret("RAY_AUTH_TOKEN", "token"),
            StandardEnv::secret_file("RAY_AUTH_TOKEN_PATH", "token"),
        ];
        ENV
    }

    /// The job runs on the configured Ray cluster, never on the gateway's host; without an
    /// address every create is refused (`TERN-R002`).
    fn exposure(_config: &RayConfig) -> Exposure {
        Exposure::Safe
    }

    fn build(config: RayConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        Ok(AgentHandle::Async(crate::agent_with(config, &init.services)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_flytekits_type_without_an_address() {
        let c = RayConfig::default();
        assert_eq!(c.task_types, ["ray"]);
        assert!(c.address.is_none());
        assert!(c.check().is_ok());
    }

    #[test]
    fn parses_a_section_and_refuses_unknown_keys_and_values() {
        let c: RayConfig = toml::from_str(
            r#"
            address = "http://127.0.0.1:8265"
            token = "env:RAY_AUTH_TOKEN"
            headers = { "X-Api-Key" = "file:/run/secrets/key" }
            runtime_env = { env_vars = { PYTHONPATH = "/srv" }, working_dir = "s3://b/app.zip" }
            entrypoint_num_cpus = 0.5
            entrypoint_resources = { accel = 1 }
            request_timeout = "5s"
            "#,
        )
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.runtime_env["env_vars"]["PYTHONPATH"], "/srv");
        assert_eq!(c.entrypoint_resources["accel"], 1.0);
        assert!(c.check().is_ok());
        assert!(toml::from_str::<RayConfig>("adress = \"x\"").is_err());
        assert!(toml::from_str::<RayConfig>("token = \"plain-token-value\"").is_err(), "a value is not a reference");
        assert!(toml::from_str::<RayConfig>("headers = { A = \"plain\" }").is_err(), "header values are references");
    }

    #[test]
    fn addresses() {
        assert_eq!(base_url("127.0.0.1:8265").unwrap(), "http://127.0.0.1:8265");
        assert_eq!(base_url(" https://ray.example.com/ ").unwrap(), "https://ray.example.com");
        assert_eq!(base_url("http://h:1/prefix").unwrap(), "http://h:1/prefix");
        for bad in ["", "auto", "ray://h:10001", "ftp://h", "http://", "http://u:p@h", "http://h?x=1"] {
            assert!(base_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_inconsistent_settings() {
        let env: BTreeMap<String, Value> = [("env_vars".to_owned(), serde_json::json!({"A": 1}))].into();
        let bad = [
            RayConfig { task_types: vec![], ..Default::default() },
            RayConfig { task_types: vec![" ".into()], ..Default::default() },
            RayConfig { address: Some("ray://h:10001".into()), ..Default::default() },
            RayConfig { headers: [("bad header".to_owned(), "env:X".parse().unwrap())].into(), ..Default::default() },
            RayConfig { runtime_env: env, ..Default::default() },
            RayConfig { entrypoint_num_cpus: Some(-1.0), ..Default::default() },
            RayConfig { runtime_env: [("working_dir".to_owned(), serde_json::json!("./app"))].into(), ..Default::default() },
            RayConfig { entrypoint_resources: [("x".to_owned(), f64::NAN)].into(), ..Default::default() },
            RayConfig { request_timeout: Duration::ZERO, ..Default::default() },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }
}
