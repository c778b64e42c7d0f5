//! Every state a BigQuery job reports, mapped to a task phase.
//!
//! A job's `status.state` is `PENDING`, `RUNNING` or `DONE` (REST reference, `JobStatus`). A `DONE`
//! job failed when it carries `status.errorResult`, whose `reason` says why. The table therefore
//! lists the three states and, for `DONE`, one entry per error reason, spelled `DONE:<reason>`
//! (the key [`state_key`] builds from a job's status). A reason missing from the table — a new one
//! BigQuery adds — is not in the table either, so it ends the task `RETRYABLE_FAILED` with
//! `TERN-B001` naming it, like an unknown state.
//!
//! `DONE:stopped` is a cancelled job (jobs.cancel, or a user in the console): `ABORTED`.
use tern_agent_api::prelude::{BackendState, Phase, StateTable};

use crate::codes::{ACCESS_DENIED, BACKEND, INVALID_QUERY, NOT_FOUND, QUERY_LIMIT, THROTTLED};

const fn user(reason: &'static str, code: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(reason, Phase::Failed).user().code(code).meaning(meaning)
}

const fn system(reason: &'static str, code: &'static str, meaning: &'static str) -> BackendState {
    BackendState::new(reason, Phase::RetryableFailed).system().code(code).meaning(meaning)
}

/// The states of a BigQuery job (see the module docs).
pub static JOB_STATES: StateTable = StateTable::detailed(
    "bigquery",
    &[
        BackendState::new("PENDING", Phase::Queued).meaning("the job is waiting for slots"),
        BackendState::new("RUNNING", Phase::Running),
        BackendState::new("DONE", Phase::Succeeded),
        BackendState::new("DONE:stopped", Phase::Aborted).meaning("the job was cancelled"),
        // The user's: fix the query, the table names, the permissions, the limits.
        user("DONE:invalidQuery", INVALID_QUERY, "the query is invalid"),
        user("DONE:invalid", INVALID_QUERY, "the job's configuration is invalid"),
        user("DONE:notFound", NOT_FOUND, "a table, dataset or project does not exist"),
        user("DONE:accessDenied", ACCESS_DENIED, "access denied"),
        user("DONE:billingNotEnabled", ACCESS_DENIED, "billing is not enabled for the project"),
        user("DONE:blocked", ACCESS_DENIED, "BigQuery blocked the request"),
        user("DONE:policyViolation", ACCESS_DENIED, "a policy forbids the request"),
        user("DONE:invalidUser", ACCESS_DENIED, "the user is invalid"),
        user("DONE:resourcesExceeded", QUERY_LIMIT, "the query used too many resources"),
        user("DONE:responseTooLarge", QUERY_LIMIT, "the result is too large"),
        user("DONE:billingTierLimitExceeded", QUERY_LIMIT, "the query exceeds the billing tier"),
        user("DONE:timeout", QUERY_LIMIT, "the job timed out"),
        user("DONE:notImplemented", QUERY_LIMIT, "the query uses something BigQuery does not implement"),
        user("DONE:duplicate", QUERY_LIMIT, "a resource the query creates already exists"),
        // BigQuery's: trying again can succeed.
        system("DONE:backendError", BACKEND, "BigQuery backend error"),
        system("DONE:internalError", BACKEND, "BigQuery internal error"),
        system("DONE:jobBackendError", BACKEND, "the job failed in BigQuery's backend"),
        system("DONE:jobInternalError", BACKEND, "the job failed inside BigQuery"),
        system("DONE:tableUnavailable", BACKEND, "a table is temporarily unavailable"),
        system("DONE:resourceInUse", BACKEND, "a resource is in use"),
        system("DONE:rateLimitExceeded", THROTTLED, "rate limit exceeded"),
        system("DONE:quotaExceeded", THROTTLED, "quota exceeded"),
    ],
);

/// The table key of a job status: its `state`, or `DONE:<reason>` for a job that ended with an
/// `errorResult`.
pub fn state_key(state: &str, error_reason: Option<&str>) -> String {
    match error_reason {
        Some(reason) => format!("{}:{}", state.trim(), reason.trim()),
        None => state.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;
    use tern_agent_api::prelude::{codes as api_codes, ErrorOrigin};

    #[test]
    fn the_table_is_sound_and_every_failure_reason_agrees_with_the_error_mapping() {
        assert!(JOB_STATES.problems().is_empty(), "{:?}", JOB_STATES.problems());
        for s in JOB_STATES.states() {
            let Some(reason) = s.name.strip_prefix("DONE:") else { continue };
            if reason == "stopped" {
                continue;
            }
            let (code, origin, retry) = codes::reason_class(reason).unwrap_or_else(|| panic!("{reason} unmapped"));
            assert_eq!(s.code, Some(code), "{reason}");
            assert_eq!(s.origin, Some(origin), "{reason}");
            let want = if retry == tern_agent_api::prelude::Retry::Retryable { Phase::RetryableFailed } else { Phase::Failed };
            assert_eq!(s.phase, want, "{reason}");
        }
    }

    #[test]
    fn table_driven_phases() {
        let cases: &[(&str, Option<&str>, Phase, Option<&str>)] = &[
            ("PENDING", None, Phase::Queued, None),
            ("RUNNING", None, Phase::Running, None),
            ("DONE", None, Phase::Succeeded, None),
            ("DONE", Some("stopped"), Phase::Aborted, None),
            ("DONE", Some("invalidQuery"), Phase::Failed, Some(codes::INVALID_QUERY)),
            ("DONE", Some("notFound"), Phase::Failed, Some(codes::NOT_FOUND)),
            ("DONE", Some("accessDenied"), Phase::Failed, Some(codes::ACCESS_DENIED)),
            ("DONE", Some("backendError"), Phase::RetryableFailed, Some(codes::BACKEND)),
            ("DONE", Some("internalError"), Phase::RetryableFailed, Some(codes::BACKEND)),
            ("DONE", Some("rateLimitExceeded"), Phase::RetryableFailed, Some(codes::THROTTLED)),
            ("DONE", Some("aBrandNewReason"), Phase::RetryableFailed, Some(api_codes::UNKNOWN_BACKEND_STATE)),
            ("PAUSED", None, Phase::RetryableFailed, Some(api_codes::UNKNOWN_BACKEND_STATE)),
            ("", None, Phase::RetryableFailed, Some(api_codes::UNKNOWN_BACKEND_STATE)),
        ];
        for (state, reason, phase, code) in cases {
            let key = state_key(state, *reason);
            let status = JOB_STATES.classify_with(&key, "detail from BigQuery");
            assert_eq!(status.phase, *phase, "{key}");
            assert_eq!(status.error.as_ref().map(|e| e.code.as_ref()), *code, "{key}");
            if let Some(e) = &status.error {
                assert_eq!(e.is_retryable(), *phase == Phase::RetryableFailed, "{key}");
                if e.code == api_codes::UNKNOWN_BACKEND_STATE {
                    assert_eq!(e.origin, ErrorOrigin::System);
                    assert!(status.message.contains(&format!("{key:?}")) || key.is_empty(), "{}", status.message);
                }
            }
        }
    }
}
