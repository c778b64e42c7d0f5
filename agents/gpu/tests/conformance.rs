//! The GPU agent passes the agent conformance kit (`tern_agent_api::testkit`) on this host with an
//! injected inventory of four T4s: real supervised processes, jobs counted by what really ran, the
//! long-running task killed for real by DeleteTask.
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_gpu::GpuAgent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_passes_the_conformance_kit_with_an_injected_inventory() {
    let state = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let runs = state.path().join("runs.txt");
    let seen = state.path().join("devices.txt");
    let agent: Arc<dyn AsyncAgent> = Arc::new(GpuAgent::new(support::settings(state.path(), support::t4s(4))).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(store.path())));

    let case = support::conformance_case(&runs, &seen).async_agent(agent);
    let report = testkit::run(client, case).await;
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
    assert!(std::fs::read_to_string(&seen).unwrap().trim().starts_with("GPU-fake-"), "the command saw its device");
}
