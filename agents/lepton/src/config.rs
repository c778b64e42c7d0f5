//! `[agents.lepton]`: which Lepton workspace, which token, how long to wait for readiness.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// DGX Cloud Lepton's API gateway (leptonai 0.27.3 `config.API_URL_BASE`). Workspace calls
/// go to `<api_url>/api/v2/workspaces/<workspace_id>/…` (`DGXC_WORKSPACE_API_PATH`).
pub const DEFAULT_API_URL: &str = "https://gateway.dgxc-lepton.nvidia.com";

/// The two task types flytekitplugins-dgxc-lepton 1.16.31 writes.
pub const DEPLOYMENT_TASK_TYPE: &str = "lepton_endpoint_deployment_task";
pub const DELETION_TASK_TYPE: &str = "lepton_endpoint_deletion_task";

/// Settings of the Lepton agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeptonConfig {
    /// The workspace id (`LEPTON_WORKSPACE_ID`, as flytekit's connector reads it).
    pub workspace_id: Option<String>,
    /// The workspace token, a secret reference (`LEPTON_TOKEN` → `env:LEPTON_TOKEN`, or
    /// `file:/run/secrets/lepton_token`). Sent as `Authorization: Bearer …`.
    pub token: Option<SecretRef>,
    /// The API gateway (default DGX Cloud Lepton's; `http://127.0.0.1:PORT` for a test server).
    pub api_url: String,
    /// The dashboard for the `Lepton Console` log link. Default: `api_url` with `gateway.`
    /// replaced by `dashboard.` (as flytekit's connector derives it); none when that does not apply.
    pub dashboard_url: Option<String>,
    /// How long a deployment task waits for `Ready` when its template sets no
    /// `endpoint_readiness_timeout`.
    #[serde(with = "humantime_serde")]
    pub readiness_timeout: Duration,
    /// Deadline of each call to Lepton.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How far back GetTaskLogs reads a deployment's logs.
    #[serde(with = "humantime_serde")]
    pub log_window: Duration,
}

impl Default for LeptonConfig {
    fn default() -> Self {
        Self {
            workspace_id: None,
            token: None,
            api_url: DEFAULT_API_URL.into(),
            dashboard_url: None,
            readiness_timeout: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(30),
            log_window: Duration::from_secs(24 * 3600),
        }
    }
}

impl LeptonConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        check_url(&self.api_url).map_err(|e| format!("api_url: {e}"))?;
        if let Some(d) = &self.dashboard_url {
            check_url(d).map_err(|e| format!("dashboard_url: {e}"))?;
        }
        if let Some(ws) = &self.workspace_id {
            if ws.is_empty() || !ws.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("workspace_id {ws:?} is not a workspace id (letters, digits, '-', '_')"));
            }
        }
        if self.readiness_timeout.is_zero() {
            return Err("readiness_timeout must be positive".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        Ok(())
    }

    /// The workspace's API base: `<api_url>/api/v2/workspaces/<workspace_id>`.
    pub fn workspace_base(&self) -> Result<String, AgentError> {
        let ws = self.workspace_id.as_deref().filter(|w| !w.is_empty()).ok_or_else(|| {
            crate::codes::not_configured("[agents.lepton] sets no workspace_id (LEPTON_WORKSPACE_ID): no Lepton workspace to deploy to")
        })?;
        Ok(format!("{}/api/v2/workspaces/{ws}", self.api_url.trim_end_matches('/')))
    }

    /// The dashboard base for console links, when one is known.
    pub fn dashboard(&self) -> Option<String> {
        if let Some(d) = &self.dashboard_url {
            return Some(d.trim_end_matches('/').to_owned());
        }
        let api = self.api_url.trim_end_matches('/');
        api.contains("://gateway.").then(|| api.replacen("://gateway.", "://dashboard.", 1))
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{url:?} is not an http(s) URL with a host"));
    }
    Ok(())
}

/// The factory behind `[agents.lepton]`.
pub struct LeptonFactory;

impl AgentFactory for LeptonFactory {
    type Config = LeptonConfig;
    const NAME: &'static str = "lepton";
    const DESCRIPTION: &'static str = "DGX Cloud Lepton endpoints (flytekitplugins-dgxc-lepton deployment/deletion tasks), idempotent";

    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[
            // flytekit's connector reads these two.
            StandardEnv::value("LEPTON_WORKSPACE_ID", "workspace_id"),
            StandardEnv::secret("LEPTON_TOKEN", "token"),
            // leptonai's own name for the token.
            StandardEnv::secret("LEPTON_WORKSPACE_TOKEN", "token"),
        ];
        ENV
    }

    fn build(config: LeptonConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config
            .check()
            .map_err(|m| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.lepton] {m}")))?;
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::LeptonAgent::new(config, &init.services)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_reach_dgx_cloud_lepton() {
        let c = LeptonConfig { workspace_id: Some("ws1".into()), ..Default::default() };
        assert!(c.check().is_ok());
        assert_eq!(c.workspace_base().unwrap(), "https://gateway.dgxc-lepton.nvidia.com/api/v2/workspaces/ws1");
        assert_eq!(c.dashboard().as_deref(), Some("https://dashboard.dgxc-lepton.nvidia.com"));
        let none = LeptonConfig::default().workspace_base().unwrap_err();
        assert_eq!(none.code, crate::codes::NOT_CONFIGURED);
    }

    #[test]
    fn parses_a_section_and_refuses_unknown_keys_and_values() {
        let c: LeptonConfig = toml::from_str(
            r#"
            workspace_id = "abc123"
            token = "env:LEPTON_TOKEN"
            api_url = "http://127.0.0.1:8091"
            readiness_timeout = "20m"
            "#,
        )
        .unwrap();
        assert_eq!(c.readiness_timeout, Duration::from_secs(1200));
        assert!(c.check().is_ok());
        assert_eq!(c.dashboard(), None);
        assert!(toml::from_str::<LeptonConfig>("tokn = \"env:X\"").is_err());
        assert!(toml::from_str::<LeptonConfig>("token = \"lepton-plain-token\"").is_err(), "a value is not a reference");
        let bad = [
            LeptonConfig { api_url: "ftp://x".into(), ..Default::default() },
            LeptonConfig { workspace_id: Some("a/b".into()), ..Default::default() },
            LeptonConfig { readiness_timeout: Duration::ZERO, ..Default::default() },
            LeptonConfig { request_timeout: Duration::ZERO, ..Default::default() },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }
}
