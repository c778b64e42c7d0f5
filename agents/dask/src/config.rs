//! `[agents.dask]`: which scheduler, which Python, where job records live, how large a
//! local cluster may be.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::factory::HostResources;
use tern_agent_api::prelude::*;

/// Variables of the gateway's own environment that task commands see by default (as the
/// shell agent's). Nothing else leaks: credentials in the gateway's environment stay out.
pub const DEFAULT_INHERITED: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// The `[agents.dask]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaskConfig {
    /// A running Dask scheduler every task uses (`DASK_SCHEDULER_ADDRESS`), e.g.
    /// `tcp://10.0.0.5:8786`. Unset: each task gets an ephemeral local cluster
    /// (`dask scheduler` + `dask worker` processes) sized from its DaskJob.
    pub scheduler_address: Option<String>,
    /// The configured scheduler's dashboard (e.g. `http://10.0.0.5:8787/status`), linked from
    /// every task that runs on it. A local cluster's dashboard is linked while it runs.
    pub dashboard_url: Option<String>,
    /// The Python with `distributed` installed that runs the local cluster (default
    /// `python3` on `PATH`). When an absolute path, its directory is put first on the
    /// task's `PATH` too (so a virtualenv's `pyflyte-execute` and `python` are found).
    pub python: Option<PathBuf>,
    /// Where job records and logs are kept (default `.tern/state/dask`, relative to the
    /// gateway's working directory like `[data_store] root`). Keep it across restarts: a
    /// repeated create finds its job there.
    pub state_dir: PathBuf,
    /// Most workers one task's local cluster may have (default: the host's CPUs).
    pub max_workers: Option<u32>,
    /// Longest wait for a local cluster's scheduler and workers to come up.
    #[serde(with = "humantime_serde")]
    pub cluster_start_timeout: Duration,
    /// How long the record of a finished (or killed) job is kept; older ones are removed by a
    /// later create. A repeated create after that starts the job anew.
    #[serde(with = "humantime_serde")]
    pub keep_finished: Duration,
    /// Names of the gateway's environment variables passed to every command.
    pub inherit_env: Vec<String>,
    /// Environment variables set for every command from secrets, by reference only:
    /// `{ AWS_SECRET_ACCESS_KEY = "env:AWS_SECRET_ACCESS_KEY", TOKEN = "file:/run/secrets/t" }`.
    pub secret_env: BTreeMap<String, SecretRef>,
}

impl Default for DaskConfig {
    fn default() -> Self {
        Self {
            scheduler_address: None,
            dashboard_url: None,
            python: None,
            state_dir: PathBuf::from(".tern/state/dask"),
            max_workers: None,
            cluster_start_timeout: Duration::from_secs(60),
            keep_finished: Duration::from_secs(7 * 24 * 3600),
            inherit_env: DEFAULT_INHERITED.iter().map(|s| (*s).to_owned()).collect(),
            secret_env: BTreeMap::new(),
        }
    }
}

impl DaskConfig {
    /// Refusals of settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(address) = &self.scheduler_address {
            let a = address.trim();
            if a.is_empty() || a.chars().any(char::is_whitespace) {
                return Err(format!("scheduler_address {address:?} is not an address (e.g. \"tcp://127.0.0.1:8786\")"));
            }
        }
        if let Some(url) = &self.dashboard_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("dashboard_url {url:?} is not an http(s) URL"));
            }
        }
        if self.python.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err("python is empty".into());
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err("state_dir is empty".into());
        }
        if self.max_workers == Some(0) {
            return Err("max_workers must be at least 1".into());
        }
        if self.cluster_start_timeout.is_zero() {
            return Err("cluster_start_timeout must be positive".into());
        }
        if self.keep_finished < Duration::from_secs(3600) {
            return Err("keep_finished must be at least 1h (propeller asks about a finished task for a while)".into());
        }
        for name in self.secret_env.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(format!("secret_env: {name:?} is not an environment variable name"));
            }
        }
        Ok(())
    }
}

/// The settings a [`DaskAgent`](crate::DaskAgent) runs with, resolved on one host.
#[derive(Debug, Clone)]
pub struct DaskSettings {
    pub scheduler_address: Option<String>,
    pub dashboard_url: Option<String>,
    pub python: PathBuf,
    pub state_dir: PathBuf,
    pub max_workers: u32,
    pub cluster_start_timeout: Duration,
    pub keep_finished: Duration,
    /// The base environment of every command; the task's `container.env` is added on top.
    pub inherited_env: Vec<(String, String)>,
    pub secret_env: BTreeMap<String, SecretRef>,
}

impl DaskSettings {
    /// `config` on `host`: variables it names that the host does not set are skipped.
    pub fn resolve(config: &DaskConfig, host: &HostResources) -> Self {
        let mut inherited_env: Vec<(String, String)> =
            config.inherit_env.iter().filter_map(|k| host.env.get(k).map(|v| (k.clone(), v.clone()))).collect();
        let python = config.python.clone().unwrap_or_else(|| PathBuf::from("python3"));
        if let Some(bin) = python.parent().filter(|d| python.is_absolute() && !d.as_os_str().is_empty()) {
            let bin = bin.display().to_string();
            match inherited_env.iter_mut().find(|(k, _)| k == "PATH") {
                Some((_, path)) => *path = format!("{bin}:{path}"),
                None => inherited_env.push(("PATH".into(), format!("{bin}:/usr/local/bin:/usr/bin:/bin"))),
            }
        }
        Self {
            scheduler_address: config.scheduler_address.as_ref().map(|a| a.trim().to_owned()),
            dashboard_url: config.dashboard_url.clone(),
            python,
            state_dir: config.state_dir.clone(),
            max_workers: config.max_workers.unwrap_or_else(|| u32::try_from(host.cpus.max(1)).unwrap_or(u32::MAX)),
            cluster_start_timeout: config.cluster_start_timeout,
            keep_finished: config.keep_finished,
            inherited_env,
            secret_env: config.secret_env.clone(),
        }
    }
}

/// The factory behind `[agents.dask]`. Opt-in on `tern serve`: it runs whatever the task
/// template's container command says, on the gateway's host, with the gateway's rights.
pub struct DaskFactory;

impl AgentFactory for DaskFactory {
    type Config = DaskConfig;
    const NAME: &'static str = "dask";
    const DESCRIPTION: &'static str = "runs Dask tasks' commands on this host against a Dask scheduler or an ephemeral local cluster";

    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[StandardEnv::value("DASK_SCHEDULER_ADDRESS", "scheduler_address")];
        ENV
    }

    fn exposure(_config: &DaskConfig) -> Exposure {
        Exposure::ArbitraryCode
    }

    fn build(config: DaskConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        config.check().map_err(|m| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.dask] {m}")))?;
        let settings = DaskSettings::resolve(&config, &init.host);
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::DaskAgent::new(settings)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_section_and_refuses_unknown_keys_and_secret_values() {
        let c: DaskConfig = toml::from_str(
            r#"
            scheduler_address = "tcp://127.0.0.1:8786"
            python = "/opt/venv/bin/python"
            state_dir = "/var/lib/tern/dask"
            max_workers = 2
            cluster_start_timeout = "30s"
            secret_env = { TOKEN = "env:MY_TOKEN" }
            "#,
        )
        .unwrap();
        assert_eq!(c.max_workers, Some(2));
        assert_eq!(c.cluster_start_timeout, Duration::from_secs(30));
        assert!(c.check().is_ok());
        assert!(toml::from_str::<DaskConfig>("scheduler = \"x\"").is_err());
        assert!(toml::from_str::<DaskConfig>("secret_env = { T = \"plain-value\" }").is_err(), "a value is not a reference");
    }

    #[test]
    fn refuses_inconsistent_settings() {
        let bad = [
            DaskConfig { scheduler_address: Some(" ".into()), ..Default::default() },
            DaskConfig { max_workers: Some(0), ..Default::default() },
            DaskConfig { dashboard_url: Some("10.0.0.5:8787".into()), ..Default::default() },
            DaskConfig { cluster_start_timeout: Duration::ZERO, ..Default::default() },
            DaskConfig { keep_finished: Duration::from_secs(60), ..Default::default() },
            DaskConfig { state_dir: PathBuf::new(), ..Default::default() },
            DaskConfig { secret_env: [("A=B".to_owned(), "env:X".parse().unwrap())].into(), ..Default::default() },
        ];
        for c in bad {
            assert!(c.check().is_err(), "{c:?}");
        }
    }

    #[test]
    fn an_absolute_python_leads_the_path() {
        let host = HostResources {
            cpus: 3,
            env: std::sync::Arc::new([("PATH".to_owned(), "/usr/bin".to_owned()), ("SECRET".to_owned(), "x".to_owned())].into()),
            ..HostResources::detect()
        };
        let c = DaskConfig { python: Some("/opt/v/bin/python".into()), ..Default::default() };
        let s = DaskSettings::resolve(&c, &host);
        assert_eq!(s.inherited_env, [("PATH".to_owned(), "/opt/v/bin:/usr/bin".to_owned())]);
        assert_eq!(s.max_workers, 3);
        let s = DaskSettings::resolve(&DaskConfig::default(), &host);
        assert_eq!(s.python, PathBuf::from("python3"));
        assert_eq!(s.inherited_env, [("PATH".to_owned(), "/usr/bin".to_owned())]);
    }
}
