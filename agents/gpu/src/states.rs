//! The life-cycle of one GPU job on this host, every state mapped to a task phase.
//!
//! A job is the agent's record in its state directory plus, once devices are assigned, a
//! supervisor process (`/bin/sh` running `supervisor.sh`) that runs the task's command with
//! `CUDA_VISIBLE_DEVICES` set and records how it ended. The state is read from the job's
//! directory and the process table:
//!
//! | state | when |
//! |---|---|
//! | `QUEUED` | recorded; waiting for enough free devices of its kind (message: queue position) |
//! | `STARTING` | devices assigned; the supervisor has not said anything yet |
//! | `RUNNING` | the task's command runs on its devices |
//! | `EXITED_0` | the command exited 0 |
//! | `EXITED_N` | the command exited non-zero (code in the message) |
//! | `SPAWN_FAILED` | the supervisor could not be started |
//! | `UNSATISFIABLE` | queued, but the host's devices changed (gateway restart) and can never serve it |
//! | `KILLED` | DeleteTask killed the job (or removed it from the queue) |
//! | `LOST` | the supervisor is gone without an exit record |
//!
//! Anything else found in the job's files (a record written by a newer agent, a damaged
//! file) is the explicit retryable failure `TERN-B001` naming it.
use tern_agent_api::prelude::*;

use crate::codes::{JOB_LOST, SPAWN_FAILED, TASK_FAILED, TOO_FEW_GPUS};

pub const QUEUED: &str = "QUEUED";
pub const STARTING: &str = "STARTING";
pub const RUNNING: &str = "RUNNING";
pub const EXITED_0: &str = "EXITED_0";
pub const EXITED_N: &str = "EXITED_N";
pub const SPAWN_FAILED_STATE: &str = "SPAWN_FAILED";
pub const KILLED: &str = "KILLED";
pub const LOST: &str = "LOST";
pub const UNSATISFIABLE: &str = "UNSATISFIABLE";

/// Every state of a job, mapped.
pub static JOB_STATES: StateTable = StateTable::detailed(
    "gpu",
    &[
        BackendState::new(QUEUED, Phase::Queued).meaning("waiting for free GPUs"),
        BackendState::new(STARTING, Phase::Initializing).meaning("GPUs assigned; the job's supervisor is starting"),
        BackendState::new(RUNNING, Phase::Running),
        BackendState::new(EXITED_0, Phase::Succeeded),
        BackendState::new(EXITED_N, Phase::Failed).meaning("the task's command failed").user().code(TASK_FAILED),
        BackendState::new(SPAWN_FAILED_STATE, Phase::RetryableFailed)
            .meaning("the job's supervisor process could not be started")
            .system()
            .code(SPAWN_FAILED),
        BackendState::new(UNSATISFIABLE, Phase::Failed)
            .meaning("the host no longer has enough devices of the kind the queued job asks for")
            .user()
            .code(TOO_FEW_GPUS),
        BackendState::new(KILLED, Phase::Aborted).meaning("killed by DeleteTask"),
        BackendState::new(LOST, Phase::RetryableFailed)
            .meaning("the job's processes are gone without an exit record (killed from outside, or the host restarted)")
            .system()
            .code(JOB_LOST),
    ],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps_to_its_phase_and_code() {
        let expected: &[(&str, Phase, Option<&str>)] = &[
            (QUEUED, Phase::Queued, None),
            (STARTING, Phase::Initializing, None),
            (RUNNING, Phase::Running, None),
            (EXITED_0, Phase::Succeeded, None),
            (EXITED_N, Phase::Failed, Some(TASK_FAILED)),
            (SPAWN_FAILED_STATE, Phase::RetryableFailed, Some(SPAWN_FAILED)),
            (UNSATISFIABLE, Phase::Failed, Some(TOO_FEW_GPUS)),
            (KILLED, Phase::Aborted, None),
            (LOST, Phase::RetryableFailed, Some(JOB_LOST)),
        ];
        assert_eq!(JOB_STATES.len(), expected.len(), "a state without a row here");
        for (state, phase, code) in expected {
            let status = JOB_STATES.classify_with(state, "detail");
            assert_eq!(status.phase, *phase, "{state}");
            assert_eq!(status.error.as_ref().map(|e| e.code.as_ref()), *code, "{state}");
            assert!(status.message.contains("detail"), "{state}: {}", status.message);
            if let Some(e) = &status.error {
                assert_eq!(e.is_retryable(), *phase == Phase::RetryableFailed, "{state}");
            }
        }
        assert!(JOB_STATES.problems().is_empty(), "{:?}", JOB_STATES.problems());
        let unknown = JOB_STATES.classify("PAUSED");
        assert_eq!(unknown.phase, Phase::RetryableFailed);
        assert_eq!(unknown.error.unwrap().code, codes::UNKNOWN_BACKEND_STATE);
    }
}
