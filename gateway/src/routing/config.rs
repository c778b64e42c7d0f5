//! `[[routes]]` and `[groups.<name>]`: where each task goes.
//!
//! ```toml
//! [[routes]]                       # first match wins
//! task_type = "spark"
//! project = ["ml", "research"]     # a text or a list of texts
//! labels = { team = "ml" }         # every label must match
//! target = "group:eu"              # "local", "agent:<name>" or "group:<name>"
//! deadline = "20s"
//! max_concurrency = 50
//! rate_limit = { per = "project", rps = 5.0, burst = 10 }
//!
//! [groups.eu]
//! endpoints = [
//!   { url = "https://tern-eu.internal:8000", region = "eu-west-1" },
//!   { url = "http://flyteconnector.us:8000", region = "us-east-1" },
//! ]
//! prefer_region = "eu-west-1"
//! ```
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::admission::OnFull;

use crate::security::client::ClientConfig;

/// A text or a list of texts (`project = "ml"` or `project = ["ml", "ops"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(v) => v == value,
            Self::Many(vs) => vs.iter().any(|v| v == value),
        }
    }
}

/// Token-bucket quota on creates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// One bucket per `project`, per `project_domain`, or one for the whole `route`.
    #[serde(default)]
    pub per: RatePer,
    /// Tokens added per second.
    pub rps: f64,
    /// Bucket size (burst); default: `rps` rounded up, at least 1.
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePer {
    #[default]
    Project,
    ProjectDomain,
    Route,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Optional name, for logs and metrics (default: `route <index>`).
    pub name: Option<String>,
    pub task_type: Option<OneOrMany>,
    pub version: Option<i32>,
    pub project: Option<OneOrMany>,
    pub domain: Option<OneOrMany>,
    /// Labels of `task_execution_metadata`; all must be present with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `local` (this gateway's agents), `agent:<name>` (one of them) or `group:<name>`.
    pub target: String,
    /// Deadline of each call forwarded through this route.
    #[serde(default, with = "humantime_serde")]
    pub deadline: Option<Duration>,
    /// Creates in flight through this route at once.
    pub max_concurrency: Option<usize>,
    #[serde(default)]
    pub on_full: OnFull,
    /// How long a create waits for a slot under `on_full = "queue"`.
    #[serde(default = "default_queue_timeout", with = "humantime_serde")]
    pub queue_timeout: Duration,
    pub rate_limit: Option<RateLimit>,
}

fn default_queue_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One endpoint of a group: another Tern gateway or any flytekit connector server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `http://host:port`, `https://host:port` or `host:port`.
    pub url: String,
    /// Where it runs (e.g. `eu-west-1`).
    #[serde(default)]
    pub region: String,
}

/// Per-operation deadlines of calls to a group (propeller's `timeouts` map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupTimeouts {
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    #[serde(with = "humantime_serde")]
    pub create: Duration,
    #[serde(with = "humantime_serde")]
    pub get: Duration,
    #[serde(with = "humantime_serde")]
    pub delete: Duration,
    #[serde(with = "humantime_serde")]
    pub execute_sync: Duration,
    #[serde(with = "humantime_serde")]
    pub metadata: Duration,
}

impl Default for GroupTimeouts {
    fn default() -> Self {
        let t = tern_agent_api::grpc_client::ClientTimeouts::default();
        Self {
            connect: Duration::from_secs(3),
            create: t.create,
            get: t.get,
            delete: t.delete,
            execute_sync: t.execute_sync,
            metadata: Duration::from_secs(5),
        }
    }
}

/// `[groups.<name>]`: an ordered list of endpoints, each in a region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub endpoints: Vec<EndpointConfig>,
    /// Region tried first (default: `[server] region`, else the first endpoint's).
    pub prefer_region: Option<String>,
    /// Active `grpc.health.v1` checks.
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub health_check_interval: Duration,
    /// Consecutive failed calls or checks that eject an endpoint.
    #[serde(default = "default_eject_after")]
    pub eject_after_failures: u32,
    /// How long an ejected endpoint is skipped for new creates.
    #[serde(default = "default_eject_for", with = "humantime_serde")]
    pub eject_for: Duration,
    #[serde(default)]
    pub timeouts: GroupTimeouts,
    /// TLS and token for these endpoints.
    #[serde(default)]
    pub client: ClientConfig,
}

fn default_health_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_eject_after() -> u32 {
    3
}

fn default_eject_for() -> Duration {
    Duration::from_secs(30)
}
