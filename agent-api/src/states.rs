//! Backend state tables: every state an agent's backend can report, mapped to a task
//! phase, with an explicit outcome for any state the table does not know.
//!
//! A backend (BigQuery, Snowflake, Databricks, AWS Batch, …) reports its own states as
//! text. An agent declares all of them once, in a [`StateTable`], and maps what the backend
//! says through [`StateTable::classify`] on every `get`. A state missing from the table —
//! a new backend release, a rare state nobody listed — becomes `RETRYABLE_FAILED` with
//! code `TERN-B001`, naming the state and the agent: never a panic, never `INTERNAL`, never
//! a task left `RUNNING` for ever (flytekit's `convert_to_flyte_phase` raises on such a
//! state, which propeller sees as `INTERNAL` until its failure budget runs out).
//!
//! ```
//! use tern_agent_api::states::{BackendState, StateTable};
//! use tern_agent_api::status::Phase;
//!
//! // The short form: state → phase.
//! static JOBS: StateTable = StateTable::new(
//!     "bigquery",
//!     &[("PENDING", Phase::Queued), ("RUNNING", Phase::Running), ("DONE", Phase::Succeeded)],
//! );
//! assert_eq!(JOBS.classify("RUNNING").phase, Phase::Running);
//! let unknown = JOBS.classify("PAUSED");
//! assert_eq!(unknown.phase, Phase::RetryableFailed);
//! assert!(unknown.message.contains("\"PAUSED\"") && unknown.message.contains("bigquery"));
//!
//! // With a meaning, an origin or a code per state.
//! static RUNS: StateTable = StateTable::detailed(
//!     "databricks",
//!     &[
//!         BackendState::new("QUEUED", Phase::Queued).meaning("waiting for a concurrency slot"),
//!         BackendState::new("INTERNAL_ERROR", Phase::RetryableFailed).system(),
//!         BackendState::new("FAILED", Phase::Failed).code("TERN-X001"),
//!     ],
//! );
//! assert_eq!(RUNS.classify("INTERNAL_ERROR").error.unwrap().code, "TERN-B002");
//! assert_eq!(RUNS.classify("FAILED").error.unwrap().code, "TERN-X001");
//! assert!(RUNS.problems().is_empty());
//! ```
use std::fmt;

use crate::error::{codes, AgentError, ErrorClass, ErrorOrigin, Retry};
use crate::status::{Phase, TaskStatus};

/// One state a backend reports, and what it means for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendState {
    /// The backend's own spelling (`"RUNNING"`, `"RESUMING_WAREHOUSE"`).
    pub name: &'static str,
    /// The phase reported for it. Never `UNDEFINED` (the conformance kit refuses that).
    pub phase: Phase,
    /// What the state means, added to the status message (may be empty).
    pub meaning: &'static str,
    /// For failure phases: who must act. Default: `FAILED` is the user's, `RETRYABLE_FAILED`
    /// the platform's.
    pub origin: Option<ErrorOrigin>,
    /// For failure phases: the error code (default `TERN-B002`).
    pub code: Option<&'static str>,
}

impl BackendState {
    pub const fn new(name: &'static str, phase: Phase) -> Self {
        Self { name, phase, meaning: "", origin: None, code: None }
    }

    pub const fn meaning(mut self, meaning: &'static str) -> Self {
        self.meaning = meaning;
        self
    }

    /// A failure the platform caused (a backend outage, a lost node).
    pub const fn system(mut self) -> Self {
        self.origin = Some(ErrorOrigin::System);
        self
    }

    /// A failure the task's author caused (bad query, failing code).
    pub const fn user(mut self) -> Self {
        self.origin = Some(ErrorOrigin::User);
        self
    }

    /// The error code a failure state is reported with (the agent's own, in `docs/errors.md`).
    pub const fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
}

#[derive(Debug, Clone, Copy)]
enum Entries {
    Pairs(&'static [(&'static str, Phase)]),
    States(&'static [BackendState]),
}

/// Every state one backend reports, mapped to a phase. Built in a `static`, so an agent
/// and its conformance test share the one table.
#[derive(Debug, Clone, Copy)]
pub struct StateTable {
    agent: &'static str,
    entries: Entries,
}

/// Text of the probe the conformance kit uses for "a state nobody declared".
pub const UNDECLARED_STATE_PROBE: &str = "TERN_CONFORMANCE_UNDECLARED_STATE";

impl StateTable {
    /// A table of `(state, phase)` pairs for `agent` (named in messages).
    pub const fn new(agent: &'static str, states: &'static [(&'static str, Phase)]) -> Self {
        Self { agent, entries: Entries::Pairs(states) }
    }

    /// A table whose states carry a meaning, origin or code.
    pub const fn detailed(agent: &'static str, states: &'static [BackendState]) -> Self {
        Self { agent, entries: Entries::States(states) }
    }

    /// The agent named in messages.
    pub fn agent(&self) -> &'static str {
        self.agent
    }

    /// The declared states, in declaration order.
    pub fn states(&self) -> impl Iterator<Item = BackendState> + '_ {
        let (pairs, states): (&[(&str, Phase)], &[BackendState]) = match self.entries {
            Entries::Pairs(p) => (p, &[]),
            Entries::States(s) => (&[], s),
        };
        pairs.iter().map(|&(name, phase)| BackendState::new(name, phase)).chain(states.iter().copied())
    }

    pub fn len(&self) -> usize {
        match self.entries {
            Entries::Pairs(p) => p.len(),
            Entries::States(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The declared state matching `state`: its exact spelling first, else ignoring ASCII
    /// case and surrounding whitespace (backends are not always consistent about either).
    pub fn lookup(&self, state: &str) -> Option<BackendState> {
        let trimmed = state.trim();
        self.states()
            .find(|s| s.name == state)
            .or_else(|| self.states().find(|s| s.name.trim().eq_ignore_ascii_case(trimmed)))
    }

    /// The phase `state` maps to; `None` for a state not in the table (or mapped to
    /// `UNDEFINED`, which is never reported).
    pub fn phase(&self, state: &str) -> Option<Phase> {
        self.lookup(state).map(|s| s.phase).filter(|p| *p != Phase::Undefined)
    }

    /// The status to report for `state`.
    pub fn classify(&self, state: &str) -> TaskStatus {
        self.classify_with(state, "")
    }

    /// The status to report for `state`, with the backend's own words (`detail`, e.g. its
    /// error message) added to the message.
    pub fn classify_with(&self, state: &str, detail: &str) -> TaskStatus {
        let Some(known) = self.lookup(state) else {
            return TaskStatus::failed(self.unknown_state(state, detail));
        };
        let mut message = format!("{}: {}", self.agent, known.name);
        if !known.meaning.is_empty() {
            message.push_str(&format!(" ({})", known.meaning));
        }
        if !detail.is_empty() {
            message.push_str(&format!(": {detail}"));
        }
        match known.phase {
            Phase::Undefined => TaskStatus::failed(self.unknown(
                format!("reported state {:?}, which its state table maps to UNDEFINED (never reported)", known.name),
                detail,
            )),
            Phase::Failed | Phase::RetryableFailed => {
                let retryable = known.phase == Phase::RetryableFailed;
                let origin = known.origin.unwrap_or(if retryable { ErrorOrigin::System } else { ErrorOrigin::User });
                let class = match origin {
                    ErrorOrigin::User => ErrorClass::FailedPrecondition,
                    ErrorOrigin::System => ErrorClass::Unavailable,
                };
                let retry = if retryable { Retry::Retryable } else { Retry::Permanent };
                TaskStatus::failed(AgentError::new(
                    known.code.unwrap_or(codes::BACKEND_FAILED),
                    message,
                    origin,
                    retry,
                    class,
                ))
            }
            Phase::Aborted => TaskStatus::aborted(message),
            phase => TaskStatus::with_phase(phase, message),
        }
    }

    /// The error for a state the table does not know: retryable, from the platform, code
    /// `TERN-B001`, naming the state, the agent and the states it knows.
    pub fn unknown_state(&self, state: &str, detail: &str) -> AgentError {
        let what = if state.trim().is_empty() {
            "reported no state".to_owned()
        } else {
            format!("reported state {:?}, which is not in its state table", truncated(state, 200))
        };
        self.unknown(what, detail)
    }

    fn unknown(&self, what: String, detail: &str) -> AgentError {
        let mut known: Vec<&str> = self.states().map(|s| s.name).collect();
        known.truncate(40);
        let mut message = format!(
            "the backend of agent {:?} {what} (known: {}); reported as a retryable failure instead of waiting on it",
            self.agent,
            known.join(", ")
        );
        if !detail.is_empty() {
            message.push_str(&format!(": {}", truncated(detail, 2000)));
        }
        AgentError::new(codes::UNKNOWN_BACKEND_STATE, message, ErrorOrigin::System, Retry::Retryable, ErrorClass::Unavailable)
    }

    /// What is wrong with the table itself: empty names, states mapped to `UNDEFINED`,
    /// states declared twice (compared ignoring ASCII case and surrounding whitespace).
    /// Empty when the table is sound.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let states: Vec<BackendState> = self.states().collect();
        for (i, s) in states.iter().enumerate() {
            if s.name.trim().is_empty() {
                problems.push(format!("state #{i} has an empty name"));
            }
            if s.phase == Phase::Undefined {
                problems.push(format!("state {:?} maps to UNDEFINED (propeller reads that as the deprecated `state`, a retryable failure)", s.name));
            }
            if let Some(first) = states[..i].iter().find(|o| o.name.trim().eq_ignore_ascii_case(s.name.trim())) {
                if first.phase == s.phase {
                    problems.push(format!("state {:?} is declared twice", s.name));
                } else {
                    problems.push(format!(
                        "state {:?} is declared twice with different phases ({} and {})",
                        s.name,
                        first.phase.as_str_name(),
                        s.phase.as_str_name()
                    ));
                }
            }
            if let Some(code) = s.code {
                if !matches!(s.phase, Phase::Failed | Phase::RetryableFailed) {
                    problems.push(format!("state {:?} has error code {code} but its phase {} is not a failure", s.name, s.phase.as_str_name()));
                }
            }
        }
        problems
    }
}

impl fmt::Display for StateTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "states of {}:", self.agent)?;
        for s in self.states() {
            write!(f, " {}→{}", s.name, s.phase.as_str_name())?;
        }
        Ok(())
    }
}

fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    static SNOWFLAKE: StateTable = StateTable::detailed(
        "snowflake",
        &[
            BackendState::new("QUEUED", Phase::Queued),
            BackendState::new("RESUMING_WAREHOUSE", Phase::WaitingForResources).meaning("the warehouse is resuming"),
            BackendState::new("RUNNING", Phase::Running),
            BackendState::new("SUCCESS", Phase::Succeeded),
            BackendState::new("FAILED_WITH_ERROR", Phase::Failed),
            BackendState::new("DISCONNECTED", Phase::RetryableFailed),
            BackendState::new("ABORTED", Phase::Aborted),
        ],
    );

    #[test]
    fn known_states_map_to_their_phase_with_a_message() {
        let s = SNOWFLAKE.classify("RESUMING_WAREHOUSE");
        assert_eq!(s.phase, Phase::WaitingForResources);
        assert_eq!(s.message, "snowflake: RESUMING_WAREHOUSE (the warehouse is resuming)");
        assert_eq!(SNOWFLAKE.classify(" running ").phase, Phase::Running, "case and whitespace are forgiven");
        assert_eq!(SNOWFLAKE.classify("ABORTED").phase, Phase::Aborted);
        assert_eq!(SNOWFLAKE.phase("SUCCESS"), Some(Phase::Succeeded));
    }

    #[test]
    fn failure_states_carry_a_classified_error() {
        let s = SNOWFLAKE.classify_with("FAILED_WITH_ERROR", "SQL compilation error");
        assert_eq!(s.phase, Phase::Failed);
        let e = s.error.unwrap();
        assert_eq!((e.code.as_ref(), e.origin, e.retry), (codes::BACKEND_FAILED, ErrorOrigin::User, Retry::Permanent));
        assert!(e.message.ends_with(": SQL compilation error"), "{}", e.message);
        let s = SNOWFLAKE.classify("DISCONNECTED");
        assert_eq!(s.phase, Phase::RetryableFailed);
        assert_eq!(s.error.unwrap().origin, ErrorOrigin::System);
    }

    #[test]
    fn unknown_and_missing_states_are_retryable_failures_naming_state_and_agent() {
        for state in ["BLOCKED", "", "   "] {
            let s = SNOWFLAKE.classify(state);
            assert_eq!(s.phase, Phase::RetryableFailed, "{state:?}");
            let e = s.error.unwrap();
            assert_eq!(e.code, codes::UNKNOWN_BACKEND_STATE);
            assert!(e.is_retryable());
            assert_ne!(e.grpc_code(), tonic::Code::Internal);
            assert!(e.message.contains("\"snowflake\""), "{}", e.message);
            assert!(e.message.contains("QUEUED, RESUMING_WAREHOUSE"), "{}", e.message);
        }
        assert!(SNOWFLAKE.classify("BLOCKED").message.contains("\"BLOCKED\""));
        assert!(SNOWFLAKE.classify("").message.contains("reported no state"));
        let huge = "X".repeat(100_000);
        assert!(SNOWFLAKE.classify(&huge).message.len() < 1_000);
    }

    #[test]
    fn problems_find_duplicates_undefined_and_empty_names() {
        assert!(SNOWFLAKE.problems().is_empty());
        static BAD: StateTable = StateTable::new(
            "bad",
            &[("A", Phase::Running), ("a", Phase::Succeeded), ("B", Phase::Undefined), ("", Phase::Queued), ("C", Phase::Queued), ("C", Phase::Queued)],
        );
        let p = BAD.problems().join("\n");
        assert!(p.contains("\"a\" is declared twice with different phases (RUNNING and SUCCEEDED)"), "{p}");
        assert!(p.contains("\"B\" maps to UNDEFINED"), "{p}");
        assert!(p.contains("empty name"), "{p}");
        assert!(p.contains("\"C\" is declared twice"), "{p}");
        // At run time a state mapped to UNDEFINED is never reported as such.
        assert_eq!(BAD.classify("B").phase, Phase::RetryableFailed);
        assert_eq!(BAD.phase("B"), None);
    }
}
