//! Every state a Spark driver reports, mapped to a task phase.
//!
//! Standalone mode reads `driverState` from `GET /v1/submissions/status/<id>` (Spark's
//! `DriverState`); a submission the master does not know (`success: false`, no state) is
//! `NOT_FOUND`. Local mode names the `spark-submit` process's states `local/…`. A name the
//! table does not know (a newer Spark's state) is the explicit retryable failure `TERN-B001`
//! naming it — never a stuck task.
use tern_agent_api::prelude::*;

use crate::codes::{DRIVER_ERROR, DRIVER_FAILED, DRIVER_LOST};

/// The name of a submission the master does not know.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// Local mode: `spark-submit` is running.
pub const LOCAL_RUNNING: &str = "local/RUNNING";
/// Local mode: `spark-submit` exited 0.
pub const LOCAL_SUCCEEDED: &str = "local/SUCCEEDED";
/// Local mode: `spark-submit` exited non-zero.
pub const LOCAL_FAILED: &str = "local/FAILED";
/// Local mode: killed by DeleteTask.
pub const LOCAL_KILLED: &str = "local/KILLED";
/// Local mode: the process is gone and recorded no exit status.
pub const LOCAL_LOST: &str = "local/LOST";

/// Driver states (standalone) and `spark-submit` states (local), every one mapped.
pub static DRIVER_STATES: StateTable = StateTable::detailed(
    "spark",
    &[
        BackendState::new("SUBMITTED", Phase::Queued).meaning("accepted by the master, waiting for a worker with enough cores and memory"),
        BackendState::new("RUNNING", Phase::Running).meaning("the driver runs on a worker"),
        BackendState::new("RELAUNCHING", Phase::Running).meaning("the driver exited and is being restarted (spark.driver.supervise)"),
        BackendState::new("FINISHED", Phase::Succeeded).meaning("the driver exited 0"),
        BackendState::new("FAILED", Phase::Failed).meaning("the driver exited non-zero").user().code(DRIVER_FAILED),
        BackendState::new("KILLED", Phase::Aborted).meaning("killed on request (DeleteTask, or a user at the master)"),
        BackendState::new("ERROR", Phase::RetryableFailed)
            .meaning("Spark could not run the driver (the worker failed to launch it)")
            .system()
            .code(DRIVER_ERROR),
        BackendState::new("UNKNOWN", Phase::RetryableFailed)
            .meaning("the master lost track of the driver (a lost worker, a master recovering)")
            .system()
            .code(DRIVER_LOST),
        BackendState::new(NOT_FOUND, Phase::RetryableFailed)
            .meaning("the master does not know the submission (restarted without recovery, or another master)")
            .system()
            .code(DRIVER_LOST),
        BackendState::new(LOCAL_RUNNING, Phase::Running).meaning("spark-submit runs on the gateway's host"),
        BackendState::new(LOCAL_SUCCEEDED, Phase::Succeeded).meaning("spark-submit exited 0"),
        BackendState::new(LOCAL_FAILED, Phase::Failed).meaning("spark-submit exited non-zero").user().code(DRIVER_FAILED),
        BackendState::new(LOCAL_KILLED, Phase::Aborted).meaning("killed by DeleteTask"),
        BackendState::new(LOCAL_LOST, Phase::RetryableFailed)
            .meaning("spark-submit is gone without an exit status (the host restarted, or it was killed from outside)")
            .system()
            .code(DRIVER_LOST),
    ],
);

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorOrigin;

    #[test]
    fn table_is_sound_and_covers_every_driver_state() {
        assert!(DRIVER_STATES.problems().is_empty(), "{:?}", DRIVER_STATES.problems());
        // org.apache.spark.deploy.master.DriverState, every value (Spark 4.3).
        for s in ["SUBMITTED", "RUNNING", "FINISHED", "RELAUNCHING", "UNKNOWN", "KILLED", "FAILED", "ERROR"] {
            assert!(DRIVER_STATES.lookup(s).is_some(), "{s} is not mapped");
        }
    }

    type Expected<'a> = (&'a str, Phase, Option<(&'a str, ErrorOrigin)>);

    /// Table-driven: what each report becomes.
    #[test]
    fn phases_origins_and_codes() {
        let cases: &[Expected] = &[
            ("SUBMITTED", Phase::Queued, None),
            ("RUNNING", Phase::Running, None),
            ("RELAUNCHING", Phase::Running, None),
            ("FINISHED", Phase::Succeeded, None),
            ("FAILED", Phase::Failed, Some((DRIVER_FAILED, ErrorOrigin::User))),
            ("KILLED", Phase::Aborted, None),
            ("ERROR", Phase::RetryableFailed, Some((DRIVER_ERROR, ErrorOrigin::System))),
            ("UNKNOWN", Phase::RetryableFailed, Some((DRIVER_LOST, ErrorOrigin::System))),
            (NOT_FOUND, Phase::RetryableFailed, Some((DRIVER_LOST, ErrorOrigin::System))),
            (LOCAL_RUNNING, Phase::Running, None),
            (LOCAL_SUCCEEDED, Phase::Succeeded, None),
            (LOCAL_FAILED, Phase::Failed, Some((DRIVER_FAILED, ErrorOrigin::User))),
            (LOCAL_KILLED, Phase::Aborted, None),
            (LOCAL_LOST, Phase::RetryableFailed, Some((DRIVER_LOST, ErrorOrigin::System))),
        ];
        for (state, phase, failure) in cases {
            let status = DRIVER_STATES.classify_with(state, "detail");
            assert_eq!(status.phase, *phase, "{state}");
            match failure {
                Some((code, origin)) => {
                    let e = status.error.as_ref().unwrap_or_else(|| panic!("{state}: no error"));
                    assert_eq!((e.code.as_ref(), e.origin), (*code, *origin), "{state}");
                }
                None => assert!(status.error.is_none(), "{state}"),
            }
        }
        // A state newer than this table: the explicit, retryable TERN-B001, naming it.
        let status = DRIVER_STATES.classify_with("DECOMMISSIONED", "");
        assert_eq!(status.phase, Phase::RetryableFailed);
        let e = status.error.unwrap();
        assert_eq!(e.code, "TERN-B001");
        assert!(e.message.contains("DECOMMISSIONED"), "{}", e.message);
    }
}
