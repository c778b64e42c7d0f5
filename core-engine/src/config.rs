//! Engine configuration, as types.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::datastore::{DataStore, LocalDataStore};

use crate::router::AgentRouter;
use crate::store::StateLocation;

/// Exponential backoff with jitter: `initial`, times `factor` per step, capped at `max`.
/// Each wait is drawn uniformly from `[d/2, d]` ("equal jitter"), so many nodes that fail
/// (or poll) together spread out instead of hitting the agent in lockstep.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: u32,
    pub max: Duration,
}

impl Backoff {
    /// The un-jittered delay before step `n` (0-based).
    pub fn nominal(&self, n: u32) -> Duration {
        let mut d = self.initial;
        for _ in 0..n.min(64) {
            d = d.saturating_mul(self.factor.max(1));
            if d >= self.max {
                return self.max;
            }
        }
        d.min(self.max)
    }

    /// The delay before step `n`, jittered.
    pub fn delay(&self, n: u32) -> Duration {
        jitter(self.nominal(n))
    }
}

pub(crate) fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(fastrand::f64())
}

/// How GetTask is polled for an async task, and how long the engine keeps trying to
/// reach an agent about a job that may be alive. The first GetTask is sent right after
/// CreateTask.
///
/// A job the engine cannot reach is never abandoned silently: polling goes on through an
/// agent outage (bounded only by the node's deadline), and a job being given up is
/// deleted first. Only when DeleteTask (or the re-issued CreateTask that finds the handle
/// of a create that timed out) cannot be confirmed within `confirm_for` does the node fail
/// permanently, naming the job, rather than start a second one.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    pub initial: Duration,
    pub factor: u32,
    pub max: Duration,
    /// How long a DeleteTask, or a re-issued CreateTask, is retried while the agent does
    /// not answer.
    pub confirm_for: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            factor: 2,
            max: Duration::from_secs(5),
            confirm_for: Duration::from_secs(300),
        }
    }
}

impl PollConfig {
    pub(crate) fn next(&self, current: Duration) -> Duration {
        current.saturating_mul(self.factor.max(1)).min(self.max)
    }

    pub(crate) fn backoff(&self) -> Backoff {
        Backoff { initial: self.initial, factor: self.factor, max: self.max }
    }
}

/// Flyte's retry semantics: user failures (the task's own errors, timeouts of an attempt)
/// spend the task's `retries`; system failures (agent unreachable, infrastructure) spend a
/// separate budget, `system_retries`, like propeller's `max-node-retries-system-failures`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub system_retries: u32,
    /// Wait between attempts.
    pub backoff: Backoff,
    /// An interruptible task runs interruptible until this many system failures; later
    /// attempts run on non-interruptible capacity (propeller's
    /// `interruptible-failure-threshold`). `None`: the last system retry only.
    pub interruptible_failure_threshold: Option<u32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            system_retries: 3,
            backoff: Backoff { initial: Duration::from_millis(200), factor: 2, max: Duration::from_secs(30) },
            interruptible_failure_threshold: None,
        }
    }
}

/// Everything [`crate::Engine::open`] needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where executions are recorded: a directory holding `tern.db` (SQLite, created if
    /// missing) or a PostgreSQL database.
    pub state: StateLocation,
    /// Where node inputs/outputs are written.
    pub data_store: Arc<dyn DataStore>,
    /// URI prefix in `data_store` for execution data: node attempts write under
    /// `<data_root>/<execution id>/<node id>/<attempt>`.
    pub data_root: String,
    pub router: AgentRouter,
    /// Nodes running at once (at least 1).
    pub max_parallel: usize,
    pub poll: PollConfig,
    pub retry: RetryConfig,
    /// How long the execution lease lasts unrenewed: the process driving an execution
    /// renews it every third of this; another process may take over an execution whose
    /// driver has not renewed it for this long (it crashed or hangs).
    pub lease_ttl: Duration,
}

impl EngineConfig {
    /// SQLite state in `state_dir`. Defaults: data in a local directory `<state_dir>/data`,
    /// 8 parallel nodes, default polling and retries.
    pub fn new(state_dir: impl Into<PathBuf>, router: AgentRouter) -> Self {
        Self::at(StateLocation::Sqlite(state_dir.into()), router)
    }

    /// State at `state`; data in [`default_data_dir`] of it.
    pub fn at(state: StateLocation, router: AgentRouter) -> Self {
        let store = LocalDataStore::new(default_data_dir(&state));
        let data_root = store.canonical_uri("");
        Self {
            state,
            data_store: Arc::new(store),
            data_root,
            router,
            max_parallel: 8,
            poll: PollConfig::default(),
            retry: RetryConfig::default(),
            lease_ttl: Duration::from_secs(15),
        }
    }
}

/// Where node inputs and outputs go when nothing else is configured: `<state dir>/data`
/// next to a SQLite state, `.tern/data` (relative to the working directory) with a
/// PostgreSQL state, the same place the default state directory would put them.
pub fn default_data_dir(state: &StateLocation) -> PathBuf {
    match state.local_dir() {
        Some(dir) => dir.join("data"),
        None => PathBuf::from(".tern").join("data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let b = Backoff { initial: Duration::from_millis(100), factor: 2, max: Duration::from_secs(1) };
        let nominal: Vec<u128> = (0..6).map(|n| b.nominal(n).as_millis()).collect();
        assert_eq!(nominal, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(1));
        for n in 0..6 {
            let d = b.delay(n);
            assert!(d >= b.nominal(n) / 2 && d <= b.nominal(n), "{d:?} for step {n}");
        }
    }
}
