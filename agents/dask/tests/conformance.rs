//! The Dask agent passes the agent conformance kit (`tern_agent_api::testkit`) with real `distributed`:
//! every task gets its ephemeral local cluster (scheduler + worker processes), jobs are counted by what
//! really ran (the successful task appends a line to a file after computing on its cluster), and the
//! long-running task is killed for real by DeleteTask. The job states are the agent's own (its records and
//! the process table): the table is checked, not driven end to end (tests/dask.rs produces the states for
//! real: EXITED_0, EXITED_N, KILLED, LOST, CLUSTER_FAILED, RUNNING).
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_dask::DaskAgent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dask_passes_the_conformance_kit_with_local_clusters() {
    let Some(python) = support::python("dask_passes_the_conformance_kit_with_local_clusters") else { return };
    let state = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let runs = state.path().join("runs.txt");
    let agent: Arc<dyn AsyncAgent> = Arc::new(DaskAgent::new(support::settings(&python, state.path(), None)).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(store.path())));

    let case = support::conformance_case(&python, &runs).async_agent(agent);
    let report = testkit::run(client, case).await;
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}
