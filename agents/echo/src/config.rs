//! `[agents.echo]`: the echo agent has no settings; the section exists so it can be
//! enabled, disabled and limited like any other agent.
use serde::{Deserialize, Serialize};
use tern_agent_api::prelude::*;

/// No keys: any key in `[agents.echo]` other than the gateway's common ones is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoConfig {}

/// The factory behind `[agents.echo]`.
pub struct EchoFactory;

impl AgentFactory for EchoFactory {
    type Config = EchoConfig;
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "returns its inputs as outputs (protocol tests, benchmarks)";

    fn build(_config: EchoConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        Ok(AgentHandle::Async(crate::agent()))
    }
}
