//! `[agents.shell]`: the shell agent's settings, and what they resolve to on this host.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tern_agent_api::factory::HostResources;
use tern_agent_api::prelude::*;

/// Variables of the gateway's own environment that commands see by default. Nothing
/// else leaks: credentials in the gateway's environment stay out of user commands.
pub const DEFAULT_INHERITED: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// The `[agents.shell]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShellConfig {
    /// Where per-attempt scratch directories are created (default: the temp directory).
    pub scratch_root: Option<PathBuf>,
    /// Names of the gateway's environment variables passed to every command.
    pub inherit_env: Vec<String>,
    /// Lines of output kept in memory per running command for `GetTaskLogs`.
    pub log_lines_in_memory: usize,
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self {
            scratch_root: None,
            inherit_env: DEFAULT_INHERITED.iter().map(|s| (*s).to_owned()).collect(),
            log_lines_in_memory: 10_000,
        }
    }
}

/// The settings a [`ShellAgent`](crate::ShellAgent) runs with, resolved on one host.
#[derive(Debug, Clone)]
pub struct ShellSettings {
    /// Where per-attempt scratch directories (captured output, default working
    /// directory) are created.
    pub scratch_root: PathBuf,
    /// The base environment of every command; the task's `container.env` is added on top.
    pub inherited_env: Vec<(String, String)>,
    /// Lines of output kept in memory per running command for `GetTaskLogs`.
    pub log_lines_in_memory: usize,
}

impl ShellSettings {
    /// `config` on `host`: variables it names that the host does not set are skipped.
    pub fn resolve(config: &ShellConfig, host: &HostResources) -> Self {
        Self {
            scratch_root: config.scratch_root.clone().unwrap_or_else(|| host.temp_dir.clone()),
            inherited_env: config
                .inherit_env
                .iter()
                .filter_map(|k| host.env.get(k).map(|v| (k.clone(), v.clone())))
                .collect(),
            log_lines_in_memory: config.log_lines_in_memory.max(1),
        }
    }

    /// The defaults on the host this process runs on.
    pub fn detect() -> Self {
        Self::resolve(&ShellConfig::default(), &HostResources::detect())
    }
}

/// The factory behind `[agents.shell]`. Opt-in on `tern serve`: it runs whatever the
/// task template says, with the gateway's rights.
pub struct ShellFactory;

impl AgentFactory for ShellFactory {
    type Config = ShellConfig;
    const NAME: &'static str = "shell";
    const DESCRIPTION: &'static str = "runs the task's command on the gateway's host";
    const ADMISSION: AdmissionScope = AdmissionScope::Job;

    fn exposure(_config: &ShellConfig) -> Exposure {
        Exposure::ArbitraryCode
    }

    fn build(config: ShellConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        let settings = ShellSettings::resolve(&config, &init.host);
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::ShellAgent::with_admission(settings, init.admission.clone()))))
    }
}
