//! `[agents.webhook]`: what a gateway lets webhook tasks reach, and how long they may take.
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// Settings of the webhook agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Hosts tasks may call: exact names (`hooks.slack.com`), `host:port`, or a leading
    /// wildcard (`*.example.com`). Unset: any host. Set it on gateways exposed to callers
    /// you do not trust, or a task can make the gateway call internal services.
    pub allowed_hosts: Option<Vec<String>>,
    /// Largest response body read; a longer one fails the task (`TERN-W006`).
    pub max_response_bytes: u64,
    /// Time allowed to establish the connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Upper bound on a task's whole call (`timeout_sec` larger than this is cut to it).
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: None,
            max_response_bytes: 10 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_timeout: Duration::from_secs(300),
        }
    }
}

impl WebhookConfig {
    /// Whether `host` (and `port`) may be called.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let Some(allowed) = &self.allowed_hosts else { return true };
        let host = unbracket(host.trim_end_matches('.')).to_ascii_lowercase();
        allowed.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            let (pattern, want_port) = split_port(&entry);
            if want_port.is_some() && want_port != port {
                return false;
            }
            match pattern.strip_prefix("*.") {
                Some(suffix) => host.strip_suffix(suffix).is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                None => pattern == host,
            }
        })
    }
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// `host:port`, `[v6]:port` or a bare host (an unbracketed IPv6 address has no port).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

/// The factory behind `[agents.webhook]`.
pub struct WebhookFactory;

impl AgentFactory for WebhookFactory {
    type Config = WebhookConfig;
    const NAME: &'static str = "webhook";
    const DESCRIPTION: &'static str = "HTTP GET/POST like flytekit's webhook connector (sync)";

    fn build(config: WebhookConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        Ok(AgentHandle::Sync(std::sync::Arc::new(crate::WebhookAgent::new(config)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matches_names_wildcards_and_ports() {
        let c = WebhookConfig {
            allowed_hosts: Some(vec!["hooks.slack.com".into(), "*.example.com".into(), "127.0.0.1:8080".into()]),
            ..Default::default()
        };
        assert!(c.allows("hooks.slack.com", Some(443)));
        assert!(c.allows("HOOKS.SLACK.COM.", Some(443)));
        assert!(c.allows("a.example.com", Some(80)));
        assert!(!c.allows("example.com", Some(80)), "the wildcard needs a subdomain");
        assert!(!c.allows("evilexample.com", Some(80)));
        assert!(c.allows("127.0.0.1", Some(8080)));
        assert!(!c.allows("127.0.0.1", Some(8081)));
        assert!(!c.allows("169.254.169.254", Some(80)));
        assert!(WebhookConfig::default().allows("anything", None));
        let v6 = WebhookConfig { allowed_hosts: Some(vec!["[::1]:9000".into(), "fd00::1".into()]), ..Default::default() };
        assert!(v6.allows("[::1]", Some(9000)) && !v6.allows("[::1]", Some(9001)));
        assert!(v6.allows("[fd00::1]", Some(443)));
    }
}
