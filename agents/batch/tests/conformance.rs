//! The AWS Batch agent passes the agent conformance kit (`tern_agent_api::testkit`) against
//! moto's server (Batch in its docker-less mode, with the peer's hooks): jobs are counted at
//! moto (`ListJobs`), the long-running job is terminated for real (`TerminateJob`), and every
//! declared state is driven through GetTask with the peer's drive file (moto itself only
//! produces SUCCEEDED, or FAILED for every job).
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_batch::BatchAgent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_passes_the_conformance_kit_against_moto() {
    let Some(peer) = support::start("batch_passes_the_conformance_kit_against_moto").await else { return };
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent: Arc<dyn AsyncAgent> = Arc::new(BatchAgent::new(peer.config(), &services));
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), services));

    let case = support::conformance_case(&peer).async_agent(agent);
    let report = testkit::run(client, case).await;
    peer.remote().drive(None);
    println!("{report:#?}");
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}
