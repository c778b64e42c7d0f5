//! [`AgentMetrics`]: where an agent registers its own Prometheus metrics. The gateway
//! owns the registry and serves it on `/metrics`; each agent's metrics are prefixed
//! `tern_agent_<name>_`.
use std::sync::{Arc, Mutex};

use prometheus_client::registry::{Metric, Registry};

/// A handle on the gateway's metrics registry, scoped to one prefix. Cheap to clone.
#[derive(Clone)]
pub struct AgentMetrics {
    registry: Arc<Mutex<Registry>>,
    prefix: Option<String>,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMetrics").field("prefix", &self.prefix).finish()
    }
}

impl Default for AgentMetrics {
    /// A registry of its own that nobody serves (tests, embedded runs).
    fn default() -> Self {
        Self::new(Arc::new(Mutex::new(Registry::default())))
    }
}

impl AgentMetrics {
    pub fn new(registry: Arc<Mutex<Registry>>) -> Self {
        Self { registry, prefix: None }
    }

    /// The same registry, with names prefixed `tern_agent_<agent>_`.
    pub fn for_agent(&self, agent: &str) -> Self {
        Self { registry: self.registry.clone(), prefix: Some(format!("tern_agent_{agent}")) }
    }

    /// Registers `metric` (a `Counter`, `Gauge`, `Histogram`, `Family`…) under `name`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        match &self.prefix {
            Some(prefix) => registry.sub_registry_with_prefix(prefix).register(name, help, metric),
            None => registry.register(name, help, metric),
        }
    }

    /// The whole registry (the gateway encodes it for `/metrics`).
    pub fn registry(&self) -> &Arc<Mutex<Registry>> {
        &self.registry
    }
}
