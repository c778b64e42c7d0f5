//! The agent conformance kit (cargo feature `testkit`): the protocol guarantees every
//! agent must keep, checked through an [`AgentClient`], so the same checks run against an
//! agent in this process ([`InProcessClient`](crate::dispatch::InProcessClient)), a plugin,
//! or a remote server ([`GrpcAgentClient`](crate::grpc_client::GrpcAgentClient)).
//!
//! **Every agent runs it — in-tree, plugin or remote — and every later agent must**, in its
//! crate's tests (`tests/conformance.rs`), with
//! `tern-agent-api = { workspace = true, features = ["testkit"] }` in `[dev-dependencies]`.
//! An agent with a backend gives the kit its emulator: [`Case::count_jobs`] and
//! [`Case::drive_state`]. `docs/architecture.md` ("Agent conformance kit") has the details.
//!
//! | check | requires |
//! |---|---|
//! | `agent_metadata` | ListAgents/GetAgent name one agent for the task category, in its mode |
//! | `idempotent_create` | CreateTask repeated with one `task_execution_id` (two at once, one after) is one job — counted at the backend with [`Case::count_jobs`], else identical handles, else deleting through one handle must abort the [`Case::long_running`] job behind the other, else (weakest, said so) the same terminal result; retry attempt 1 is another job |
//! | `bad_resource_meta` | GetTask/DeleteTask with garbled handles (empty, random bytes, not JSON, wrong JSON shape, `{"v":99}`, 100 000-deep nesting, 1 MiB, variations of a real handle) → `INVALID_ARGUMENT`/`NOT_FOUND` with a message; a well-formed handle of a job nobody created → that, or a terminal failure; never a panic (`TERN-A012`), `INTERNAL`/`UNKNOWN`, or a job that looks alive |
//! | `delete_idempotent` | DeleteTask twice on a running job (→ `ABORTED`), on a finished one (→ stays finished), and once more after → OK every time |
//! | `outputs_match_interface` | the successful task SUCCEEDS with outputs passing [`check_outputs`](crate::outputs::check_outputs) (and equal to [`Case::expect_outputs`]) |
//! | `failure_reported` | the [`Case::failing`] task ends `FAILED`/`RETRYABLE_FAILED` with a message (or is refused cleanly at create) |
//! | `execution_mode` | sync: ExecuteTaskSync is terminal (and reaches the backend once, when jobs are counted) and the async API is refused as the wrong mode (`TERN-A007`); async: ExecuteTaskSync is refused |
//! | `unknown_task_type` | an unknown task type or version is `NOT_FOUND` naming it |
//! | `backend_states` | the agent's [`StateTable`](crate::states::StateTable) maps every state to a defined phase, once, and an undeclared state is `RETRYABLE_FAILED` `TERN-B001`; with [`Case::drive_state`], end to end through GetTask |
//!
//! Each check is a named [`CheckResult`] (passed, failed, or skipped with the reason);
//! [`Report::assert_passes`] fails the test on any failure, printing every finding.
//!
//! ```
//! use std::sync::Arc;
//! use tern_agent_api::prelude::*;
//! use tern_agent_api::testkit::{self, Case};
//!
//! /// A sync agent answering every task at once.
//! struct Noop;
//!
//! #[async_trait::async_trait]
//! impl SyncAgent for Noop {
//!     fn name(&self) -> &str { "noop" }
//!     fn task_categories(&self) -> Vec<TaskCategory> { vec![TaskCategory::new("noop", 0)] }
//!     async fn execute(&self, _ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
//!         Ok(TaskStatus::succeeded(None))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let agent: Arc<dyn SyncAgent> = Arc::new(Noop);
//! let mut registry = AgentRegistry::new();
//! registry.register_sync(agent.clone()).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())));
//!
//! let template = core::TaskTemplate { r#type: "noop".into(), ..Default::default() };
//! let case = Case::new(template, core::LiteralMap::default())
//!     .sync_agent(agent)
//!     .no_backend_states("answers in-process, no backend");
//! testkit::run(client, case).await.assert_passes();
//! # });
//! ```
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use crate::client::AgentClient;

pub mod case;
pub mod checks;
mod probes;
pub mod report;
mod session;
pub mod table;

pub use case::{Case, TaskSpec};
pub use report::{CheckResult, Outcome, Report};
pub use table::{assert_state_cases, StateCase};

use session::Session;

/// Runs every check of [`checks::ALL`] on the agent serving `case`'s task type through
/// `client`, one after another. Never panics on the agent's behalf: a panic, a hang
/// (beyond a budget derived from [`Case::poll_timeout`]) or a bad answer is a failed check.
pub async fn run(client: Arc<dyn AgentClient>, case: Case) -> Report {
    let category = case.category();
    let subject = category.to_string();
    let target = client.describe();
    if category.name.is_empty() {
        let mut r = CheckResult::new("case", "the case names the task type under test");
        r.fail("the successful task's template has an empty `type`");
        return Report { subject, target, results: vec![r] };
    }
    let budget = case.check_timeout.unwrap_or(case.poll_timeout * 8 + Duration::from_secs(60));
    let mut session = Session { client, case, category: category.to_proto(), run: session::run_id(), is_sync: false };
    let mut results = Vec::new();

    let mut listed_sync = None;
    results.push(guarded(checks::AGENT_METADATA, budget, checks::agent_metadata(&session, &mut listed_sync)).await);
    session.is_sync = listed_sync.or(session.case.agent.as_ref().map(|a| a.is_sync())).unwrap_or(false);

    let s = &session;
    results.push(guarded(checks::IDEMPOTENT_CREATE, budget, checks::idempotent_create(s)).await);
    results.push(guarded(checks::BAD_RESOURCE_META, budget, checks::bad_resource_meta(s)).await);
    results.push(guarded(checks::DELETE_IDEMPOTENT, budget, checks::delete_idempotent(s)).await);
    results.push(guarded(checks::OUTPUTS_MATCH_INTERFACE, budget, checks::outputs_match_interface(s)).await);
    results.push(guarded(checks::FAILURE_REPORTED, budget, checks::failure_reported(s)).await);
    results.push(guarded(checks::EXECUTION_MODE, budget, checks::execution_mode(s)).await);
    results.push(guarded(checks::UNKNOWN_TASK_TYPE, budget, checks::unknown_task_type(s)).await);
    let states_budget = match s.case.check_timeout {
        Some(t) => t,
        None => budget + s.case.poll_timeout * 4,
    };
    results.push(guarded(checks::BACKEND_STATES, states_budget, checks::backend_states(s)).await);
    Report { subject, target, results }
}

/// One check, with a time budget, a panic (of a client, a hook, or the kit) turned
/// into a failure.
async fn guarded(name: &'static str, budget: Duration, check: impl Future<Output = CheckResult>) -> CheckResult {
    let failed = |why: String| {
        let mut r = CheckResult::new(name, checks::title(name));
        r.fail(why);
        r
    };
    match tokio::time::timeout(budget, AssertUnwindSafe(check).catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            failed(format!("the check panicked (outside the agent's panic guard): {what}"))
        }
        Err(_) => failed(format!("the check did not finish within {budget:?} (a call hangs?)")),
    }
}
