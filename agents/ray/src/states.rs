//! Every state a Ray job reports, mapped to a task phase.
//!
//! `GET /api/jobs/{id}` answers `status` (Ray's `JobStatus`: `PENDING`, `RUNNING`,
//! `STOPPED`, `SUCCEEDED`, `FAILED`) and, for a failed job, `error_type` (Ray's
//! `JobErrorType`). The agent classifies these names:
//!
//! | reported | name in the table |
//! |---|---|
//! | `status` S other than `FAILED` | `S` |
//! | `FAILED` without `error_type` | `FAILED` |
//! | `FAILED` with `error_type` E | `FAILED/E` |
//!
//! A name the table does not know (a status or error type of a newer Ray) is the explicit
//! retryable failure `TERN-B001` naming it, bounded by the task's retries — never a task
//! left running.
use tern_agent_api::prelude::*;

use crate::codes::{CLUSTER_FAILURE, JOB_FAILED};

const fn failed(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::Failed).meaning(meaning).user().code(JOB_FAILED)
}

const fn cluster(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::RetryableFailed).meaning(meaning).system().code(CLUSTER_FAILURE)
}

/// Ray's job states and failure types (Ray 2.60 `JobStatus`, `JobErrorType`), every one mapped.
pub static JOB_STATES: StateTable = StateTable::detailed(
    "ray",
    &[
        BackendState::new("PENDING", Phase::Initializing)
            .meaning("the job's runtime_env is being set up and its driver started"),
        BackendState::new("RUNNING", Phase::Running),
        BackendState::new("SUCCEEDED", Phase::Succeeded),
        BackendState::new("STOPPED", Phase::Aborted).meaning("stopped on request"),
        failed("FAILED", "the job failed"),
        failed("FAILED/JOB_ENTRYPOINT_COMMAND_ERROR", "the entrypoint exited with a non-zero code"),
        failed("FAILED/JOB_ENTRYPOINT_COMMAND_START_ERROR", "the entrypoint command could not be started"),
        failed("FAILED/RUNTIME_ENV_SETUP_FAILURE", "the job's runtime_env could not be set up"),
        failed("FAILED/JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE", "the entrypoint's resources cannot be scheduled on this cluster"),
        cluster("FAILED/JOB_SUPERVISOR_ACTOR_START_TIMEOUT", "the job's supervisor did not start in time"),
        cluster("FAILED/JOB_SUPERVISOR_ACTOR_START_FAILURE", "the job's supervisor failed to start"),
        cluster("FAILED/JOB_SUPERVISOR_ACTOR_DIED", "the job's supervisor died (a lost node?)"),
        cluster("FAILED/JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE", "the job's supervisor failed"),
    ],
);

/// The table name of what `GET /api/jobs/{id}` reports.
pub fn state_name(status: &str, error_type: Option<&str>) -> String {
    let status = status.trim();
    match error_type.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if status.eq_ignore_ascii_case("FAILED") => format!("FAILED/{e}"),
        _ => status.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorOrigin;
    use tern_agent_api::states::UNDECLARED_STATE_PROBE;

    #[test]
    fn table_is_sound_and_covers_every_ray_value() {
        assert!(JOB_STATES.problems().is_empty(), "{:?}", JOB_STATES.problems());
        // ray.dashboard.modules.job.common: JobStatus and JobErrorType (Ray 2.60), every value.
        let statuses = ["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"];
        let errors = [
            "RUNTIME_ENV_SETUP_FAILURE",
            "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
            "JOB_SUPERVISOR_ACTOR_START_FAILURE",
            "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE",
            "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE",
            "JOB_SUPERVISOR_ACTOR_DIED",
            "JOB_ENTRYPOINT_COMMAND_START_ERROR",
            "JOB_ENTRYPOINT_COMMAND_ERROR",
        ];
        let names: Vec<String> =
            statuses.iter().map(|s| s.to_string()).chain(errors.iter().map(|e| format!("FAILED/{e}"))).collect();
        for n in &names {
            assert!(JOB_STATES.lookup(n).is_some(), "{n} is not mapped");
        }
        assert_eq!(JOB_STATES.len(), names.len(), "no state beyond Ray's own");
    }

    /// Table-driven: what each answer becomes (status, error_type → phase, code and origin).
    #[test]
    fn phases_origins_and_codes() {
        type Expected<'a> = (&'a str, Option<&'a str>, Phase, Option<(&'a str, ErrorOrigin)>);
        let cases: &[Expected] = &[
            ("PENDING", None, Phase::Initializing, None),
            ("RUNNING", None, Phase::Running, None),
            ("SUCCEEDED", None, Phase::Succeeded, None),
            ("STOPPED", None, Phase::Aborted, None),
            ("FAILED", None, Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED", Some(""), Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED", Some("JOB_ENTRYPOINT_COMMAND_ERROR"), Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED", Some("RUNTIME_ENV_SETUP_FAILURE"), Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED", Some("JOB_SUPERVISOR_ACTOR_DIED"), Phase::RetryableFailed, Some((CLUSTER_FAILURE, ErrorOrigin::System))),
            ("FAILED", Some("JOB_SUPERVISOR_ACTOR_START_TIMEOUT"), Phase::RetryableFailed, Some((CLUSTER_FAILURE, ErrorOrigin::System))),
            // Newer than this table: the explicit, retryable TERN-B001 (never a guess).
            ("FAILED", Some("NODE_ON_FIRE"), Phase::RetryableFailed, Some(("TERN-B001", ErrorOrigin::System))),
            ("PAUSED", None, Phase::RetryableFailed, Some(("TERN-B001", ErrorOrigin::System))),
            ("", None, Phase::RetryableFailed, Some(("TERN-B001", ErrorOrigin::System))),
            (UNDECLARED_STATE_PROBE, None, Phase::RetryableFailed, Some(("TERN-B001", ErrorOrigin::System))),
            // The error type is only read for FAILED.
            ("SUCCEEDED", Some("JOB_ENTRYPOINT_COMMAND_ERROR"), Phase::Succeeded, None),
        ];
        for (status, error_type, phase, error) in cases {
            let name = state_name(status, *error_type);
            let s = JOB_STATES.classify_with(&name, "Ray's message");
            assert_eq!(s.phase, *phase, "{status} {error_type:?}");
            match (error, &s.error) {
                (Some((code, origin)), Some(e)) => {
                    assert_eq!((e.code.as_ref(), e.origin), (*code, *origin), "{status} {error_type:?}");
                    assert_eq!(e.is_retryable(), *origin == ErrorOrigin::System, "{status}: user errors are permanent");
                    assert!(e.message.contains("ray"), "{}", e.message);
                }
                (None, None) => {}
                (want, got) => panic!("{status} {error_type:?}: want {want:?}, got {got:?}"),
            }
        }
    }
}
