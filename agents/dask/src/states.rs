//! The life-cycle of one Dask job on this host, every state mapped to a task phase.
//!
//! Dask has no job API: a job is the agent's supervisor process (`/bin/sh` running
//! [`crate::supervisor`]), which starts the local cluster when one is needed, runs the
//! task's command with `DASK_SCHEDULER_ADDRESS` set, records how it ended and tears the
//! cluster down. The state is read from the job's directory and the process table:
//!
//! | state | when |
//! |---|---|
//! | `STARTING` | the job's directory exists; its supervisor has not said anything yet |
//! | `STARTING_CLUSTER` | the supervisor runs and is starting the local scheduler and workers |
//! | `RUNNING` | the task's command runs |
//! | `EXITED_0` | the command exited 0 |
//! | `EXITED_N` | the command exited non-zero (code in the message) |
//! | `CLUSTER_FAILED` | the local cluster did not come up |
//! | `SPAWN_FAILED` | the supervisor could not be started |
//! | `KILLED` | DeleteTask killed the job's processes |
//! | `LOST` | the supervisor is gone without an exit record |
//!
//! Anything else found in the job's files (a record written by a newer agent, a
//! damaged file) is the explicit retryable failure `TERN-B001` naming it.
use tern_agent_api::prelude::*;

use crate::codes::{CLUSTER_FAILED, JOB_LOST, SPAWN_FAILED, TASK_FAILED};

pub const STARTING: &str = "STARTING";
pub const STARTING_CLUSTER: &str = "STARTING_CLUSTER";
pub const RUNNING: &str = "RUNNING";
pub const EXITED_0: &str = "EXITED_0";
pub const EXITED_N: &str = "EXITED_N";
pub const CLUSTER_FAILED_STATE: &str = "CLUSTER_FAILED";
pub const SPAWN_FAILED_STATE: &str = "SPAWN_FAILED";
pub const KILLED: &str = "KILLED";
pub const LOST: &str = "LOST";

/// Every state of a job, mapped.
pub static JOB_STATES: StateTable = StateTable::detailed(
    "dask",
    &[
        BackendState::new(STARTING, Phase::Initializing).meaning("the job's supervisor is starting"),
        BackendState::new(STARTING_CLUSTER, Phase::Initializing).meaning("starting the local Dask scheduler and workers"),
        BackendState::new(RUNNING, Phase::Running),
        BackendState::new(EXITED_0, Phase::Succeeded),
        BackendState::new(EXITED_N, Phase::Failed).meaning("the task's command failed").user().code(TASK_FAILED),
        BackendState::new(CLUSTER_FAILED_STATE, Phase::RetryableFailed)
            .meaning("the local Dask cluster did not come up")
            .system()
            .code(CLUSTER_FAILED),
        BackendState::new(SPAWN_FAILED_STATE, Phase::RetryableFailed)
            .meaning("the job's supervisor process could not be started")
            .system()
            .code(SPAWN_FAILED),
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
            (STARTING, Phase::Initializing, None),
            (STARTING_CLUSTER, Phase::Initializing, None),
            (RUNNING, Phase::Running, None),
            (EXITED_0, Phase::Succeeded, None),
            (EXITED_N, Phase::Failed, Some(TASK_FAILED)),
            (CLUSTER_FAILED_STATE, Phase::RetryableFailed, Some(CLUSTER_FAILED)),
            (SPAWN_FAILED_STATE, Phase::RetryableFailed, Some(SPAWN_FAILED)),
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
