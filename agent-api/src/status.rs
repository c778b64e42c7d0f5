//! [`TaskStatus`]: what an agent reports about a task, and its wire form `admin.Resource`.
use crate::error::AgentError;
use crate::proto::flyteidl::{admin, core};

pub use core::task_execution::Phase;

/// Status of a task as reported by an agent's `get` (async) or `execute` (sync).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskStatus {
    pub phase: Phase,
    pub message: String,
    pub outputs: Option<core::LiteralMap>,
    pub log_links: Vec<core::TaskLog>,
    pub custom_info: Option<prost_types::Struct>,
    /// Set for failures; drives `Resource.agent_error` and the failure phase.
    pub error: Option<AgentError>,
}

impl TaskStatus {
    pub fn with_phase(phase: Phase, message: impl Into<String>) -> Self {
        Self { phase, message: message.into(), ..Default::default() }
    }

    pub fn queued(message: impl Into<String>) -> Self {
        Self::with_phase(Phase::Queued, message)
    }

    pub fn running(message: impl Into<String>) -> Self {
        Self::with_phase(Phase::Running, message)
    }

    pub fn succeeded(outputs: Option<core::LiteralMap>) -> Self {
        Self { phase: Phase::Succeeded, outputs, ..Default::default() }
    }

    /// A failed task: the phase (FAILED vs RETRYABLE_FAILED) follows the error's class.
    pub fn failed(error: AgentError) -> Self {
        Self { phase: error.failure_phase(), message: error.to_string(), error: Some(error), ..Default::default() }
    }

    pub fn aborted(message: impl Into<String>) -> Self {
        Self::with_phase(Phase::Aborted, message)
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_log_links(mut self, links: Vec<core::TaskLog>) -> Self {
        self.log_links = links;
        self
    }

    pub fn is_terminal(&self) -> bool {
        is_terminal(self.phase)
    }

    /// Wire form. Also fills the deprecated `state` consistently, so an older propeller
    /// that falls back to `state` reads the same outcome.
    #[allow(deprecated)]
    pub fn into_resource(self) -> admin::Resource {
        admin::Resource {
            state: deprecated_state(self.phase) as i32,
            outputs: self.outputs,
            message: self.message,
            log_links: self.log_links,
            phase: self.phase as i32,
            custom_info: self.custom_info,
            agent_error: self.error.as_ref().map(AgentError::to_proto),
        }
    }

    /// Reads a `Resource` from any agent server, applying propeller's fallback rules:
    /// `phase == UNDEFINED` falls back to the deprecated `state` (whose zero value means
    /// a retryable failure).
    #[allow(deprecated)]
    pub fn from_resource(resource: admin::Resource) -> Self {
        let phase = match Phase::try_from(resource.phase).unwrap_or(Phase::Undefined) {
            Phase::Undefined => match admin::State::try_from(resource.state).unwrap_or(admin::State::RetryableFailure) {
                admin::State::Pending => Phase::Initializing,
                admin::State::Running => Phase::Running,
                admin::State::Succeeded => Phase::Succeeded,
                admin::State::PermanentFailure => Phase::Failed,
                admin::State::RetryableFailure => Phase::RetryableFailed,
            },
            p => p,
        };
        let error = match phase {
            Phase::Failed | Phase::RetryableFailed | Phase::Aborted => {
                let wire = resource.agent_error.clone().unwrap_or_default();
                let retryable = phase == Phase::RetryableFailed
                    || wire.kind == admin::agent_error::Kind::Recoverable as i32 && phase != Phase::Failed;
                let origin = if wire.origin == core::execution_error::ErrorKind::System as i32 {
                    crate::error::ErrorOrigin::System
                } else {
                    crate::error::ErrorOrigin::User
                };
                let code = if wire.code.is_empty() { "TaskFailedWithError".to_owned() } else { wire.code };
                Some(AgentError::new(
                    code,
                    if resource.message.is_empty() { format!("task ended in phase {}", phase.as_str_name()) } else { resource.message.clone() },
                    origin,
                    if retryable { crate::error::Retry::Retryable } else { crate::error::Retry::Permanent },
                    crate::error::ErrorClass::FailedPrecondition,
                ))
            }
            _ => None,
        };
        Self {
            phase,
            message: resource.message,
            outputs: resource.outputs,
            log_links: resource.log_links,
            custom_info: resource.custom_info,
            error,
        }
    }
}

/// Terminal phases end polling.
pub fn is_terminal(phase: Phase) -> bool {
    matches!(phase, Phase::Succeeded | Phase::Failed | Phase::Aborted | Phase::RetryableFailed)
}

fn deprecated_state(phase: Phase) -> admin::State {
    match phase {
        Phase::Undefined | Phase::Queued | Phase::Initializing | Phase::WaitingForResources => admin::State::Pending,
        Phase::Running => admin::State::Running,
        Phase::Succeeded => admin::State::Succeeded,
        Phase::Failed | Phase::Aborted => admin::State::PermanentFailure,
        Phase::RetryableFailed => admin::State::RetryableFailure,
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use super::*;
    use crate::error::codes;

    #[test]
    fn failures_carry_phase_state_and_agent_error() {
        let r = TaskStatus::failed(AgentError::user("TERN-Q001", "bad sql")).into_resource();
        assert_eq!(r.phase, Phase::Failed as i32);
        assert_eq!(r.state, admin::State::PermanentFailure as i32);
        assert_eq!(r.agent_error.unwrap().code, "TERN-Q001");
        let r = TaskStatus::failed(AgentError::unavailable(codes::DATA_IO, "disk")).into_resource();
        assert_eq!(r.phase, Phase::RetryableFailed as i32);
        assert_eq!(r.state, admin::State::RetryableFailure as i32);
    }

    #[test]
    fn undefined_phase_falls_back_to_state_like_propeller() {
        let s = TaskStatus::from_resource(admin::Resource::default());
        assert_eq!(s.phase, Phase::RetryableFailed);
        assert!(s.error.unwrap().is_retryable());
        let s = TaskStatus::from_resource(admin::Resource { state: admin::State::Running as i32, ..Default::default() });
        assert_eq!(s.phase, Phase::Running);
    }

    #[test]
    fn round_trip() {
        let s = TaskStatus::running("going");
        assert_eq!(TaskStatus::from_resource(s.clone().into_resource()), s);
    }
}
