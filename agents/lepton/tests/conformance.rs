//! The Lepton agent passes the agent conformance kit (`tern_agent_api::testkit`) against the
//! test server implementing Lepton's REST shapes (tests/support/lepton_server.rs), with the
//! agent's real reqwest client on the path: deployments counted at the server, the
//! never-ready deployment deleted for real on DeleteTask, every declared state driven.
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_lepton::LeptonAgent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lepton_passes_the_conformance_kit_against_the_test_server() {
    let server = support::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = support::config(&server, dir.path());
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent: Arc<dyn AsyncAgent> = Arc::new(LeptonAgent::new(config, &services).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), services));

    let case = support::conformance_case(&server).async_agent(agent);
    let report = testkit::run(client, case).await;
    server.lepton.drive(None);
    println!("{report:#?}");
    report.assert_passes();
}
