//! [`AgentEntry`]: one agent the gateway can build, with its config type erased, so
//! compiled-in agents and plugins are planned and built the same way.
use std::sync::Arc;

use tern_agent_api::factory::{AdmissionScope, AgentFactory, AgentInit, Exposure, HostResources, StandardEnv};
use tern_agent_api::prelude::AgentError;
use tern_agent_api::registry::AgentHandle;

type BuildFn = Box<dyn FnOnce(&AgentInit) -> Result<AgentHandle, AgentError> + Send>;

/// A section checked against the agent's config type, ready to build.
pub struct Prepared {
    pub exposure: Exposure,
    /// The agent's settings after defaults, as TOML (what `tern config show` prints).
    pub effective: toml::Table,
    build: BuildFn,
}

impl Prepared {
    pub fn new(
        exposure: Exposure,
        effective: toml::Table,
        build: impl FnOnce(&AgentInit) -> Result<AgentHandle, AgentError> + Send + 'static,
    ) -> Self {
        Self { exposure, effective, build: Box::new(build) }
    }

    pub fn build(self, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        (self.build)(init)
    }
}

type PrepareFn = dyn Fn(toml::Table, &HostResources, Option<usize>) -> Result<Prepared, String> + Send + Sync;

/// How to build one agent from its section.
#[derive(Clone)]
pub struct AgentEntry {
    pub name: String,
    pub description: String,
    pub scope: AdmissionScope,
    pub standard_env: &'static [StandardEnv],
    /// Where it comes from: `built in` or a plugin's file.
    pub source: String,
    default_max_concurrency: fn(&HostResources) -> Option<usize>,
    prepare: Arc<PrepareFn>,
}

impl std::fmt::Debug for AgentEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEntry").field("name", &self.name).field("source", &self.source).finish()
    }
}

impl AgentEntry {
    /// The entry of a compiled-in agent crate.
    pub fn of<F: AgentFactory>() -> Self {
        Self {
            name: F::NAME.to_owned(),
            description: F::DESCRIPTION.to_owned(),
            scope: F::ADMISSION,
            standard_env: F::standard_env(),
            source: "built in".to_owned(),
            default_max_concurrency: F::default_max_concurrency,
            prepare: Arc::new(prepare::<F>),
        }
    }

    /// An entry built from parts (plugins).
    pub fn custom(
        name: String,
        description: String,
        scope: AdmissionScope,
        source: String,
        prepare: impl Fn(toml::Table, &HostResources, Option<usize>) -> Result<Prepared, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            description,
            scope,
            standard_env: &[],
            source,
            default_max_concurrency: |_| None,
            prepare: Arc::new(prepare),
        }
    }

    pub fn default_max_concurrency(&self, host: &HostResources) -> Option<usize> {
        (self.default_max_concurrency)(host)
    }

    /// Checks the agent's own keys (`section` without the gateway's common keys).
    pub fn prepare(&self, section: toml::Table, host: &HostResources, max_concurrency: Option<usize>) -> Result<Prepared, String> {
        (self.prepare)(section, host, max_concurrency)
    }
}

fn prepare<F: AgentFactory>(section: toml::Table, host: &HostResources, max_concurrency: Option<usize>) -> Result<Prepared, String> {
    let config: F::Config = toml::Value::Table(section).try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
    let config = F::with_host_defaults(config, host, max_concurrency);
    let exposure = F::exposure(&config);
    let effective = toml::Table::try_from(&config).map_err(|e| format!("cannot show the settings: {e}"))?;
    Ok(Prepared::new(exposure, effective, move |init| F::build(config, init)))
}
