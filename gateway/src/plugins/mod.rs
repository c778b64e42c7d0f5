//! Agent plugins: shared libraries loaded from `[plugins] dir` at start (`docs/plugins.md`).
//!
//! - [`loader`]: libloading, the symbol and ABI-version checks, the declaration's texts;
//! - [`agent`]: host-side agents forwarding every call over the ABI;
//! - [`host`]: the data store and secrets the gateway offers a plugin;
//! - here: each plugin agent becomes an [`AgentEntry`] beside the compiled-in ones, so its
//!   `[agents.<name>]` section, admission limits, the opt-in rule, `tern serve`'s table and
//!   `tern config show` work exactly as for a built-in agent.
pub mod agent;
pub mod error;
pub mod host;
pub mod loader;

use std::ffi::c_void;
use std::sync::Arc;

pub use error::PluginError;
use tern_agent_api::category::TaskCategory;
use tern_agent_api::error::{codes, AgentError};
use tern_agent_api::factory::{AdmissionScope, AgentInit, HostResources};
use tern_agent_api::plugin::reply::{self, Slot};
use tern_agent_api::plugin::wire::{
    self, plugin_codes, AdmissionArgs, Described, HostFacts, InitArgs, PrepareArgs,
};
use tern_agent_api::registry::AgentHandle;

use crate::config::plugins::OnPluginError;
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::registry::{compiled, AgentEntry, Prepared};
use loader::PluginAgentDecl;

/// The agents a gateway can build: compiled-in ones, then every plugin's.
pub struct AgentEntries {
    pub entries: Vec<AgentEntry>,
    /// Libraries left out under `on_error = "skip"`: (file, why).
    pub skipped: Vec<(String, String)>,
}

/// Compiled-in agents plus the plugins of `[plugins] dir`. A library that cannot be loaded
/// stops the start (`on_error = "fail"`, the default) or is left out (`"skip"`); a directory
/// that cannot be read, or that every user may write, always stops it.
pub fn agent_entries(config: &GatewayConfig) -> Result<AgentEntries, GatewayError> {
    let mut entries = compiled::compiled_in();
    let mut skipped = Vec::new();
    let Some(dir) = &config.plugins.dir else {
        return Ok(AgentEntries { entries, skipped });
    };
    for path in loader::libraries_in(dir)? {
        let loaded = loader::load(&path).and_then(|plugin| {
            for agent in &plugin.agents {
                if let Some(other) = entries.iter().find(|e| e.name == agent.name) {
                    return Err(PluginError::Duplicate {
                        path: plugin.path.clone(),
                        name: agent.name.clone(),
                        other: if other.source == "built in" {
                            "a built-in agent".to_owned()
                        } else {
                            format!("served by {}", other.source)
                        },
                    });
                }
            }
            Ok(plugin)
        });
        match loaded {
            Ok(plugin) => {
                tracing::info!(
                    path = %plugin.path.display(),
                    api_version = %plugin.api_version,
                    agents = ?plugin.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
                    "loaded plugin"
                );
                entries.extend(plugin.agents.into_iter().map(entry));
            }
            Err(e) if config.plugins.on_error == OnPluginError::Skip => {
                tracing::warn!(error = %e, "plugin left out (on_error = \"skip\")");
                skipped.push((e.path().display().to_string(), e.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(AgentEntries { entries, skipped })
}

fn label(agent: &PluginAgentDecl) -> String {
    format!("plugin {} ({})", agent.name, agent.library.display())
}

fn entry(agent: PluginAgentDecl) -> AgentEntry {
    let source = format!("plugin {} (tern-agent-api {})", agent.library.display(), agent.api_version);
    let agent = Arc::new(agent);
    AgentEntry::custom(agent.name.clone(), agent.description.clone(), agent.scope, source, move |section, host, max| {
        prepare(&agent, section, host, max)
    })
}

fn facts(host: &HostResources) -> HostFacts {
    HostFacts { cpus: host.cpus, memory_bytes: host.memory_bytes, temp_dir: host.temp_dir.display().to_string() }
}

/// Asks the plugin to check its section; errors are messages naming the key.
fn prepare(
    agent: &Arc<PluginAgentDecl>,
    section: toml::Table,
    host: &HostResources,
    max_concurrency: Option<usize>,
) -> Result<Prepared, String> {
    let settings = serde_json::to_value(toml::Value::Table(section)).map_err(|e| e.to_string())?;
    let args = PrepareArgs { settings, host: facts(host), max_concurrency };
    let bytes = serde_json::to_vec(&args).map_err(|e| e.to_string())?;
    let mut slot = Slot::default();
    // SAFETY: a checked v1 declaration of a library that is never unloaded; `bytes` and
    // `slot` outlive the call, which answers before it returns.
    unsafe { (agent.fns.prepare)(bytes.as_ptr(), bytes.len(), reply::sync_reply, slot.as_ctx()) };
    let answer = slot.into_result(&label(agent)).map_err(|e| {
        // Settings refusals read like a built-in agent's (naming the key); anything else
        // (a panic, a broken reply) keeps its code.
        if e.code == codes::BAD_AGENT_CONFIG { e.message } else { e.to_string() }
    })?;
    let prepared: wire::Prepared = serde_json::from_slice(&answer)
        .map_err(|e| format!("[{}] {} answered settings that cannot be decoded: {e}", plugin_codes::PROTOCOL, label(agent)))?;
    let exposure = wire::exposure_from_name(&prepared.exposure).ok_or_else(|| {
        format!("[{}] {} declares unknown exposure {:?}", plugin_codes::PROTOCOL, label(agent), prepared.exposure)
    })?;
    let effective = match json_to_toml(prepared.effective) {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let agent = agent.clone();
    Ok(Prepared::new(exposure, effective, move |init: &AgentInit| build(&agent, args, init)))
}

/// Builds an instance with the gateway's services.
fn build(agent: &PluginAgentDecl, prepared: PrepareArgs, init: &AgentInit) -> Result<AgentHandle, AgentError> {
    let admission = match (agent.scope, init.admission.max()) {
        (AdmissionScope::Job, Some(max)) => Some(AdmissionArgs {
            max,
            on_full: match init.admission.on_full() {
                tern_agent_api::admission::OnFull::Reject => "reject".into(),
                tern_agent_api::admission::OnFull::Queue => "queue".into(),
            },
            queue_timeout_ms: init.admission.queue_timeout().as_millis().min(u64::MAX as u128) as u64,
        }),
        _ => None,
    };
    let args = InitArgs {
        settings: prepared.settings,
        host: prepared.host,
        max_concurrency: prepared.max_concurrency,
        admission,
        log_level: Some(tracing::level_filters::LevelFilter::current().to_string().to_ascii_lowercase()),
    };
    let bytes = serde_json::to_vec(&args).map_err(|e| AgentError::internal(codes::INTERNAL, e.to_string()))?;
    let table = host::table(init.services.clone());
    let mut instance: *mut c_void = std::ptr::null_mut();
    let mut slot = Slot::default();
    // SAFETY: a checked v1 declaration; the plugin takes the table over (releasing it when
    // done, also on failure); `bytes`, `instance` and `slot` outlive the call, which answers
    // before it returns.
    unsafe { (agent.fns.init)(bytes.as_ptr(), bytes.len(), table, &mut instance, reply::sync_reply, slot.as_ctx()) };
    let answer = slot.into_result(&label(agent));
    let protocol = |m: String| AgentError::internal(plugin_codes::PROTOCOL, format!("{}: {m}", label(agent)));
    let described: Result<Described, AgentError> = answer.and_then(|bytes| {
        if instance.is_null() {
            return Err(protocol("init answered without an instance".into()));
        }
        serde_json::from_slice(&bytes).map_err(|e| protocol(format!("init answered a description that cannot be decoded: {e}")))
    });
    let described = match described {
        Ok(d) => d,
        Err(e) => {
            if !instance.is_null() {
                // SAFETY: an instance this declaration's `init` made, dropped once.
                unsafe { (agent.fns.drop_instance)(instance) };
            }
            return Err(e);
        }
    };
    let categories = described.categories.into_iter().map(|c| TaskCategory::new(c.name, c.version)).collect();
    // Once per built agent, at start: the table's texts are leaked to be `'static`.
    let states = described.backend_states.map(wire::DescribedStates::leak_into_table);
    // SAFETY: `instance` was just made by `agent.fns.init` and is owned by the result.
    let instance = Arc::new(unsafe {
        agent::PluginInstance::new(agent.fns, instance, label(agent), described.name, categories, states)
    });
    Ok(if described.sync {
        AgentHandle::Sync(Arc::new(agent::PluginSyncAgent(instance)))
    } else {
        AgentHandle::Async(Arc::new(agent::PluginAsyncAgent(instance)))
    })
}

/// JSON settings back to TOML for `tern config show` (TOML has no null: such keys are unset).
fn json_to_toml(value: serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(a) => toml::Value::Array(a.into_iter().filter_map(json_to_toml).collect()),
        J::Object(o) => toml::Value::Table(o.into_iter().filter_map(|(k, v)| Some((k, json_to_toml(v)?))).collect()),
    })
}
