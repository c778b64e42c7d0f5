//! `[agents.sleep]`: how much the sleep agent remembers for idempotency.
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// Settings of the sleep agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SleepConfig {
    /// Handles (and cancellations) remembered per process, so a repeated create returns
    /// the first handle; the oldest are forgotten beyond this.
    pub remembered_handles: usize,
}

impl Default for SleepConfig {
    fn default() -> Self {
        Self { remembered_handles: crate::agent::REMEMBERED }
    }
}

/// The factory behind `[agents.sleep]`.
pub struct SleepFactory;

impl AgentFactory for SleepFactory {
    type Config = SleepConfig;
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str = "runs for its `duration` input, then succeeds (polling and cancellation tests)";

    fn build(config: SleepConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        if config.remembered_handles == 0 {
            return Err(AgentError::invalid_argument(
                codes::BAD_AGENT_CONFIG,
                "[agents.sleep] remembered_handles must be at least 1",
            ));
        }
        Ok(AgentHandle::Async(std::sync::Arc::new(crate::SleepAgent::with_capacity(config.remembered_handles))))
    }
}
