//! `[agents.duckdb]`: file access, threads and memory of the DuckDB agent.
//!
//! DuckDB's own defaults (every core and 80% of RAM *per connection*) let two queries
//! exhaust the host, so the agent's defaults divide the host among `max_concurrency`
//! queries: `threads` = CPUs / max_concurrency (at least 1), `memory_limit` = half the
//! physical memory / max_concurrency.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tern_agent_api::factory::HostResources;
use tern_agent_api::prelude::*;

/// Operator settings for every DuckDB task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DuckDbConfig {
    /// Let SQL read and write any file the agent process can. Off by default: SQL may
    /// then touch only the task's dataframe inputs, its dataframe outputs and
    /// [`allowed_directories`](Self::allowed_directories).
    pub unrestricted_file_access: bool,
    /// Extra directories SQL may read and write (e.g. a shared reference-data folder).
    pub allowed_directories: Vec<PathBuf>,
    /// DuckDB worker threads per task.
    pub threads: Option<u32>,
    /// DuckDB memory limit per task, e.g. `"2GiB"`.
    pub memory_limit: Option<String>,
    /// Where DuckDB spills data larger than memory (DuckDB's default: `.tmp` in the
    /// working directory).
    pub temp_directory: Option<PathBuf>,
    /// Where dataframes in a remote data store (`s3://…`) are downloaded before a query
    /// and written before their upload, one directory per job, removed when it ends
    /// (default: the host's temporary directory).
    pub staging_directory: Option<PathBuf>,
}

const UNITS: &[&str] = &["B", "KB", "MB", "GB", "TB", "KIB", "MIB", "GIB", "TIB"];

impl DuckDbConfig {
    /// Fills `threads` and `memory_limit` with the safe defaults for `host` shared by
    /// `max_concurrency` queries.
    pub fn with_defaults(mut self, host: &HostResources, max_concurrency: Option<usize>) -> Self {
        let share = max_concurrency.unwrap_or(host.cpus).max(1);
        if self.staging_directory.is_none() {
            self.staging_directory = Some(host.temp_dir.clone());
        }
        if self.threads.is_none() {
            self.threads = Some((host.cpus / share).max(1) as u32);
        }
        if self.memory_limit.is_none() {
            if let Some(memory) = host.memory_bytes {
                let mib = (memory / 2 / share as u64 / (1024 * 1024)).max(64);
                self.memory_limit = Some(format!("{mib}MiB"));
            }
        }
        self
    }

    /// Refuses settings DuckDB would reject on every task, naming the key.
    pub fn validate(&self) -> Result<(), AgentError> {
        let bad = |m: String| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.duckdb] {m}"));
        if self.threads == Some(0) {
            return Err(bad("threads must be at least 1".into()));
        }
        if let Some(limit) = &self.memory_limit {
            let text = limit.trim();
            let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let unit = unit.trim().to_ascii_uppercase();
            let number_ok = number.parse::<f64>().is_ok_and(|n| n > 0.0);
            if !number_ok || !(unit.is_empty() || UNITS.contains(&unit.as_str())) {
                return Err(bad(format!(
                    "memory_limit = {limit:?} is not a size: write a number and a unit, e.g. \"2GiB\" or \"512MB\""
                )));
            }
        }
        if let Some(dir) = self.staging_directory.as_ref().filter(|d| !d.is_absolute()) {
            return Err(bad(format!("staging_directory: {} is not an absolute path", dir.display())));
        }
        for dir in &self.allowed_directories {
            if !dir.is_absolute() {
                return Err(bad(format!("allowed_directories: {} is not an absolute path", dir.display())));
            }
        }
        Ok(())
    }
}

/// The factory behind `[agents.duckdb]`.
pub struct DuckDbFactory;

impl AgentFactory for DuckDbFactory {
    type Config = DuckDbConfig;
    const NAME: &'static str = "duckdb";
    const DESCRIPTION: &'static str = "SQL on an embedded DuckDB over the task's dataframes";
    const ADMISSION: AdmissionScope = AdmissionScope::Job;

    /// Confined to the task's own data it is safe; file access beyond it is opt-in.
    fn exposure(config: &DuckDbConfig) -> Exposure {
        if config.unrestricted_file_access || !config.allowed_directories.is_empty() {
            Exposure::LocalFiles
        } else {
            Exposure::Safe
        }
    }

    /// One query per CPU by default.
    fn default_max_concurrency(host: &HostResources) -> Option<usize> {
        Some(host.cpus.max(1))
    }

    fn with_host_defaults(config: DuckDbConfig, host: &HostResources, max_concurrency: Option<usize>) -> DuckDbConfig {
        config.with_defaults(host, max_concurrency)
    }

    fn build(config: DuckDbConfig, init: &AgentInit) -> Result<AgentHandle, AgentError> {
        let config = config.with_defaults(&init.host, init.admission.max());
        config.validate()?;
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::DuckDbAgent::with_admission(config, init.admission.clone()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(cpus: usize, gib: u64) -> HostResources {
        HostResources { cpus, memory_bytes: Some(gib << 30), ..HostResources::detect() }
    }

    #[test]
    fn defaults_divide_the_host_among_concurrent_queries() {
        let c = DuckDbConfig::default().with_defaults(&host(8, 32), Some(4));
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.memory_limit.as_deref(), Some("4096MiB"));
        let c = DuckDbConfig::default().with_defaults(&host(2, 24), None);
        assert_eq!(c.threads, Some(1));
        assert_eq!(c.memory_limit.as_deref(), Some("6144MiB"));
        assert_eq!(
            c.staging_directory,
            Some(host(2, 24).temp_dir),
            "remote dataframes are staged in the host's temp dir"
        );
        let set = DuckDbConfig {
            threads: Some(3),
            memory_limit: Some("1GB".into()),
            staging_directory: Some("/srv/staging".into()),
            ..Default::default()
        };
        assert_eq!(set.clone().with_defaults(&host(8, 32), Some(1)), set, "explicit settings win");
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        for (config, key) in [
            (DuckDbConfig { threads: Some(0), ..Default::default() }, "threads"),
            (DuckDbConfig { memory_limit: Some("lots".into()), ..Default::default() }, "memory_limit"),
            (DuckDbConfig { memory_limit: Some("2 parsecs".into()), ..Default::default() }, "memory_limit"),
            (DuckDbConfig { allowed_directories: vec!["rel".into()], ..Default::default() }, "allowed_directories"),
        ] {
            let err = config.validate().unwrap_err();
            assert!(err.message.contains(key) && err.message.contains("[agents.duckdb]"), "{err}");
        }
        for ok in ["2GiB", "512MB", "1.5GB", "100000"] {
            assert!(DuckDbConfig { memory_limit: Some(ok.into()), ..Default::default() }.validate().is_ok(), "{ok}");
        }
    }

    #[test]
    fn file_access_makes_it_opt_in() {
        assert_eq!(DuckDbFactory::exposure(&DuckDbConfig::default()), Exposure::Safe);
        let c = DuckDbConfig { allowed_directories: vec!["/srv/ref".into()], ..Default::default() };
        assert_eq!(DuckDbFactory::exposure(&c), Exposure::LocalFiles);
    }
}
