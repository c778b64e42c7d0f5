//! Every state a Databricks run reports, mapped to a task phase.
//!
//! A `runs/get` answer carries the deprecated `state` object (`life_cycle_state`, and
//! `result_state` once `TERMINATED`) and, from API 2.2 on, a `status` object (`state`, and
//! `termination_details.code`/`type` once `TERMINATED`). The agent classifies `status`
//! when present, else `state`, under these names:
//!
//! | reported | name in the table |
//! |---|---|
//! | `state.life_cycle_state` other than `TERMINATED` | the life-cycle state (`PENDING`, `QUEUED`, …) |
//! | `TERMINATED` with `result_state` R | `TERMINATED/R` |
//! | `status.state` other than `TERMINATED` | `status/<state>` |
//! | `status.state` `TERMINATED` with termination code C | `status/TERMINATED/C` |
//! | … with a code C the table does not know, of type T | `status/TERMINATED/type/T` (C in the message) |
//!
//! A name the table does not know (a new Databricks state, `TERMINATED` without a result)
//! is the explicit retryable failure `TERN-B001` naming it — never a stuck task.
//! flytekit's connector leaves `QUEUED`, `BLOCKED`, `WAITING_FOR_RETRY`,
//! `MAXIMUM_CONCURRENT_RUNS_REACHED`, `SUCCESS_WITH_FAILURES`, `EXCLUDED`,
//! `UPSTREAM_FAILED`, `UPSTREAM_CANCELED` and `DISABLED` unmapped (its server then answers
//! `INTERNAL`).
use tern_agent_api::prelude::*;

use crate::codes::{LIMIT_REACHED, PERMISSION_DENIED, PLATFORM_FAILURE, RUN_FAILED};

const fn failed(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::Failed).meaning(meaning).user().code(RUN_FAILED)
}

const fn platform(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::RetryableFailed).meaning(meaning).system().code(PLATFORM_FAILURE)
}

const fn limit(name: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(name, Phase::RetryableFailed).meaning(meaning).system().code(LIMIT_REACHED)
}

/// The run states of the Jobs API (2.1 `state` and 2.2 `status`), every one mapped.
pub static RUN_STATES: StateTable = StateTable::detailed(
    "databricks",
    &[
        // state.life_cycle_state (RunLifeCycleState), while not TERMINATED
        BackendState::new("QUEUED", Phase::WaitingForResources).meaning("queued: a concurrency limit is reached"),
        BackendState::new("PENDING", Phase::Initializing).meaning("the cluster and execution context are being prepared"),
        BackendState::new("BLOCKED", Phase::Queued).meaning("blocked on an upstream dependency"),
        BackendState::new("RUNNING", Phase::Running),
        BackendState::new("WAITING_FOR_RETRY", Phase::Running).meaning("waiting for a retry by Databricks"),
        BackendState::new("TERMINATING", Phase::Running).meaning("the task finished; the cluster is being cleaned up"),
        failed("SKIPPED", "the run never ran (a previous run of the same job was active)"),
        platform("INTERNAL_ERROR", "failure in the Jobs service"),
        // state.result_state (RunResultState) once TERMINATED
        BackendState::new("TERMINATED/SUCCESS", Phase::Succeeded),
        BackendState::new("TERMINATED/SUCCESS_WITH_FAILURES", Phase::Succeeded)
            .meaning("completed; its leaf tasks succeeded, some other tasks failed"),
        failed("TERMINATED/FAILED", "the task failed"),
        failed("TERMINATED/TIMEDOUT", "stopped after reaching its timeout"),
        BackendState::new("TERMINATED/CANCELED", Phase::Aborted).meaning("canceled on request"),
        limit("TERMINATED/MAXIMUM_CONCURRENT_RUNS_REACHED", "not run: the maximum of concurrent runs was reached"),
        failed("TERMINATED/EXCLUDED", "not run: its conditions were not met"),
        failed("TERMINATED/UPSTREAM_FAILED", "not run: an upstream task failed"),
        BackendState::new("TERMINATED/UPSTREAM_CANCELED", Phase::Aborted).meaning("not run: an upstream task was canceled"),
        failed("TERMINATED/DISABLED", "not run: disabled by a user"),
        // status.state (RunLifecycleStateV2State, API 2.2), while not TERMINATED
        BackendState::new("status/QUEUED", Phase::WaitingForResources).meaning("queued: a concurrency limit is reached"),
        BackendState::new("status/PENDING", Phase::Initializing).meaning("the cluster and execution context are being prepared"),
        BackendState::new("status/BLOCKED", Phase::Queued).meaning("blocked on an upstream dependency"),
        BackendState::new("status/RUNNING", Phase::Running),
        BackendState::new("status/WAITING", Phase::Running).meaning("waiting for a retry by Databricks"),
        BackendState::new("status/TERMINATING", Phase::Running).meaning("the task finished; the cluster is being cleaned up"),
        // status.termination_details.code (TerminationCodeCode) once TERMINATED
        BackendState::new("status/TERMINATED/SUCCESS", Phase::Succeeded),
        BackendState::new("status/TERMINATED/SUCCESS_WITH_FAILURES", Phase::Succeeded)
            .meaning("completed; some child runs failed"),
        BackendState::new("status/TERMINATED/USER_CANCELED", Phase::Aborted).meaning("canceled by a user"),
        failed("status/TERMINATED/CANCELED", "canceled by the Databricks platform (e.g. its maximum run duration)"),
        failed("status/TERMINATED/SKIPPED", "never executed"),
        platform("status/TERMINATED/INTERNAL_ERROR", "unexpected Databricks error"),
        platform("status/TERMINATED/DRIVER_ERROR", "error communicating with the Spark driver"),
        platform("status/TERMINATED/CLUSTER_ERROR", "cluster error"),
        platform("status/TERMINATED/REPOSITORY_CHECKOUT_FAILED", "checking out the Git repository failed"),
        failed("status/TERMINATED/INVALID_CLUSTER_REQUEST", "invalid request to start the cluster"),
        limit("status/TERMINATED/WORKSPACE_RUN_LIMIT_EXCEEDED", "the workspace's limit of concurrent active runs"),
        failed("status/TERMINATED/FEATURE_DISABLED", "a feature unavailable in this workspace"),
        limit("status/TERMINATED/CLUSTER_REQUEST_LIMIT_EXCEEDED", "the rate limit of cluster requests"),
        failed("status/TERMINATED/STORAGE_ACCESS_ERROR", "error accessing the customer's blob storage"),
        failed("status/TERMINATED/RUN_EXECUTION_ERROR", "the task failed"),
        BackendState::new("status/TERMINATED/UNAUTHORIZED_ERROR", Phase::Failed)
            .meaning("permission denied on a resource")
            .user()
            .code(PERMISSION_DENIED),
        failed("status/TERMINATED/LIBRARY_INSTALLATION_ERROR", "installing a requested library failed"),
        limit("status/TERMINATED/MAX_CONCURRENT_RUNS_EXCEEDED", "the job's limit of concurrent runs"),
        limit("status/TERMINATED/MAX_SPARK_CONTEXTS_EXCEEDED", "the cluster's maximum of execution contexts"),
        failed("status/TERMINATED/RESOURCE_NOT_FOUND", "a resource the run needs does not exist"),
        failed("status/TERMINATED/INVALID_RUN_CONFIGURATION", "invalid run configuration"),
        platform("status/TERMINATED/CLOUD_FAILURE", "cloud provider failure"),
        limit("status/TERMINATED/MAX_JOB_QUEUE_SIZE_EXCEEDED", "the job's queue is full"),
        failed("status/TERMINATED/DISABLED", "disabled by a user"),
        platform("status/TERMINATED/BREAKING_CHANGE", "a breaking change in Spark; Databricks retries with a mitigation"),
        failed("status/TERMINATED/CLUSTER_TERMINATED_BY_USER", "the external cluster was terminated or restarted by a user"),
        failed("status/TERMINATED/BUDGET_POLICY_LIMIT_EXCEEDED", "the budget policy's limit is reached"),
        // A termination code this table does not know yet, classified by the type Databricks gives it
        // (TerminationTypeType); the code is kept in the message. SUCCESS of an unknown code stays unknown
        // (TERN-B001): success is never guessed.
        failed("status/TERMINATED/type/CLIENT_ERROR", "an unlisted termination code Databricks types as the user's error"),
        platform("status/TERMINATED/type/INTERNAL_ERROR", "an unlisted termination code Databricks types as its own error"),
        platform("status/TERMINATED/type/CLOUD_FAILURE", "an unlisted termination code Databricks types as a cloud failure"),
    ],
);

/// The deprecated `state` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct RunState {
    #[serde(default)]
    pub life_cycle_state: Option<String>,
    #[serde(default)]
    pub result_state: Option<String>,
    #[serde(default)]
    pub state_message: Option<String>,
}

/// The 2.2 `status` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct RunStatus {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub termination_details: Option<TerminationDetails>,
    #[serde(default)]
    pub queue_details: Option<QueueDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct TerminationDetails {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct QueueDetails {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The table name of what a run reports, and Databricks' own words about it.
pub fn state_name(state: Option<&RunState>, status: Option<&RunStatus>) -> (String, String) {
    let text = |o: &Option<String>| o.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if let Some(st) = status.filter(|s| s.state.as_deref().is_some_and(|x| !x.trim().is_empty())) {
        let lc = text(&st.state);
        if lc == "TERMINATED" {
            let details = st.termination_details.clone().unwrap_or_default();
            let code = text(&details.code);
            let kind = text(&details.kind);
            let mut name = if code.is_empty() { "status/TERMINATED".to_owned() } else { format!("status/TERMINATED/{code}") };
            let by_kind = format!("status/TERMINATED/type/{kind}");
            if !code.is_empty() && RUN_STATES.lookup(&name).is_none() && RUN_STATES.lookup(&by_kind).is_some() {
                name = by_kind;
            }
            let mut detail = text(&details.message);
            if name.ends_with(&format!("/type/{kind}")) {
                detail = if detail.is_empty() { format!("termination code {code}") } else { format!("termination code {code}: {detail}") };
            }
            if !kind.is_empty() && kind != "SUCCESS" {
                detail = if detail.is_empty() { format!("type {kind}") } else { format!("{detail} (type {kind})") };
            }
            return (name, detail);
        }
        let detail = st.queue_details.as_ref().map(|q| {
            let (c, m) = (text(&q.code), text(&q.message));
            [c, m].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ")
        });
        return (format!("status/{lc}"), detail.unwrap_or_default());
    }
    let Some(st) = state else { return (String::new(), String::new()) };
    let lc = text(&st.life_cycle_state);
    let name = if lc == "TERMINATED" {
        let result = text(&st.result_state);
        if result.is_empty() {
            "TERMINATED".to_owned()
        } else {
            format!("TERMINATED/{result}")
        }
    } else {
        lc
    };
    (name, text(&st.state_message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorOrigin;
    use tern_agent_api::testkit::{assert_state_cases, StateCase};

    fn v1(lc: &str, rs: Option<&str>) -> RunState {
        RunState { life_cycle_state: Some(lc.into()), result_state: rs.map(Into::into), state_message: Some("msg".into()) }
    }

    #[test]
    fn table_is_sound_and_covers_every_databricks_enum_value() {
        assert!(RUN_STATES.problems().is_empty(), "{:?}", RUN_STATES.problems());
        // RunLifeCycleState, RunResultState, RunLifecycleStateV2State, TerminationCodeCode
        // (databricks-sdk's jobs enums), every value:
        let life = ["BLOCKED", "INTERNAL_ERROR", "PENDING", "QUEUED", "RUNNING", "SKIPPED", "TERMINATING", "WAITING_FOR_RETRY"];
        let result = [
            "CANCELED", "DISABLED", "EXCLUDED", "FAILED", "MAXIMUM_CONCURRENT_RUNS_REACHED", "SUCCESS",
            "SUCCESS_WITH_FAILURES", "TIMEDOUT", "UPSTREAM_CANCELED", "UPSTREAM_FAILED",
        ];
        let v2 = ["BLOCKED", "PENDING", "QUEUED", "RUNNING", "TERMINATING", "WAITING"];
        let codes = [
            "BREAKING_CHANGE", "BUDGET_POLICY_LIMIT_EXCEEDED", "CANCELED", "CLOUD_FAILURE", "CLUSTER_ERROR",
            "CLUSTER_REQUEST_LIMIT_EXCEEDED", "DISABLED", "DRIVER_ERROR", "FEATURE_DISABLED", "INTERNAL_ERROR",
            "INVALID_CLUSTER_REQUEST", "INVALID_RUN_CONFIGURATION", "LIBRARY_INSTALLATION_ERROR",
            "MAX_CONCURRENT_RUNS_EXCEEDED", "MAX_JOB_QUEUE_SIZE_EXCEEDED", "MAX_SPARK_CONTEXTS_EXCEEDED",
            "REPOSITORY_CHECKOUT_FAILED", "RESOURCE_NOT_FOUND", "RUN_EXECUTION_ERROR", "SKIPPED", "STORAGE_ACCESS_ERROR",
            "SUCCESS", "SUCCESS_WITH_FAILURES", "UNAUTHORIZED_ERROR", "USER_CANCELED", "WORKSPACE_RUN_LIMIT_EXCEEDED",
            "CLUSTER_TERMINATED_BY_USER",
        ];
        let names: Vec<String> = life
            .iter()
            .map(|s| s.to_string())
            .chain(result.iter().map(|r| format!("TERMINATED/{r}")))
            .chain(v2.iter().map(|s| format!("status/{s}")))
            .chain(codes.iter().map(|c| format!("status/TERMINATED/{c}")))
            // TerminationTypeType, for codes newer than this table (SUCCESS is never guessed)
            .chain(["CLIENT_ERROR", "INTERNAL_ERROR", "CLOUD_FAILURE"].iter().map(|t| format!("status/TERMINATED/type/{t}")))
            .collect();
        for n in &names {
            assert!(RUN_STATES.lookup(n).is_some(), "{n} is not mapped");
        }
        assert_eq!(RUN_STATES.len(), names.len(), "no state beyond Databricks' own");
    }

    /// Table-driven: what each kind of answer becomes.
    #[test]
    fn phases_origins_and_codes() {
        let cases: &[StateCase] = &[
            ("PENDING", Phase::Initializing, None),
            ("QUEUED", Phase::WaitingForResources, None),
            ("BLOCKED", Phase::Queued, None),
            ("WAITING_FOR_RETRY", Phase::Running, None),
            ("TERMINATING", Phase::Running, None),
            ("SKIPPED", Phase::Failed, Some((RUN_FAILED, ErrorOrigin::User))),
            ("INTERNAL_ERROR", Phase::RetryableFailed, Some((PLATFORM_FAILURE, ErrorOrigin::System))),
            ("TERMINATED/SUCCESS", Phase::Succeeded, None),
            ("TERMINATED/FAILED", Phase::Failed, Some((RUN_FAILED, ErrorOrigin::User))),
            ("TERMINATED/CANCELED", Phase::Aborted, None),
            ("TERMINATED/MAXIMUM_CONCURRENT_RUNS_REACHED", Phase::RetryableFailed, Some((LIMIT_REACHED, ErrorOrigin::System))),
            ("status/TERMINATED/USER_CANCELED", Phase::Aborted, None),
            ("status/TERMINATED/RUN_EXECUTION_ERROR", Phase::Failed, Some((RUN_FAILED, ErrorOrigin::User))),
            ("status/TERMINATED/CLOUD_FAILURE", Phase::RetryableFailed, Some((PLATFORM_FAILURE, ErrorOrigin::System))),
            ("status/TERMINATED/UNAUTHORIZED_ERROR", Phase::Failed, Some((PERMISSION_DENIED, ErrorOrigin::User))),
        ];
        assert_state_cases(&RUN_STATES, cases, &["TERMINATED", "status/TERMINATED", "RESUMING", "TERMINATED/NEW_RESULT"]);
    }

    #[test]
    fn names_from_answers_prefer_the_2_2_status() {
        assert_eq!(state_name(Some(&v1("RUNNING", None)), None), ("RUNNING".into(), "msg".into()));
        assert_eq!(state_name(Some(&v1("TERMINATED", Some("FAILED"))), None).0, "TERMINATED/FAILED");
        assert_eq!(state_name(Some(&v1("TERMINATED", None)), None).0, "TERMINATED");
        let status = RunStatus {
            state: Some("TERMINATED".into()),
            termination_details: Some(TerminationDetails {
                code: Some("DRIVER_ERROR".into()),
                kind: Some("INTERNAL_ERROR".into()),
                message: Some("lost".into()),
            }),
            queue_details: None,
        };
        assert_eq!(
            state_name(Some(&v1("TERMINATED", Some("FAILED"))), Some(&status)),
            ("status/TERMINATED/DRIVER_ERROR".into(), "lost (type INTERNAL_ERROR)".into())
        );
        let queued = RunStatus {
            state: Some("QUEUED".into()),
            queue_details: Some(QueueDetails { code: Some("ACTIVE_RUNS_LIMIT_REACHED".into()), message: None }),
            ..Default::default()
        };
        assert_eq!(state_name(None, Some(&queued)), ("status/QUEUED".into(), "ACTIVE_RUNS_LIMIT_REACHED".into()));
        assert_eq!(state_name(Some(&v1("PENDING", None)), Some(&RunStatus::default())).0, "PENDING", "an empty status falls back");
        // A termination code newer than the table: classified by its type, the code kept in the message.
        let newer = |kind: &str| RunStatus {
            state: Some("TERMINATED".into()),
            termination_details: Some(TerminationDetails {
                code: Some("QUOTA_OF_THE_FUTURE".into()),
                kind: Some(kind.into()),
                message: Some("m".into()),
            }),
            queue_details: None,
        };
        let (name, detail) = state_name(None, Some(&newer("CLIENT_ERROR")));
        assert_eq!((name.as_str(), detail.as_str()), ("status/TERMINATED/type/CLIENT_ERROR", "termination code QUOTA_OF_THE_FUTURE: m (type CLIENT_ERROR)"));
        let failed = RUN_STATES.classify_with(&name, &detail);
        assert_eq!(failed.phase, Phase::Failed);
        assert_eq!(failed.error.as_ref().map(|e| e.code.to_string()), Some(RUN_FAILED.to_owned()));
        let (name, _) = state_name(None, Some(&newer("CLOUD_FAILURE")));
        assert_eq!(RUN_STATES.classify_with(&name, "").phase, Phase::RetryableFailed);
        // An unknown code typed SUCCESS, or an unknown type, stays the explicit unknown state (TERN-B001).
        for kind in ["SUCCESS", "SOMETHING_NEW"] {
            let (name, _) = state_name(None, Some(&newer(kind)));
            assert_eq!(name, "status/TERMINATED/QUOTA_OF_THE_FUTURE");
            let unknown = RUN_STATES.classify_with(&name, "");
            assert_eq!(unknown.phase, Phase::RetryableFailed);
            assert_eq!(unknown.error.as_ref().map(|e| e.code.to_string()), Some("TERN-B001".to_owned()));
        }
        assert_eq!(state_name(None, None).0, "");
    }
}
