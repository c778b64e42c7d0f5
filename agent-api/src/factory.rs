//! Agents built from configuration.
//!
//! Each agent crate declares its typed settings (the `[agents.<name>]` section of
//! `tern.toml`) and a constructor taking them plus an [`AgentInit`]: the context object
//! with everything an agent may touch. The gateway reads the file, applies environment
//! overrides and the ecosystem's standard variables ([`StandardEnv`]), and hands the agent
//! resolved values: agents never read the environment themselves.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tern_agent_api::factory::{AgentFactory, AgentInit, StandardEnv};
//! use tern_agent_api::prelude::*;
//! use tern_agent_api::registry::AgentHandle;
//! use tern_agent_api::secrets::SecretRef;
//!
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! pub struct PingConfig {
//!     /// The service to call.
//!     pub address: Option<String>,
//!     /// A secret reference (`env:NAME`, `file:PATH`), never a value.
//!     pub token: Option<SecretRef>,
//! }
//!
//! struct Ping { config: PingConfig }
//!
//! #[async_trait::async_trait]
//! impl SyncAgent for Ping {
//!     fn name(&self) -> &str { "ping" }
//!     fn task_categories(&self) -> Vec<TaskCategory> { vec![TaskCategory::new("ping", 0)] }
//!     async fn execute(&self, ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
//!         if let Some(token) = &self.config.token {
//!             let _token = ctx.secrets().resolve(token)?; // resolved when needed, never logged
//!         }
//!         Ok(TaskStatus::succeeded(None))
//!     }
//! }
//!
//! pub struct PingFactory;
//!
//! impl AgentFactory for PingFactory {
//!     type Config = PingConfig;
//!     const NAME: &'static str = "ping";
//!     const DESCRIPTION: &'static str = "answers every task at once";
//!     fn standard_env() -> &'static [StandardEnv] {
//!         const ENV: &[StandardEnv] =
//!             &[StandardEnv::value("PING_ADDRESS", "address"), StandardEnv::secret("PING_TOKEN", "token")];
//!         ENV
//!     }
//!     fn build(config: PingConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
//!         Ok(AgentHandle::Sync(std::sync::Arc::new(Ping { config })))
//!     }
//! }
//! # let init = AgentInit::for_tests(std::env::temp_dir());
//! # let handle = PingFactory::build(PingConfig::default(), &init).unwrap();
//! # assert_eq!(handle.name(), "ping");
//! ```
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admission::Admission;
use crate::context::AgentServices;
use crate::error::AgentError;
use crate::metrics::AgentMetrics;
use crate::registry::AgentHandle;

/// What serving an agent to remote callers exposes. Anything but `Safe` is served by
/// `tern serve` only when its config section says `enabled = true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exposure {
    /// Reaches only its backend and the gateway's data store.
    Safe,
    /// Reads or writes files of the gateway's host beyond the data store.
    LocalFiles,
    /// Runs code or commands the caller chooses, with the gateway's rights.
    ArbitraryCode,
}

impl Exposure {
    pub fn is_safe(self) -> bool {
        self == Self::Safe
    }

    /// Why an operator must opt in, for messages.
    pub fn risk(self) -> &'static str {
        match self {
            Self::Safe => "nothing beyond its backend",
            Self::LocalFiles => "it reads and writes files of this host for whoever can call the gateway",
            Self::ArbitraryCode => "it runs arbitrary commands on this host for whoever can call the gateway",
        }
    }
}

/// Who holds an admission slot (see [`crate::admission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionScope {
    /// The gateway holds a slot for each create/execute call.
    Call,
    /// The agent holds a slot for each job it runs in-process (via [`AgentInit::admission`]).
    Job,
}

/// How an ecosystem variable fills a config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvForm {
    /// The key takes the variable's text.
    Value,
    /// The key takes the reference `env:VAR` (the value stays a secret).
    SecretRef,
    /// The variable holds a path; the key takes the reference `file:PATH`
    /// (e.g. `GOOGLE_APPLICATION_CREDENTIALS`).
    FileSecretRef,
}

/// A standard variable of an agent's ecosystem (`RAY_ADDRESS`, `DATABRICKS_HOST`, …) that
/// fills one key of its section when the config file does not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardEnv {
    pub var: &'static str,
    pub key: &'static str,
    pub form: EnvForm,
}

impl StandardEnv {
    pub const fn value(var: &'static str, key: &'static str) -> Self {
        Self { var, key, form: EnvForm::Value }
    }

    pub const fn secret(var: &'static str, key: &'static str) -> Self {
        Self { var, key, form: EnvForm::SecretRef }
    }

    pub const fn secret_file(var: &'static str, key: &'static str) -> Self {
        Self { var, key, form: EnvForm::FileSecretRef }
    }

    /// The config value this variable's text becomes.
    pub fn config_text(&self, env_value: &str) -> String {
        match self.form {
            EnvForm::Value => env_value.to_owned(),
            EnvForm::SecretRef => format!("env:{}", self.var),
            EnvForm::FileSecretRef => format!("file:{env_value}"),
        }
    }
}

/// Facts about the machine the gateway measured, so agents size their defaults safely.
#[derive(Debug, Clone)]
pub struct HostResources {
    /// CPUs this process may use.
    pub cpus: usize,
    /// Physical memory, when known.
    pub memory_bytes: Option<u64>,
    /// The temporary directory.
    pub temp_dir: PathBuf,
    /// The gateway's environment, for agents whose config names variables to pass on
    /// (e.g. the shell agent's `inherit_env`). Agents never call `std::env` themselves.
    pub env: Arc<BTreeMap<String, String>>,
}

impl HostResources {
    /// This process's host (call it where the gateway is composed).
    pub fn detect() -> Self {
        Self {
            cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            memory_bytes: physical_memory(),
            temp_dir: std::env::temp_dir(),
            env: Arc::new(std::env::vars().collect()),
        }
    }
}

fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The context an agent is built with.
#[derive(Debug, Clone)]
pub struct AgentInit {
    /// Data stores, secrets, HTTP client, metrics: also in every call's `TaskContext`.
    pub services: AgentServices,
    /// This agent's concurrency limit; job-scoped agents hand it to their `LocalJobs`.
    pub admission: Admission,
    pub host: HostResources,
}

impl AgentInit {
    /// A local data store under `root`, no limit, this host: for tests and examples.
    pub fn for_tests(root: impl Into<PathBuf>) -> Self {
        Self { services: AgentServices::local(root), admission: Admission::unlimited(), host: HostResources::detect() }
    }

    pub fn metrics(&self) -> &AgentMetrics {
        &self.services.metrics
    }
}

/// An agent that can be built from its `[agents.<NAME>]` section.
///
/// Only [`build`](Self::build) is required; the rest are defaulted capabilities.
pub trait AgentFactory: Send + Sync + 'static {
    /// The section's typed settings. Use `#[serde(deny_unknown_fields, default)]` so an
    /// unknown key is refused by name, and [`SecretRef`](crate::secrets::SecretRef) for secrets.
    type Config: DeserializeOwned + Serialize + Default + Send + 'static;

    /// Section name (`[agents.<NAME>]`): snake_case, unique in a build.
    const NAME: &'static str;

    /// One line for `tern serve`'s start-up table and `tern config show`.
    const DESCRIPTION: &'static str;

    /// Who holds admission slots (default: the gateway, per call).
    const ADMISSION: AdmissionScope = AdmissionScope::Call;

    /// Ecosystem variables honoured for keys the file does not set.
    fn standard_env() -> &'static [StandardEnv] {
        &[]
    }

    /// What serving this agent with `config` exposes (default: nothing risky).
    fn exposure(_config: &Self::Config) -> Exposure {
        Exposure::Safe
    }

    /// Fills settings whose default depends on the host (e.g. DuckDB's memory per query),
    /// so what `tern config show` prints is what the agent runs with.
    fn with_host_defaults(config: Self::Config, _host: &HostResources, _max_concurrency: Option<usize>) -> Self::Config {
        config
    }

    /// The default concurrency limit on this host when the section sets none
    /// (default: unlimited).
    fn default_max_concurrency(_host: &HostResources) -> Option<usize> {
        None
    }

    /// Builds the agent. Refusals (bad combinations of settings) name the key.
    fn build(config: Self::Config, init: &AgentInit) -> Result<AgentHandle, AgentError>;
}
