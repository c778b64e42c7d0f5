//! Every state a Lepton deployment reports (`status.state`), mapped to a task phase.
//!
//! The states are leptonai's `LeptonDeploymentState` (leptonai 0.27.3,
//! `leptonai/api/v1/types/deployment.py`): `Ready`, `Not Ready`, `Starting`, `Updating`,
//! `Deleting`, `Stopping`, `Stopped`, `Scaling` and `UNK`. A deployment task succeeds when
//! its endpoint is `Ready` (output `o0` = the endpoint's URL). A state the table does not
//! know (a new Lepton release) is the explicit retryable failure `TERN-B001` naming it —
//! never a stuck task (names are compared as leptonai spells them, ignoring case).
//! `Deleting` is ABORTED: the endpoint goes away (a cancel of this task deletes it). flytekit's connector maps unknown states to PENDING (polled for
//! ever) and `Deleting`/`Stopping`/`Stopped` to SUCCEEDED (with the URL of an endpoint that
//! is going away).
//!
//! A deletion task does not use this table: it succeeds once `GET /deployments/{name}`
//! answers 404, and is RUNNING while the deployment still exists, whatever its state.
use tern_agent_api::prelude::*;

use crate::codes::{ENDPOINT_ENDED, STATE_UNKNOWN};

const fn ended(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::Failed).meaning(meaning).user().code(ENDPOINT_ENDED)
}

/// The deployment states, every one mapped.
pub static DEPLOYMENT_STATES: StateTable = StateTable::detailed(
    "lepton",
    &[
        BackendState::new("Starting", Phase::Initializing).meaning("the deployment's replicas are starting"),
        BackendState::new("Not Ready", Phase::Initializing)
            .meaning("replicas exist but are not ready yet (image pull, model load, readiness probe)"),
        BackendState::new("Scaling", Phase::Initializing).meaning("the deployment is scaling its replicas"),
        BackendState::new("Updating", Phase::Initializing).meaning("the deployment's spec is being rolled out"),
        BackendState::new("Ready", Phase::Succeeded).meaning("the endpoint serves"),
        BackendState::new("Deleting", Phase::Aborted).meaning("the deployment is being deleted (the task was aborted, or someone deleted it)"),
        ended("Stopping", "the deployment is being stopped (scaled to zero)"),
        ended("Stopped", "the deployment is stopped (scaled to zero)"),
        BackendState::new("UNK", Phase::RetryableFailed)
            .meaning("Lepton reports the deployment's state as unknown")
            .system()
            .code(STATE_UNKNOWN),
    ],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps_as_documented() {
        assert!(DEPLOYMENT_STATES.problems().is_empty(), "{:?}", DEPLOYMENT_STATES.problems());
        let cases = [
            ("Starting", Phase::Initializing, None),
            ("Not Ready", Phase::Initializing, None),
            ("Scaling", Phase::Initializing, None),
            ("Updating", Phase::Initializing, None),
            ("Ready", Phase::Succeeded, None),
            ("Deleting", Phase::Aborted, None),
            ("Stopping", Phase::Failed, Some(ENDPOINT_ENDED)),
            ("Stopped", Phase::Failed, Some(ENDPOINT_ENDED)),
            ("UNK", Phase::RetryableFailed, Some(STATE_UNKNOWN)),
            ("Hibernating", Phase::RetryableFailed, Some(codes::UNKNOWN_BACKEND_STATE)),
        ];
        assert_eq!(DEPLOYMENT_STATES.len(), cases.len() - 1, "a state of the table is not in this test");
        for (state, phase, code) in cases {
            let s = DEPLOYMENT_STATES.classify(state);
            assert_eq!(s.phase, phase, "{state}");
            assert_eq!(s.error.as_ref().map(|e| e.code.as_ref()), code, "{state}");
        }
        let unknown = DEPLOYMENT_STATES.classify("Hibernating");
        assert!(unknown.message.contains("\"Hibernating\"") && unknown.message.contains("lepton"), "{}", unknown.message);
        assert!(unknown.error.unwrap().is_retryable());
        assert!(!DEPLOYMENT_STATES.classify("Stopped").error.unwrap().is_retryable());
    }
}
