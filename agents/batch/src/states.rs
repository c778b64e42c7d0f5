//! Every status an AWS Batch job reports, mapped to a task phase.
//!
//! `DescribeJobs` gives a job's `status` (`SUBMITTED`, `PENDING`, `RUNNABLE`, `STARTING`,
//! `RUNNING`, `SUCCEEDED`, `FAILED`) and, once it stopped, a free-text `statusReason` (plus
//! the container's exit code and reason). `FAILED` covers very different causes, so the agent
//! names it by its reason ([`state_name`]):
//!
//! | reported | name in the table |
//! |---|---|
//! | any status but `FAILED` | the status |
//! | `FAILED`, reason starting with [`TERMINATE_REASON`] (this agent's `TerminateJob`) | `FAILED/terminated` |
//! | `FAILED`, `Job attempt duration exceeded timeout` | `FAILED/timeout` |
//! | `FAILED`, `Host EC2 (instance …) terminated.` (Spot reclaim, scale-in) | `FAILED/host` |
//! | `FAILED`, `CannotStartContainerError`, `ResourceInitializationError`, `DockerTimeoutError`, `CannotInspectContainerError`, `CannotCreateContainerError`, `TaskFailedToStart` | `FAILED/start` |
//! | `FAILED`, `CannotPullContainerError` | `FAILED/image` |
//! | `FAILED`, `OutOfMemoryError` | `FAILED/memory` |
//! | `FAILED`, `Dependent Job failed` | `FAILED/dependency` |
//! | `FAILED`, any other reason (`Essential container in task exited`, an exit code) | `FAILED` |
//!
//! A status the table does not know (one newer than this table, none at all) is the
//! explicit retryable failure `TERN-B001` naming it — never a stuck task. flytekit ships no
//! AWS Batch connector; propeller's Go plugin maps `SUBMITTED`/`PENDING`/`RUNNABLE` to
//! queued, `STARTING`/`RUNNING` to running, and treats every `FAILED` alike.
use tern_agent_api::prelude::*;

use crate::codes::{JOB_FAILED, PLATFORM_FAILURE};

/// The `reason` this agent gives `TerminateJob` (its prefix marks a job it aborted).
pub const TERMINATE_REASON: &str = "tern: DeleteTask";

const fn failed(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::Failed).meaning(meaning).user().code(JOB_FAILED)
}

const fn platform(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::RetryableFailed).meaning(meaning).system().code(PLATFORM_FAILURE)
}

/// The job statuses of AWS Batch, every one mapped (`FAILED` by its reason).
pub static JOB_STATES: StateTable = StateTable::detailed(
    "aws-batch",
    &[
        BackendState::new("SUBMITTED", Phase::Queued).meaning("accepted by the job queue, not yet evaluated by the scheduler"),
        BackendState::new("PENDING", Phase::Queued).meaning("waiting on dependencies"),
        BackendState::new("RUNNABLE", Phase::WaitingForResources)
            .meaning("waiting for compute capacity in the queue's compute environments"),
        BackendState::new("STARTING", Phase::Initializing).meaning("placed on a host; the container is being started"),
        BackendState::new("RUNNING", Phase::Running),
        BackendState::new("SUCCEEDED", Phase::Succeeded),
        failed("FAILED", "the job failed (its container exited with an error)"),
        BackendState::new("FAILED/terminated", Phase::Aborted).meaning("terminated on DeleteTask"),
        failed("FAILED/timeout", "stopped after its attempt duration timeout"),
        failed("FAILED/image", "the container image could not be pulled"),
        failed("FAILED/memory", "the container ran out of memory"),
        failed("FAILED/dependency", "a job it depends on failed"),
        platform("FAILED/host", "its host was terminated (a Spot reclaim or a scale-in)"),
        platform("FAILED/start", "the container runtime or the task's networking could not start the container"),
    ],
);

/// Reasons (prefixes of `statusReason` or the container's `reason`) and the name they give a `FAILED` job.
const FAILED_REASONS: &[(&str, &str)] = &[
    ("Job attempt duration exceeded timeout", "FAILED/timeout"),
    ("Host EC2", "FAILED/host"),
    ("CannotPullContainerError", "FAILED/image"),
    ("CannotStartContainerError", "FAILED/start"),
    ("CannotInspectContainerError", "FAILED/start"),
    ("CannotCreateContainerError", "FAILED/start"),
    ("ResourceInitializationError", "FAILED/start"),
    ("DockerTimeoutError", "FAILED/start"),
    ("TaskFailedToStart", "FAILED/start"),
    ("OutOfMemoryError", "FAILED/memory"),
    ("Dependent Job failed", "FAILED/dependency"),
];

/// The table name of a job's status, and the detail to show with it.
pub fn state_name(status: &str, status_reason: Option<&str>, container_reason: Option<&str>, exit_code: Option<i32>) -> (String, String) {
    let status = status.trim();
    let reason = status_reason.map(str::trim).filter(|r| !r.is_empty());
    let container = container_reason.map(str::trim).filter(|r| !r.is_empty());
    let mut detail: Vec<String> = Vec::new();
    if let Some(r) = reason {
        detail.push(r.chars().take(1000).collect());
    }
    if let Some(c) = container {
        if Some(c) != reason {
            detail.push(format!("container: {}", c.chars().take(1000).collect::<String>()));
        }
    }
    if let Some(code) = exit_code {
        detail.push(format!("exit code {code}"));
    }
    let detail = detail.join("; ");
    if status != "FAILED" {
        return (status.to_owned(), detail);
    }
    if reason.is_some_and(|r| r.starts_with(TERMINATE_REASON)) {
        return ("FAILED/terminated".into(), detail);
    }
    for text in [reason, container].into_iter().flatten() {
        if let Some((_, name)) = FAILED_REASONS.iter().find(|(prefix, _)| text.starts_with(prefix) || text.contains(&format!(" {prefix}"))) {
            return ((*name).to_owned(), detail);
        }
    }
    ("FAILED".into(), detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorOrigin;
    use tern_agent_api::testkit::{assert_state_cases, StateCase};

    #[test]
    fn table_is_sound_and_covers_every_batch_status() {
        assert!(JOB_STATES.problems().is_empty(), "{:?}", JOB_STATES.problems());
        // JobStatus of the Batch API, every value (aws-sdk-batch's `JobStatus`).
        for s in ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"] {
            assert!(JOB_STATES.lookup(s).is_some(), "{s} is not mapped");
        }
        // Every FAILED sub-name the classifier produces is in the table.
        for (_, name) in FAILED_REASONS {
            assert!(JOB_STATES.lookup(name).is_some(), "{name}");
        }
        assert!(JOB_STATES.lookup("FAILED/terminated").is_some());
    }

    #[test]
    fn phases_origins_and_codes() {
        let cases: &[StateCase] = &[
            ("SUBMITTED", Phase::Queued, None),
            ("PENDING", Phase::Queued, None),
            ("RUNNABLE", Phase::WaitingForResources, None),
            ("STARTING", Phase::Initializing, None),
            ("RUNNING", Phase::Running, None),
            ("SUCCEEDED", Phase::Succeeded, None),
            ("FAILED", Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED/terminated", Phase::Aborted, None),
            ("FAILED/timeout", Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED/image", Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED/memory", Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED/dependency", Phase::Failed, Some((JOB_FAILED, ErrorOrigin::User))),
            ("FAILED/host", Phase::RetryableFailed, Some((PLATFORM_FAILURE, ErrorOrigin::System))),
            ("FAILED/start", Phase::RetryableFailed, Some((PLATFORM_FAILURE, ErrorOrigin::System))),
        ];
        assert_eq!(cases.len(), JOB_STATES.len(), "every state has a case");
        assert_state_cases(&JOB_STATES, cases, &["", "QUEUED", "FAILED/other", "CANCELLED"]);
    }

    #[test]
    fn failed_jobs_are_named_by_their_reason() {
        let name = |reason: Option<&str>, container: Option<&str>| state_name("FAILED", reason, container, None).0;
        assert_eq!(name(Some("Essential container in task exited"), None), "FAILED");
        assert_eq!(name(None, None), "FAILED");
        assert_eq!(name(Some("tern: DeleteTask (tern-ab12)"), None), "FAILED/terminated");
        assert_eq!(name(Some("Job attempt duration exceeded timeout"), None), "FAILED/timeout");
        assert_eq!(name(Some("Host EC2 (instance i-0abc) terminated."), None), "FAILED/host");
        assert_eq!(name(Some("Task failed to start"), Some("CannotPullContainerError: pull access denied")), "FAILED/image");
        assert_eq!(name(Some("Task failed to start"), Some("ResourceInitializationError: unable to pull secrets")), "FAILED/start");
        assert_eq!(name(Some("Essential container in task exited"), Some("OutOfMemoryError: Container killed due to memory usage")), "FAILED/memory");
        assert_eq!(name(Some("Dependent Job failed"), None), "FAILED/dependency");
        // A user's own reason that merely mentions our marker later is not an abort.
        assert_eq!(name(Some("user says tern: DeleteTask"), None), "FAILED");
        let (n, detail) = state_name("RUNNING", None, None, None);
        assert_eq!((n.as_str(), detail.as_str()), ("RUNNING", ""));
        let (_, detail) = state_name("FAILED", Some("Essential container in task exited"), None, Some(3));
        assert_eq!(detail, "Essential container in task exited; exit code 3");
    }
}
