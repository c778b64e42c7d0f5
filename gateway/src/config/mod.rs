//! `tern.toml`: what the gateway serves, how it is reached, where it keeps data.
//!
//! Every key is documented in `docs/gateway.md`. Loading is layered: the file, then the
//! environment overrides of [`env`] (which win), then each section's ecosystem variables
//! (`AWS_ENDPOINT_URL`, `RAY_ADDRESS`, …) for keys still unset.
//!
//! ```toml
//! [server]
//! addr = "127.0.0.1:8000"
//!
//! [data_store]
//! root = ".tern/data"
//!
//! [agents.duckdb]          # one typed section per agent
//! max_concurrency = 2
//! memory_limit = "4GiB"
//! ```
pub mod agent_section;
pub mod env;
pub mod plugins;
pub mod show;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::factory::StandardEnv;

pub use env::{Env, EnvOverride};

use crate::error::GatewayError;
use crate::overload::{self, ServerLimits};
use crate::routing::config::{GroupConfig, RouteConfig};
use crate::security::auth::AuthConfig;
use crate::security::client::ClientConfig;
use crate::security::tls::TlsConfig;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub auth: AuthConfig,
    /// How `tern run --gateway` / `tern agents --gateway` connect (TLS, token).
    pub client: ClientConfig,
    pub data_store: DataStoreConfig,
    /// `tern run`'s engine: where it records executions.
    pub engine: EngineSection,
    pub secrets: SecretsConfig,
    /// One section per agent, `[agents.<name>]`, checked against the agent's own type
    /// when the registry is built.
    pub agents: BTreeMap<String, toml::Table>,
    /// First match wins; no match: this gateway's agents.
    pub routes: Vec<RouteConfig>,
    /// Remote endpoint groups routes can send to.
    pub groups: BTreeMap<String, GroupConfig>,
    pub plugins: plugins::PluginsConfig,
    /// Where this configuration came from (for messages).
    #[serde(skip)]
    pub origin: Origin,
}

/// The file and environment a configuration was read from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `None`: no file, defaults only.
    pub file: Option<PathBuf>,
    pub env: Env,
    /// The `TERN_…` variables that set keys.
    pub overrides: Vec<EnvOverride>,
}

impl Default for Origin {
    fn default() -> Self {
        Self { file: None, env: env::empty(), overrides: Vec::new() }
    }
}

impl Origin {
    /// `tern.toml`, `tern.toml (+ TERN_SERVER__ADDR)`, or `defaults`, for messages.
    pub fn describe(&self) -> String {
        let file = self.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "defaults".into());
        if self.overrides.is_empty() {
            file
        } else {
            let vars: Vec<&str> = self.overrides.iter().map(|o| o.var.as_str()).collect();
            format!("{file} (+ {})", vars.join(", "))
        }
    }

    /// The override variables under `[section]` (e.g. `agents.duckdb`), for messages.
    pub fn overrides_under(&self, section: &str) -> Vec<&str> {
        self.overrides
            .iter()
            .filter(|o| o.dotted().starts_with(&format!("{section}.")))
            .map(|o| o.var.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address, `HOST:PORT`.
    pub addr: String,
    /// Largest decoded request (default 16 MiB; flytekit's server and grpcio allow 4 MiB).
    pub max_message_bytes: usize,
    /// TLS (and mTLS); absent: plaintext.
    pub tls: Option<TlsConfig>,
    /// This gateway's region: the preferred region of its groups.
    pub region: Option<String>,
    /// Key that signs the handles (`resource_meta`) this gateway issues, so they cannot be
    /// altered to reach another project or endpoint. Same key on every replica.
    pub handle_key: Option<tern_agent_api::secrets::SecretRef>,
    /// Calls served at once (every service but health); beyond: RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// The longest a call may take; a client's shorter `grpc-timeout` wins.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// How long in-flight calls may finish on SIGTERM/SIGINT before they are ended.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl ServerConfig {
    /// The settings the overload layer and the drain enforce.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            max_in_flight: self.max_in_flight,
            call_timeout: self.call_timeout,
            drain_timeout: self.drain_timeout,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8000".into(),
            max_message_bytes: tern_agent_api::server::DEFAULT_MAX_REQUEST_BYTES,
            tls: None,
            region: None,
            handle_key: None,
            max_in_flight: overload::DEFAULT_MAX_IN_FLIGHT,
            call_timeout: overload::DEFAULT_CALL_TIMEOUT,
            drain_timeout: overload::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// `[metrics]`: Prometheus `/metrics` over HTTP.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `HOST:PORT` to serve `/metrics` on; absent: no metrics endpoint.
    pub addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataStoreConfig {
    /// Local directory behind relative paths and `file://` URIs.
    pub root: PathBuf,
    /// Other local directories tasks may read and write (e.g. shared reference data).
    pub allowed_roots: Vec<PathBuf>,
    /// Refuse local paths outside `root` and `allowed_roots` (`..`, absolute paths,
    /// escaping symlinks). Default: on for `tern serve`, off for embedded `tern run`.
    pub confine: Option<bool>,
    /// S3-compatible endpoint for `s3://` URIs (standard: `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`); credentials always come from the AWS default chain.
    pub s3_endpoint_url: Option<String>,
    /// Standard: `AWS_REGION`, `AWS_DEFAULT_REGION`.
    pub s3_region: Option<String>,
    /// Path-style addressing, needed by most emulators.
    pub s3_force_path_style: Option<bool>,
}

impl Default for DataStoreConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from(".tern/data"),
            allowed_roots: Vec::new(),
            confine: None,
            s3_endpoint_url: None,
            s3_region: None,
            s3_force_path_style: None,
        }
    }
}

/// The AWS SDK's standard variables for `[data_store]` keys (first one set wins).
pub const DATA_STORE_ENV: &[StandardEnv] = &[
    StandardEnv::value("AWS_ENDPOINT_URL_S3", "s3_endpoint_url"),
    StandardEnv::value("AWS_ENDPOINT_URL", "s3_endpoint_url"),
    StandardEnv::value("AWS_REGION", "s3_region"),
    StandardEnv::value("AWS_DEFAULT_REGION", "s3_region"),
];

impl DataStoreConfig {
    /// S3 settings for `s3://` URIs.
    pub fn s3(&self) -> tern_type_transformers::s3::S3Config {
        tern_type_transformers::s3::S3Config {
            endpoint_url: self.s3_endpoint_url.clone(),
            region: self.s3_region.clone(),
            force_path_style: self.s3_force_path_style.unwrap_or(false),
            ..Default::default()
        }
    }
}

/// `[engine]`: the workflow engine of `tern run` / `tern recover` / `tern show`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Where executions are recorded: a directory (SQLite), a `postgres://` URL, or a
    /// secret reference (`env:NAME`, `file:PATH`) holding either. Unset: `.tern`.
    /// `--state` wins. Shown redacted by `tern config show`.
    pub state: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// `<prefix><KEY>` environment variables become task secret `key`.
    pub env_prefix: String,
    /// One file per secret, as Kubernetes mounts them.
    pub dir: Option<PathBuf>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { env_prefix: "TERN_SECRET_".into(), dir: None }
    }
}

/// Fills each unset key of `section` from the first of its standard variables that is set.
pub fn apply_standard_env(section: &mut toml::Table, bindings: &[StandardEnv], env: &BTreeMap<String, String>) {
    for b in bindings {
        if section.contains_key(b.key) {
            continue;
        }
        if let Some(value) = env.get(b.var).filter(|v| !v.is_empty()) {
            section.insert(b.key.to_owned(), toml::Value::String(b.config_text(value)));
        }
    }
}

impl GatewayConfig {
    /// Reads `path` (or only defaults when `None`), applies the environment's overrides
    /// and standard variables.
    pub fn load(path: Option<&Path>, env: Env) -> Result<Self, GatewayError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| GatewayError::ConfigRead { path: p.to_owned(), source })?,
            None => String::new(),
        };
        Self::parse_with_env(&text, path, env)
    }

    /// Parses `text` alone: no environment (tests).
    pub fn parse(text: &str, path: &Path) -> Result<Self, GatewayError> {
        Self::parse_with_env(text, Some(path), env::empty())
    }

    pub fn parse_with_env(text: &str, path: Option<&Path>, env: Env) -> Result<Self, GatewayError> {
        let shown = path.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("(defaults)"));
        let invalid = |message: String| GatewayError::ConfigInvalid { path: shown.clone(), message };
        let mut root: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let overrides = env::apply(&mut root, &env)?;
        let mut config: GatewayConfig = if overrides.is_empty() {
            // From the text itself, so errors point at a line.
            toml::from_str(text).map_err(|e| invalid(e.to_string()))?
        } else {
            toml::Value::Table(root).try_into().map_err(|e: toml::de::Error| {
                let vars: Vec<&str> = overrides.iter().map(|o| o.var.as_str()).collect();
                invalid(format!("{} (with environment overrides {})", e.message(), vars.join(", ")))
            })?
        };
        let mut store = toml::Table::try_from(&config.data_store).map_err(|e| invalid(e.to_string()))?;
        apply_standard_env(&mut store, DATA_STORE_ENV, &env);
        config.data_store = toml::Value::Table(store).try_into().map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
        config.server.limits().check().map_err(invalid)?;
        config.origin = Origin { file: path.map(Path::to_owned), env, overrides };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Arc::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name_and_line() {
        let err = GatewayConfig::parse("[server]\nadress = \"x\"\n", Path::new("tern.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("TERN-G002") && msg.contains("adress") && msg.contains("tern.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn defaults_apply() {
        let c = GatewayConfig::parse("[agents.echo]\n", Path::new("t")).unwrap();
        assert_eq!(c.server.addr, "127.0.0.1:8000");
        assert!(c.agents.contains_key("echo"));
    }

    #[test]
    fn environment_overrides_win_over_the_file_and_standard_variables_fill_gaps() {
        let text = "[server]\naddr = \"127.0.0.1:1\"\n[data_store]\ns3_region = \"eu-west-1\"\n";
        let e = env(&[
            ("TERN_SERVER__ADDR", "0.0.0.0:9000"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]);
        let c = GatewayConfig::parse_with_env(text, Some(Path::new("t.toml")), e).unwrap();
        assert_eq!(c.server.addr, "0.0.0.0:9000", "TERN_ override wins over the file");
        assert_eq!(c.data_store.s3_region.as_deref(), Some("eu-west-1"), "the file wins over AWS_REGION");
        assert_eq!(c.data_store.s3_endpoint_url.as_deref(), Some("http://127.0.0.1:5000"), "AWS_ENDPOINT_URL fills the gap");
        assert_eq!(c.origin.describe(), "t.toml (+ TERN_SERVER__ADDR)");
    }

    #[test]
    fn the_engine_state_comes_from_the_file_or_its_override() {
        let text = "[engine]\nstate = \"/var/lib/tern\"\n";
        let c = GatewayConfig::parse_with_env(text, Some(Path::new("t.toml")), env(&[])).unwrap();
        assert_eq!(c.engine.state.as_deref(), Some("/var/lib/tern"));
        let e = env(&[("TERN_ENGINE__STATE", "postgres://tern@db:5432/tern")]);
        let c = GatewayConfig::parse_with_env(text, Some(Path::new("t.toml")), e).unwrap();
        assert_eq!(c.engine.state.as_deref(), Some("postgres://tern@db:5432/tern"));
        assert!(GatewayConfig::parse("[engine]\nstate_dir = \"x\"\n", Path::new("t")).is_err());
    }

    #[test]
    fn server_limits_are_read_and_checked() {
        let c = GatewayConfig::parse("[server]\nmax_in_flight = 8\ncall_timeout = \"2m\"\ndrain_timeout = \"5s\"\n", Path::new("t")).unwrap();
        let l = c.server.limits();
        assert_eq!((l.max_in_flight, l.call_timeout, l.drain_timeout), (8, Duration::from_secs(120), Duration::from_secs(5)));
        assert_eq!(GatewayConfig::parse("", Path::new("t")).unwrap().server.limits(), ServerLimits::default());
        let err = GatewayConfig::parse("[server]\nmax_in_flight = 0\n", Path::new("t")).unwrap_err().to_string();
        assert!(err.contains("TERN-G002") && err.contains("max_in_flight"), "{err}");
    }

    #[test]
    fn a_bad_override_names_its_variable() {
        let err = GatewayConfig::parse_with_env("", None, env(&[("TERN_SERVER__ADRES", "x")])).unwrap_err().to_string();
        assert!(err.contains("adres") && err.contains("TERN_SERVER__ADRES"), "{err}");
    }
}
