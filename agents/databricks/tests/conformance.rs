//! The Databricks agent passes the agent conformance kit (`tern_agent_api::testkit`) against
//! the real emulator, minilake 1.9.0 (subprocess executor): jobs are counted at minilake
//! (`runs/list`), the long-running run is cancelled for real (`runs/cancel`; minilake ends it
//! `CANCELED` when its script exits), and every declared state is driven through GetTask with
//! the peer's test hook (minilake itself only produces PENDING/RUNNING/TERMINATED).
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_databricks::config::FileSource;
use tern_agent_databricks::{DatabricksAgent, DatabricksConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databricks_passes_the_conformance_kit_against_minilake() {
    let Some(minilake) = support::start("databricks_passes_the_conformance_kit_against_minilake").await else { return };
    let token = minilake.dir.path().join("token");
    std::fs::write(&token, "dapi-conformance-test\n").unwrap();

    let config = DatabricksConfig {
        host: Some(minilake.url.clone()),
        token: Some(format!("file:{}", token.display()).parse().unwrap()),
        python_file_source: FileSource::Workspace,
        ..Default::default()
    };
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent: Arc<dyn AsyncAgent> = Arc::new(DatabricksAgent::new(config, &services).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), services));

    let case = support::conformance_case(&minilake).await.async_agent(agent);
    let report = testkit::run(client, case).await;
    minilake.drive(None).await;
    println!("{report:#?}");
    report.assert_passes();
}
