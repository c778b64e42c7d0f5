//! `[agents.databricks]`: which workspace, which credentials, which task types, and where
//! the flytekit entrypoint lives.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// flytekit's default entrypoint repository (flytekitplugins-spark 1.16.31): the file that
/// runs the rendered container args (`pyflyte-execute …`) on the cluster.
pub const FLYTETOOLS_GIT_URL: &str = "https://github.com/flyteorg/flytetools";
pub const FLYTETOOLS_GIT_COMMIT: &str = "572298df1f971fb58c258398bd70a6372f811c96";
pub const FLYTEKIT_PYTHON_FILE: &str = "flytekitplugins/databricks/entrypoint.py";
pub const FLYTEKIT_SERVERLESS_PYTHON_FILE: &str = "flytekitplugins/databricks/entrypoint_serverless.py";

/// The Jobs API version in request paths (`/api/<version>/jobs/...`): `"2.1"` or `"2.2"`
/// (a bare number is accepted too, as `TERN_AGENTS__DATABRICKS__API_VERSION=2.1` gives one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum ApiVersion {
    /// What flytekit's connector calls.
    #[serde(rename = "2.1")]
    V2_1,
    /// The current version (the only one minilake serves).
    #[default]
    #[serde(rename = "2.2")]
    V2_2,
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Text(String),
            Number(f64),
        }
        let text = match Given::deserialize(deserializer)? {
            Given::Text(t) => t,
            Given::Number(n) => format!("{n:.1}"),
        };
        match text.trim() {
            "2.1" => Ok(Self::V2_1),
            "2.2" => Ok(Self::V2_2),
            other => Err(serde::de::Error::custom(format!("api_version {other:?} is not \"2.1\" or \"2.2\""))),
        }
    }
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2_1 => "2.1",
            Self::V2_2 => "2.2",
        }
    }
}

/// How the agent authenticates to the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// OAuth M2M when `client_id` and `client_secret` are set, else the PAT `token`.
    #[default]
    Auto,
    /// A personal access token (`token`).
    Pat,
    /// OAuth machine-to-machine: `client_id` + `client_secret` exchanged at `token_endpoint`.
    OauthM2m,
}

/// Where the entrypoint `python_file` is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// A Git repository (`git_source`), as flytekit does.
    #[default]
    Git,
    /// A workspace file (`/Workspace/...`, `/Shared/...`) imported beforehand.
    Workspace,
}

/// A Jobs API `git_source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    pub git_url: String,
    pub git_provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_tag: Option<String>,
}

impl Default for GitSource {
    fn default() -> Self {
        Self {
            git_url: FLYTETOOLS_GIT_URL.into(),
            git_provider: "gitHub".into(),
            git_commit: Some(FLYTETOOLS_GIT_COMMIT.into()),
            git_branch: None,
            git_tag: None,
        }
    }
}

/// Settings of the Databricks agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabricksConfig {
    /// Task types served (version 0). flytekit writes `databricks` (`DatabricksV2`) and
    /// `spark` (the deprecated `Databricks`, which shares its type with Spark-on-Kubernetes).
    pub task_types: Vec<String>,
    /// The workspace for templates that name none (`DATABRICKS_HOST`): a host
    /// (`dbc-1234.cloud.databricks.com`, reached over HTTPS) or a URL
    /// (`https://…`, `http://127.0.0.1:8090` for an emulator).
    pub host: Option<String>,
    /// `2.2` (default) or `2.1`.
    pub api_version: ApiVersion,
    /// `auto`, `pat` or `oauth_m2m`.
    pub auth: AuthMode,
    /// Personal access token, a secret reference (`DATABRICKS_TOKEN` → `env:DATABRICKS_TOKEN`).
    pub token: Option<SecretRef>,
    /// OAuth M2M service principal's client id (`DATABRICKS_CLIENT_ID`).
    pub client_id: Option<String>,
    /// OAuth M2M client secret, a secret reference (`DATABRICKS_CLIENT_SECRET`).
    pub client_secret: Option<SecretRef>,
    /// OAuth token endpoint. Default: `<workspace>/oidc/v1/token` of the workspace called.
    pub token_endpoint: Option<String>,
    /// Workspaces a template's `databricksInstance` may name, each mapped to the URL to
    /// reach it (a private endpoint, an emulator): `{ "dbc-1.cloud.databricks.com" =
    /// "https://dbc-1.privatelink.example" }`. The same credentials are used for all.
    pub instances: BTreeMap<String, String>,
    /// Let a template's `databricksInstance` name any other workspace, reached at
    /// `https://<instance>` **with this section's credentials**. Off by default: whoever
    /// can submit a task could otherwise make the gateway send its token to a host of
    /// their choosing.
    pub allow_template_instances: bool,
    /// The entrypoint file that runs the rendered container args on the cluster. Default:
    /// flytekit's (`flytekitplugins/databricks/entrypoint.py` in `git_source`). A
    /// template's `databricksConf.python_file` wins.
    pub python_file: Option<String>,
    /// The same for serverless compute (default flytekit's `entrypoint_serverless.py`).
    pub serverless_python_file: Option<String>,
    /// `git` (default, with `git_source`) or `workspace` (a file imported into the
    /// workspace; no `git_source` is sent).
    pub python_file_source: FileSource,
    /// The repository of the entrypoint (default flytekit's flytetools at its pinned
    /// commit). A template's `databricksConf.git_source` wins.
    pub git_source: GitSource,
    /// Databricks service credential for serverless S3 access, when the template names
    /// none (flytekit: `FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER`).
    pub service_credential_provider: Option<String>,
    /// Deadline of each call to the workspace.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for DatabricksConfig {
    fn default() -> Self {
        Self {
            task_types: vec!["databricks".into(), "spark".into()],
            host: None,
            api_version: ApiVersion::default(),
            auth: AuthMode::default(),
            token: None,
            client_id: None,
            client_secret: None,
            token_endpoint: None,
            instances: BTreeMap::new(),
            allow_template_instances: false,
            python_file: None,
            serverless_python_file: None,
            python_file_source: FileSource::default(),
            git_source: GitSource::default(),
            service_credential_provider: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl DatabricksConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.task_types.is_empty() {
            return Err("task_types is empty: list the task types to serve (e.g. [\"databricks\"])".into());
        }
        for t in &self.task_types {
            if t.trim().is_empty() {
                return Err("task_types contains an empty name".into());
            }
        }
        if let Some(host) = &self.host {
            crate::workspace::base_url(host).map_err(|e| format!("host: {e}"))?;
        }
        for (name, url) in &self.instances {
            crate::workspace::base_url(url).map_err(|e| format!("instances.{name:?}: {e}"))?;
        }
        if let Some(endpoint) = &self.token_endpoint {
            crate::workspace::base_url(endpoint).map_err(|e| format!("token_endpoint: {e}"))?;
        }
        match self.auth {
            AuthMode::Pat if self.token.is_none() => {
                return Err("auth = \"pat\" needs `token` (a secret reference, e.g. \"env:DATABRICKS_TOKEN\")".into())
            }
            AuthMode::OauthM2m if self.client_id.is_none() || self.client_secret.is_none() => {
                return Err("auth = \"oauth_m2m\" needs `client_id` and `client_secret`".into())
            }
            _ => {}
        }
        if self.client_id.is_some() != self.client_secret.is_some() {
            return Err("client_id and client_secret go together (OAuth M2M)".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        Ok(())
    }
}

/// The factory behind `[agents.databricks]`.
pub struct DatabricksFactory;

impl AgentFactory for DatabricksFactory {
    type Config = DatabricksConfig;
    const NAME: &'static str = "databricks";
    const DESCRIPTION: &'static str = "flytekit Databricks tasks on the Jobs API (runs/submit, idempotent)";

    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[
            StandardEnv::value("DATABRICKS_HOST", "host"),
            // flytekit's connector variables, for a drop-in replacement.
            StandardEnv::value("FLYTE_DATABRICKS_INSTANCE", "host"),
            StandardEnv::secret("DATABRICKS_TOKEN", "token"),
            StandardEnv::secret("FLYTE_DATABRICKS_ACCESS_TOKEN", "token"),
            StandardEnv::value("DATABRICKS_CLIENT_ID", "client_id"),
            StandardEnv::secret("DATABRICKS_CLIENT_SECRET", "client_secret"),
            StandardEnv::value("FLYTE_DATABRICKS_SERVICE_CREDENTIAL_PROVIDER", "service_credential_provider"),
        ];
        ENV
    }

    fn build(config: DatabricksConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config
            .check()
            .map_err(|m| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.databricks] {m}")))?;
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::DatabricksAgent::new(config, &init.services)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_both_flytekit_types_on_api_2_2() {
        let c = DatabricksConfig::default();
        assert_eq!(c.task_types, ["databricks", "spark"]);
        assert_eq!(c.api_version, ApiVersion::V2_2);
        assert!(c.check().is_ok());
    }

    #[test]
    fn parses_a_section_and_refuses_unknown_keys_and_values() {
        let c: DatabricksConfig = toml::from_str(
            r#"
            host = "http://127.0.0.1:8090"
            api_version = "2.1"
            token = "env:DATABRICKS_TOKEN"
            task_types = ["databricks"]
            instances = { "dbc-1.cloud.databricks.com" = "http://127.0.0.1:8090" }
            python_file = "/Shared/tern/entrypoint.py"
            python_file_source = "workspace"
            request_timeout = "5s"
            "#,
        )
        .unwrap();
        assert_eq!(c.api_version, ApiVersion::V2_1);
        assert_eq!(c.python_file_source, FileSource::Workspace);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert!(c.check().is_ok());
        assert!(toml::from_str::<DatabricksConfig>("tokn = \"env:X\"").is_err());
        assert!(toml::from_str::<DatabricksConfig>("api_version = \"2.0\"").is_err());
        assert_eq!(toml::from_str::<DatabricksConfig>("api_version = 2.1").unwrap().api_version, ApiVersion::V2_1);
        assert!(toml::from_str::<DatabricksConfig>("token = \"dapi0123456789\"").is_err(), "a value is not a reference");
    }

    #[test]
    fn refuses_inconsistent_settings() {
        let bad = [
            DatabricksConfig { task_types: vec![], ..Default::default() },
            DatabricksConfig { host: Some("ftp://x".into()), ..Default::default() },
            DatabricksConfig { auth: AuthMode::Pat, ..Default::default() },
            DatabricksConfig { auth: AuthMode::OauthM2m, client_id: Some("a".into()), ..Default::default() },
            DatabricksConfig { client_id: Some("a".into()), ..Default::default() },
            DatabricksConfig { request_timeout: Duration::ZERO, ..Default::default() },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }
}
