//! Every status Snowflake reports for a query (`GET /monitoring/queries/{id}`, the connector's
//! `QueryStatus`), mapped to a task phase. flytekit's connector maps only RUNNING, SUCCESS and
//! the failures through `convert_to_flyte_phase` and raises on the rest (QUEUED,
//! RESUMING_WAREHOUSE, BLOCKED, …: a suspended warehouse resuming is a normal case).
use tern_agent_api::prelude::{BackendState, Phase, StateTable};

use crate::codes;

/// The connector's name for "the monitoring endpoint has no record of the query" (an empty
/// `queries` list): normal for a moment after an asynchronous submission.
pub const NO_DATA: &str = "NO_DATA";

/// Snowflake's query statuses (snowflake-connector-python `QueryStatus`, which mirrors the
/// server's `QueryDTO`; `QUEUED_REPARING_WAREHOUSE` is spelled as Snowflake spells it).
pub static QUERY_STATES: StateTable = StateTable::detailed(
    "snowflake",
    &[
        BackendState::new("QUEUED", Phase::Queued).meaning("waiting for the warehouse to run it"),
        BackendState::new("RESUMING_WAREHOUSE", Phase::WaitingForResources)
            .meaning("the warehouse is resuming from suspension"),
        BackendState::new("QUEUED_REPARING_WAREHOUSE", Phase::WaitingForResources)
            .meaning("queued while Snowflake repairs the warehouse"),
        BackendState::new("BLOCKED", Phase::WaitingForResources)
            .meaning("waiting for a lock another transaction holds"),
        BackendState::new(NO_DATA, Phase::Queued).meaning("Snowflake has no record of the query yet"),
        BackendState::new("RUNNING", Phase::Running),
        BackendState::new("RESTARTED", Phase::Running).meaning("Snowflake restarted the query after an internal failure"),
        BackendState::new("ABORTING", Phase::Running).meaning("the query is being cancelled"),
        BackendState::new("SUCCESS", Phase::Succeeded),
        BackendState::new("FAILED_WITH_ERROR", Phase::Failed).user().code(codes::QUERY_FAILED),
        BackendState::new("FAILED_WITH_INCIDENT", Phase::RetryableFailed)
            .meaning("Snowflake failed the query with an internal incident")
            .system()
            .code(codes::SNOWFLAKE_INCIDENT),
        BackendState::new("DISCONNECTED", Phase::RetryableFailed)
            .meaning("the session running the query was lost")
            .system()
            .code(codes::SNOWFLAKE_INCIDENT),
        BackendState::new("ABORTED", Phase::Aborted).meaning("the query was cancelled"),
    ],
);

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::{ErrorOrigin, Retry};
    use tern_agent_api::states::UNDECLARED_STATE_PROBE;

    /// The connector's `QueryStatus` members, every one of them (constants.py).
    const CONNECTOR_STATUSES: &[&str] = &[
        "RUNNING",
        "ABORTING",
        "SUCCESS",
        "FAILED_WITH_ERROR",
        "ABORTED",
        "QUEUED",
        "FAILED_WITH_INCIDENT",
        "DISCONNECTED",
        "RESUMING_WAREHOUSE",
        "QUEUED_REPARING_WAREHOUSE",
        "RESTARTED",
        "BLOCKED",
        "NO_DATA",
    ];

    #[test]
    fn every_snowflake_status_is_mapped_once() {
        assert!(QUERY_STATES.problems().is_empty(), "{:?}", QUERY_STATES.problems());
        assert_eq!(QUERY_STATES.len(), CONNECTOR_STATUSES.len());
        for s in CONNECTOR_STATUSES {
            assert!(QUERY_STATES.phase(s).is_some(), "{s} is not mapped");
        }
    }

    /// A state, its phase, and for failures the error's (code, origin, retry).
    type Expected = (&'static str, Phase, Option<(&'static str, ErrorOrigin, Retry)>);

    #[test]
    fn table_driven_phases() {
        let cases: &[Expected] = &[
            ("QUEUED", Phase::Queued, None),
            ("RESUMING_WAREHOUSE", Phase::WaitingForResources, None),
            ("QUEUED_REPARING_WAREHOUSE", Phase::WaitingForResources, None),
            ("BLOCKED", Phase::WaitingForResources, None),
            ("NO_DATA", Phase::Queued, None),
            ("RUNNING", Phase::Running, None),
            ("RESTARTED", Phase::Running, None),
            ("ABORTING", Phase::Running, None),
            ("SUCCESS", Phase::Succeeded, None),
            ("ABORTED", Phase::Aborted, None),
            ("FAILED_WITH_ERROR", Phase::Failed, Some((codes::QUERY_FAILED, ErrorOrigin::User, Retry::Permanent))),
            (
                "FAILED_WITH_INCIDENT",
                Phase::RetryableFailed,
                Some((codes::SNOWFLAKE_INCIDENT, ErrorOrigin::System, Retry::Retryable)),
            ),
            (
                "DISCONNECTED",
                Phase::RetryableFailed,
                Some((codes::SNOWFLAKE_INCIDENT, ErrorOrigin::System, Retry::Retryable)),
            ),
        ];
        for (state, phase, error) in cases {
            let status = QUERY_STATES.classify_with(state, "detail from Snowflake");
            assert_eq!(status.phase, *phase, "{state}");
            assert!(status.message.contains(state), "{state}: {}", status.message);
            match (error, &status.error) {
                (None, None) => {}
                (Some((code, origin, retry)), Some(e)) => {
                    assert_eq!((e.code.as_ref(), e.origin, e.retry), (*code, *origin, *retry), "{state}");
                    assert!(e.message.ends_with(": detail from Snowflake"), "{}", e.message);
                }
                (want, got) => panic!("{state}: error {want:?} expected, got {got:?}"),
            }
        }
    }

    #[test]
    fn an_unknown_status_is_a_retryable_failure_naming_it() {
        for state in ["SUSPENDED_BY_A_FUTURE_RELEASE", UNDECLARED_STATE_PROBE, ""] {
            let status = QUERY_STATES.classify(state);
            assert_eq!(status.phase, Phase::RetryableFailed);
            let e = status.error.unwrap();
            assert_eq!(e.code, tern_agent_api::error::codes::UNKNOWN_BACKEND_STATE);
            assert!(e.message.contains("snowflake") && e.message.contains(state), "{}", e.message);
        }
        // Snowflake's spelling varies in case in some responses: matched anyway.
        assert_eq!(QUERY_STATES.phase("running"), Some(Phase::Running));
    }
}
