//! What a conformance run found: one named result per check, and the report of all.
use std::fmt;

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Not applicable to this agent or case (the reason is in the notes).
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Passed => "PASS",
            Self::Failed => "FAIL",
            Self::Skipped => "SKIP",
        }
    }
}

/// The result of one check: what it did (notes, including which rule it applied) and
/// what it found wrong (failures). A check with any failure failed.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Stable name (one of [`super::checks::ALL`]).
    pub name: &'static str,
    /// What the check requires, in one line.
    pub title: &'static str,
    pub notes: Vec<String>,
    pub failures: Vec<String>,
    skipped: Option<String>,
}

impl CheckResult {
    pub(crate) fn new(name: &'static str, title: &'static str) -> Self {
        Self { name, title, notes: Vec::new(), failures: Vec::new(), skipped: None }
    }

    pub fn outcome(&self) -> Outcome {
        if !self.failures.is_empty() {
            Outcome::Failed
        } else if self.skipped.is_some() {
            Outcome::Skipped
        } else {
            Outcome::Passed
        }
    }

    /// Why the check did not apply, when it was skipped.
    pub fn skip_reason(&self) -> Option<&str> {
        self.skipped.as_deref()
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub(crate) fn fail(&mut self, failure: impl Into<String>) {
        self.failures.push(failure.into());
    }

    /// Records `failure` unless `ok`; returns `ok`.
    pub(crate) fn require(&mut self, ok: bool, failure: impl FnOnce() -> String) -> bool {
        if !ok {
            self.fail(failure());
        }
        ok
    }

    pub(crate) fn skip(mut self, reason: impl Into<String>) -> Self {
        self.skipped = Some(reason.into());
        self
    }
}

/// The results of every check of one conformance run.
#[derive(Debug, Clone)]
pub struct Report {
    /// `task_type (version N)` of the case.
    pub subject: String,
    /// Where the calls went (`AgentClient::describe`: `in-process`, `http://127.0.0.1:…`).
    pub target: String,
    pub results: Vec<CheckResult>,
}

impl Report {
    /// True when no check failed (skipped checks do not fail a run).
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.outcome() != Outcome::Failed)
    }

    /// The result of the check named `name`.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// The outcome of the check named `name` (`None` if it did not run).
    pub fn outcome(&self, name: &str) -> Option<Outcome> {
        self.check(name).map(CheckResult::outcome)
    }

    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| r.outcome() == Outcome::Failed)
    }

    /// Panics with the whole report when a check failed; prints it (visible with
    /// `--nocapture`) when all passed.
    #[track_caller]
    pub fn assert_passes(&self) {
        if !self.passed() {
            panic!("agent conformance failed\n{self}");
        }
        eprintln!("{self}");
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome() == outcome).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance of task type {} via {}: {} passed, {} failed, {} skipped",
            self.subject,
            self.target,
            self.count(Outcome::Passed),
            self.count(Outcome::Failed),
            self.count(Outcome::Skipped)
        )?;
        for r in &self.results {
            writeln!(f, "  {} {}: {}", r.outcome().label(), r.name, r.title)?;
            if let Some(reason) = &r.skipped {
                writeln!(f, "       skipped: {reason}")?;
            }
            for n in &r.notes {
                writeln!(f, "       - {n}")?;
            }
            for e in &r.failures {
                writeln!(f, "       ✗ {e}")?;
            }
        }
        Ok(())
    }
}
