//! `tern.toml`: what the gateway serves and where it keeps data.
//!
//! ```toml
//! [server]
//! addr = "127.0.0.1:8000"
//!
//! [data_store]
//! root = ".tern/data"          # local directory behind relative and file:// URIs
//! # s3:// URIs use the AWS default credential chain (never this file); optionally:
//! s3_endpoint_url = "http://127.0.0.1:5000"   # an S3-compatible server
//! s3_region = "us-east-1"
//! s3_force_path_style = true
//!
//! [secrets]
//! env_prefix = "TERN_SECRET_"  # TERN_SECRET_FOO becomes secret "foo"
//! dir = "/etc/secrets"         # optional: one file per secret, as Kubernetes mounts them
//!
//! [agents]
//! enabled = ["echo", "sleep", "webhook", "duckdb", "shell"]   # default: every agent compiled in
//! ```
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::GatewayError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub server: ServerConfig,
    pub data_store: DataStoreConfig,
    pub secrets: SecretsConfig,
    pub agents: AgentsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub addr: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { addr: "127.0.0.1:8000".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataStoreConfig {
    pub root: PathBuf,
    /// S3-compatible endpoint for `s3://` URIs (default: AWS, or `TERN_S3_ENDPOINT_URL`).
    pub s3_endpoint_url: Option<String>,
    pub s3_region: Option<String>,
    /// Path-style addressing, needed by most emulators.
    pub s3_force_path_style: Option<bool>,
}

impl Default for DataStoreConfig {
    fn default() -> Self {
        Self { root: PathBuf::from(".tern/data"), s3_endpoint_url: None, s3_region: None, s3_force_path_style: None }
    }
}

impl DataStoreConfig {
    /// S3 settings: the environment's (`TERN_S3_*`, AWS chain), overridden by this file.
    pub fn s3(&self) -> tern_type_transformers::s3::S3Config {
        let mut s3 = tern_type_transformers::s3::S3Config::from_env();
        if let Some(url) = &self.s3_endpoint_url {
            s3.endpoint_url = Some(url.clone());
        }
        if let Some(region) = &self.s3_region {
            s3.region = Some(region.clone());
        }
        if let Some(force) = self.s3_force_path_style {
            s3.force_path_style = force;
        }
        s3
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    pub env_prefix: String,
    pub dir: Option<PathBuf>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { env_prefix: "TERN_SECRET_".into(), dir: None }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// Agent names to host; `None` hosts every agent compiled into this build.
    pub enabled: Option<Vec<String>>,
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| GatewayError::ConfigRead { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, GatewayError> {
        toml::from_str(text).map_err(|e| GatewayError::ConfigInvalid { path: path.to_owned(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = GatewayConfig::parse("[server]\nadress = \"x\"\n", Path::new("tern.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("TERN-G002") && msg.contains("adress"), "{msg}");
    }

    #[test]
    fn defaults_apply() {
        let c = GatewayConfig::parse("[agents]\nenabled = [\"echo\"]\n", Path::new("t")).unwrap();
        assert_eq!(c.server.addr, "127.0.0.1:8000");
        assert_eq!(c.agents.enabled.as_deref(), Some(&["echo".to_string()][..]));
    }
}
