//! The keys every `[agents.<name>]` section has, owned by the gateway; the rest of the
//! section belongs to the agent's own config type.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::admission::OnFull;

/// Keys the gateway reads from every agent section.
pub const COMMON_KEYS: &[&str] = &["enabled", "max_concurrency", "on_full", "queue_timeout"];

/// The gateway's part of an agent section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommonKeys {
    /// Serve this agent. Required (`true`) for agents that run code or touch local files
    /// on `tern serve`; `false` turns any agent off.
    pub enabled: Option<bool>,
    /// Tasks of this agent at once on this gateway (absent: the agent's default).
    pub max_concurrency: Option<usize>,
    /// When every slot is taken: `"queue"` (wait) or `"reject"` (RESOURCE_EXHAUSTED).
    pub on_full: OnFull,
    /// How long a call waits for a slot under `"queue"` before RESOURCE_EXHAUSTED.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
}

impl Default for CommonKeys {
    fn default() -> Self {
        Self { enabled: None, max_concurrency: None, on_full: OnFull::Queue, queue_timeout: Duration::from_secs(30) }
    }
}

/// Splits a section into the gateway's keys and the agent's own; errors are messages
/// naming the key.
pub fn split(mut section: toml::Table) -> Result<(CommonKeys, toml::Table), String> {
    let mut common = toml::Table::new();
    for key in COMMON_KEYS {
        if let Some(v) = section.remove(*key) {
            common.insert((*key).to_owned(), v);
        }
    }
    let keys: CommonKeys = toml::Value::Table(common).try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
    if keys.max_concurrency == Some(0) {
        return Err("max_concurrency must be at least 1 (remove the key for the agent's default)".into());
    }
    Ok((keys, section))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_the_gateways_keys_from_the_agents() {
        let t: toml::Table = toml::from_str("enabled = true\nmax_concurrency = 3\non_full = \"reject\"\nthreads = 2\n").unwrap();
        let (common, rest) = split(t).unwrap();
        assert_eq!(common.enabled, Some(true));
        assert_eq!(common.max_concurrency, Some(3));
        assert_eq!(common.on_full, OnFull::Reject);
        assert_eq!(rest.keys().collect::<Vec<_>>(), ["threads"]);
    }

    #[test]
    fn bad_common_values_are_named() {
        for (text, want) in [
            ("on_full = \"drop\"", "drop"),
            ("max_concurrency = 0", "max_concurrency"),
            ("queue_timeout = \"soon\"", "soon"),
            ("enabled = \"yes\"", "bool"),
        ] {
            let err = split(toml::from_str(text).unwrap()).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
