//! `[agents.sleep]`: where the sleep agent keeps its job records, and for how long.
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// Settings of the sleep agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SleepConfig {
    /// Where job records are kept (default `.tern/state/sleep`, relative to the gateway's
    /// working directory like `[data_store] root`). Keep it across restarts: a repeated
    /// create finds its job there, and cancellations stay in force.
    pub state_dir: PathBuf,
    /// How long a record is kept after its sleep ended; older ones are removed by a later
    /// create. A repeated create after that starts the sleep anew.
    #[serde(with = "humantime_serde")]
    pub keep_records: Duration,
}

impl Default for SleepConfig {
    fn default() -> Self {
        Self { state_dir: PathBuf::from(".tern/state/sleep"), keep_records: crate::agent::KEEP_RECORDS }
    }
}

/// The factory behind `[agents.sleep]`.
pub struct SleepFactory;

impl AgentFactory for SleepFactory {
    type Config = SleepConfig;
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str = "runs for its `duration` input, then succeeds (polling and cancellation tests)";

    fn build(config: SleepConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        let bad = |m: String| AgentError::invalid_argument(codes::BAD_AGENT_CONFIG, format!("[agents.sleep] {m}"));
        if config.state_dir.as_os_str().is_empty() {
            return Err(bad("state_dir is empty".into()));
        }
        if config.keep_records < Duration::from_secs(60) {
            return Err(bad(
                "keep_records must be at least 1m (propeller asks about a finished task for a while)".into()
            ));
        }
        // Absolute now, so the records stay where they are whatever the process's directory later.
        let state_dir = std::path::absolute(&config.state_dir)
            .map_err(|e| bad(format!("cannot resolve state_dir {}: {e}", config.state_dir.display())))?;
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::SleepAgent::new(&state_dir, config.keep_records))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_empty_state_dir_and_a_short_keep() {
        let init = AgentInit::for_tests(std::env::temp_dir());
        let empty = SleepConfig { state_dir: PathBuf::new(), ..Default::default() };
        let err = SleepFactory::build(empty, &init).err().unwrap();
        assert!(err.message.contains("state_dir"), "{err}");
        let short = SleepConfig { keep_records: Duration::from_secs(1), ..Default::default() };
        let err = SleepFactory::build(short, &init).err().unwrap();
        assert!(err.message.contains("keep_records"), "{err}");
        let parsed: SleepConfig = toml::from_str("state_dir = \"/x\"\nkeep_records = \"2h\"\n").unwrap();
        assert_eq!(parsed.keep_records, Duration::from_secs(7200));
    }
}
