//! Which agents this gateway serves, built from their `[agents.<name>]` sections.
//!
//! `tern serve` (network-facing) serves the agents the config lists, or, with no
//! `[agents.*]` section at all, every compiled-in agent that is safe to expose; agents that
//! run code or touch local files need `enabled = true`. Embedded `tern run` serves every
//! local agent unless its section says `enabled = false`.
pub mod admitted;
pub mod compiled;
pub mod entry;

use std::sync::Arc;

use tern_agent_api::admission::{Admission, OnFull};
use tern_agent_api::category::TaskCategory;
use tern_agent_api::context::AgentServices;
use tern_agent_api::factory::{AdmissionScope, AgentInit, Exposure, HostResources};
use tern_agent_api::registry::{AgentHandle, AgentRegistry};

pub use entry::{AgentEntry, Prepared};

use crate::config::agent_section::{self, CommonKeys};
use crate::config::{apply_standard_env, GatewayConfig};
use crate::error::GatewayError;

/// Who will call the agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `tern serve`: whoever can reach the port.
    Serve,
    /// `tern run` in-process: the machine's own user.
    Embedded,
}

/// Whether a planned agent is served, and if not why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Serve,
    Off(String),
}

/// One agent after its section was checked.
pub struct Planned {
    pub entry: AgentEntry,
    pub common: CommonKeys,
    /// The limit in force: the section's, else the agent's default.
    pub max_concurrency: Option<usize>,
    pub prepared: Prepared,
    pub decision: Decision,
}

/// An agent being served, for start-up output and `tern agents`.
#[derive(Debug, Clone)]
pub struct ServedAgent {
    pub name: String,
    pub description: String,
    pub source: String,
    pub categories: Vec<TaskCategory>,
    pub is_sync: bool,
    pub exposure: Exposure,
    pub max_concurrency: Option<usize>,
    pub on_full: OnFull,
    /// Its slots (counted even when unlimited), for metrics.
    pub admission: Admission,
}

/// The registry and what went into it.
pub struct BuiltAgents {
    pub registry: Arc<AgentRegistry>,
    pub served: Vec<ServedAgent>,
    /// Agents of this build not served, with the reason.
    pub not_served: Vec<(String, String)>,
}

fn section_error(config: &GatewayConfig, name: &str, message: String) -> GatewayError {
    let mut origin = config.origin.describe();
    let vars = config.origin.overrides_under(&format!("agents.{name}"));
    if !vars.is_empty() {
        origin = format!("{origin}; set by {}", vars.join(", "));
    }
    GatewayError::ConfigInvalid { path: origin.into(), message: format!("[agents.{name}]: {message}") }
}

/// Checks every section against its agent and decides what is served; builds nothing.
pub fn plan(config: &GatewayConfig, mode: Mode, host: &HostResources, entries: &[AgentEntry]) -> Result<Vec<Planned>, GatewayError> {
    for name in config.agents.keys() {
        if !entries.iter().any(|e| &e.name == name) {
            return Err(GatewayError::UnknownAgent {
                name: name.clone(),
                origin: config.origin.describe(),
                available: entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
    }
    let lists_agents = !config.agents.is_empty();
    let mut planned = Vec::new();
    for entry in entries {
        let raw = config.agents.get(&entry.name);
        let mut section = raw.cloned().unwrap_or_default();
        apply_standard_env(&mut section, entry.standard_env, &config.origin.env);
        let (common, own) = agent_section::split(section).map_err(|m| section_error(config, &entry.name, m))?;
        let max_concurrency = common.max_concurrency.or_else(|| entry.default_max_concurrency(host));
        let prepared = entry.prepare(own, host, max_concurrency).map_err(|m| section_error(config, &entry.name, m))?;
        let decision = match (common.enabled, mode) {
            (Some(false), _) => Decision::Off("enabled = false".into()),
            (_, Mode::Embedded) => Decision::Serve,
            (enabled, Mode::Serve) if !prepared.exposure.is_safe() => match (enabled, raw.is_some()) {
                (Some(true), _) => Decision::Serve,
                (_, true) => {
                    return Err(GatewayError::NotEnabled {
                        name: entry.name.clone(),
                        risk: prepared.exposure.risk().to_owned(),
                    })
                }
                (_, false) => Decision::Off(format!(
                    "{}; to serve it, set `enabled = true` in [agents.{}]",
                    prepared.exposure.risk(),
                    entry.name
                )),
            },
            (_, Mode::Serve) if lists_agents && raw.is_none() => {
                Decision::Off("not listed (this config names its agents in [agents.*])".into())
            }
            (_, Mode::Serve) => Decision::Serve,
        };
        planned.push(Planned { entry: entry.clone(), common, max_concurrency, prepared, decision });
    }
    Ok(planned)
}

/// Builds the registry of the agents `config` serves in `mode`.
pub fn build(
    config: &GatewayConfig,
    mode: Mode,
    services: &AgentServices,
    host: &HostResources,
    entries: &[AgentEntry],
) -> Result<BuiltAgents, GatewayError> {
    let mut registry = AgentRegistry::new();
    let mut served = Vec::new();
    let mut not_served = Vec::new();
    for p in plan(config, mode, host, entries)? {
        let name = p.entry.name.clone();
        if let Decision::Off(reason) = p.decision {
            not_served.push((name, reason));
            continue;
        }
        let admission = match p.max_concurrency {
            Some(n) => Admission::new(name.clone(), n, p.common.on_full, p.common.queue_timeout),
            None => Admission::named_unlimited(name.clone()),
        };
        let init = AgentInit {
            services: services.clone().with_metrics(services.metrics.for_agent(&name)),
            admission: admission.clone(),
            host: host.clone(),
        };
        let exposure = p.prepared.exposure;
        let handle = p
            .prepared
            .build(&init)
            .map_err(|e| GatewayError::Registration { name: name.clone(), message: e.to_string() })?;
        let admission_for_metrics = admission.clone();
        let handle = match p.entry.scope {
            AdmissionScope::Call => admitted::admit_calls(handle, admission),
            AdmissionScope::Job => handle,
        };
        let (categories, is_sync) = describe(&handle);
        if categories.is_empty() {
            // An agent that serves nothing until configured (e.g. spark without a `mode`).
            not_served.push((name, "serves no task types with this configuration (see its section's keys)".into()));
            continue;
        }
        registry
            .register(handle)
            .map_err(|e| GatewayError::Registration { name: name.clone(), message: e.to_string() })?;
        served.push(ServedAgent {
            name,
            description: p.entry.description.clone(),
            source: p.entry.source.clone(),
            categories,
            is_sync,
            exposure,
            max_concurrency: p.max_concurrency,
            on_full: p.common.on_full,
            admission: admission_for_metrics,
        });
    }
    Ok(BuiltAgents { registry: Arc::new(registry), served, not_served })
}

fn describe(handle: &AgentHandle) -> (Vec<TaskCategory>, bool) {
    match handle {
        AgentHandle::Async(a) => (a.task_categories(), false),
        AgentHandle::Sync(a) => (a.task_categories(), true),
    }
}
