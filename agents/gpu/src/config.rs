//! `[agents.gpu]`: where job records live, what environment commands get, and (tests only)
//! a fake device list instead of NVML.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::factory::HostResources;
use tern_agent_api::prelude::*;

use crate::inventory::{FixedInventory, GpuDevice, NvmlInventory, SharedInventory};

/// Variables of the gateway's own environment that task commands see by default (as the
/// shell agent's). Nothing else leaks: credentials in the gateway's environment stay out.
pub const DEFAULT_INHERITED: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "LD_LIBRARY_PATH"];

/// The source name of a `fake_devices` inventory, in messages.
pub const FAKE_SOURCE: &str = "fake_devices (test only)";

/// The `[agents.gpu]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// The task types this agent serves (default `["gpu"]`). Add `python-task` to run flytekit's
    /// plain Python tasks that propeller routes here (only GPU-asking ones are accepted).
    pub task_types: Vec<String>,
    /// Where job records, device assignments and logs are kept (default `.tern/state/gpu`,
    /// relative to the gateway's working directory). Keep it across restarts: a repeated
    /// create finds its job there, and running jobs keep their devices.
    pub state_dir: PathBuf,
    /// How long the record of a finished (or killed) job is kept; older ones are removed by a
    /// later create. A repeated create after that starts the job anew.
    #[serde(with = "humantime_serde")]
    pub keep_finished: Duration,
    /// Names of the gateway's environment variables passed to every command.
    pub inherit_env: Vec<String>,
    /// Environment variables set for every command from secrets, by reference only:
    /// `{ HF_TOKEN = "env:HF_TOKEN", TOKEN = "file:/run/secrets/t" }`.
    pub secret_env: BTreeMap<String, SecretRef>,
    /// TEST ONLY: use these devices instead of asking NVML, e.g.
    /// `[{ uuid = "GPU-fake-0", name = "Tesla T4" }]`. The commands get these UUIDs in
    /// `CUDA_VISIBLE_DEVICES` although no such device exists: for exercising the queue on a
    /// host without GPUs, never for real work.
    pub fake_devices: Option<Vec<GpuDevice>>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        Self {
            task_types: vec![crate::TASK_TYPE.into()],
            state_dir: PathBuf::from(".tern/state/gpu"),
            keep_finished: Duration::from_secs(7 * 24 * 3600),
            inherit_env: DEFAULT_INHERITED.iter().map(|s| (*s).to_owned()).collect(),
            secret_env: BTreeMap::new(),
            fake_devices: None,
        }
    }
}

impl GpuConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.task_types.is_empty() || self.task_types.iter().any(|t| t.trim().is_empty()) {
            return Err("task_types must list task types to serve (e.g. [\"gpu\"]), none empty".into());
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err("state_dir is empty".into());
        }
        if self.keep_finished < Duration::from_secs(3600) {
            return Err("keep_finished must be at least 1h (propeller asks about a finished task for a while)".into());
        }
        for name in self.secret_env.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("secret_env: {name:?} is not an environment variable name"));
            }
        }
        if let Some(devices) = &self.fake_devices {
            let mut seen = std::collections::BTreeSet::new();
            for d in devices {
                if d.uuid.trim().is_empty() || d.uuid.contains(',') || d.name.trim().is_empty() {
                    return Err(format!("fake_devices: {d:?} needs a uuid (without commas) and a name"));
                }
                if !seen.insert(d.uuid.clone()) {
                    return Err(format!("fake_devices: the uuid {:?} is listed twice", d.uuid));
                }
            }
        }
        Ok(())
    }
}

/// The settings a [`GpuAgent`](crate::GpuAgent) runs with, resolved on one host.
#[derive(Clone)]
pub struct GpuSettings {
    pub task_types: Vec<String>,
    pub state_dir: PathBuf,
    pub keep_finished: Duration,
    /// The base environment of every command; the task's `container.env` is added on top.
    pub inherited_env: Vec<(String, String)>,
    pub secret_env: BTreeMap<String, SecretRef>,
    pub inventory: SharedInventory,
}

impl std::fmt::Debug for GpuSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSettings")
            .field("state_dir", &self.state_dir)
            .field("keep_finished", &self.keep_finished)
            .field("inventory", &self.inventory.source())
            .finish_non_exhaustive()
    }
}

impl GpuSettings {
    /// `config` on `host`: NVML, unless `fake_devices` is set. Variables `inherit_env` names
    /// that the host does not set are skipped.
    pub fn resolve(config: &GpuConfig, host: &HostResources) -> Self {
        let inventory: SharedInventory = match &config.fake_devices {
            Some(devices) => Arc::new(FixedInventory::new(devices.clone(), FAKE_SOURCE)),
            None => Arc::new(NvmlInventory::new()),
        };
        Self::with_inventory(config, host, inventory)
    }

    /// `config` on `host` with the given inventory (tests inject theirs here).
    pub fn with_inventory(config: &GpuConfig, host: &HostResources, inventory: SharedInventory) -> Self {
        Self {
            task_types: config.task_types.clone(),
            state_dir: config.state_dir.clone(),
            keep_finished: config.keep_finished,
            inherited_env: config.inherit_env.iter().filter_map(|k| host.env.get(k).map(|v| (k.clone(), v.clone()))).collect(),
            secret_env: config.secret_env.clone(),
            inventory,
        }
    }
}

/// The factory behind `[agents.gpu]`. Opt-in on `tern serve`: it runs whatever the task
/// template's container command says, on the gateway's host, with the gateway's rights.
pub struct GpuFactory;

impl AgentFactory for GpuFactory {
    type Config = GpuConfig;
    const NAME: &'static str = "gpu";
    const DESCRIPTION: &'static str = "runs GPU tasks' commands on this host with NVML devices assigned through CUDA_VISIBLE_DEVICES";

    fn exposure(_config: &GpuConfig) -> Exposure {
        Exposure::ArbitraryCode
    }

    fn build(config: GpuConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config.check().map_err(|m| AgentError::invalid_argument(tern_agent_api::error::codes::BAD_AGENT_CONFIG, format!("[agents.gpu] {m}")))?;
        let settings = GpuSettings::resolve(&config, &init.host);
        if config.fake_devices.is_some() {
            tracing::warn!("[agents.gpu] fake_devices is set: the gpu agent hands out devices that do not exist (test only)");
        }
        match settings.inventory.devices() {
            Ok(devices) => tracing::info!(source = settings.inventory.source(), devices = devices.len(), "gpu: inventory"),
            Err(reason) => tracing::info!(%reason, "gpu: this host has no GPU; tasks asking for one are refused"),
        }
        Ok(AgentHandle::Async(Arc::new(crate::GpuAgent::new(settings)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_section_and_refuses_unknown_keys_and_secret_values() {
        let c: GpuConfig = toml::from_str(
            r#"
            task_types = ["gpu", "python-task"]
            state_dir = "/var/lib/tern/gpu"
            keep_finished = "2d"
            secret_env = { HF_TOKEN = "env:HF_TOKEN" }
            fake_devices = [{ uuid = "GPU-a", name = "Tesla T4" }, { index = 1, uuid = "GPU-b", name = "Tesla T4" }]
            "#,
        )
        .unwrap();
        assert_eq!(c.keep_finished, Duration::from_secs(2 * 24 * 3600));
        assert_eq!(c.task_types, ["gpu", "python-task"]);
        assert_eq!(GpuConfig::default().task_types, ["gpu"]);
        assert_eq!(c.fake_devices.as_ref().map(Vec::len), Some(2));
        assert!(c.check().is_ok());
        assert!(toml::from_str::<GpuConfig>("devices = 2").is_err());
        assert!(toml::from_str::<GpuConfig>("secret_env = { T = \"plain-value\" }").is_err(), "a value is not a reference");
    }

    #[test]
    fn refuses_inconsistent_settings() {
        let dev = |uuid: &str| GpuDevice { index: 0, uuid: uuid.into(), name: "Tesla T4".into(), memory_bytes: 0, partition: None };
        let bad = [
            GpuConfig { keep_finished: Duration::from_secs(60), ..Default::default() },
            GpuConfig { state_dir: PathBuf::new(), ..Default::default() },
            GpuConfig { task_types: vec![], ..Default::default() },
            GpuConfig { secret_env: [("A=B".to_owned(), "env:X".parse().unwrap())].into(), ..Default::default() },
            GpuConfig { fake_devices: Some(vec![dev("GPU-a"), dev("GPU-a")]), ..Default::default() },
            GpuConfig { fake_devices: Some(vec![dev("GPU-a,GPU-b")]), ..Default::default() },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }
}
