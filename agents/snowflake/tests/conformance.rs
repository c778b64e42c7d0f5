//! The Snowflake agent passes the agent conformance kit (`tern_agent_api::testkit`) against the
//! emulator (fakesnow + the test-side shim): jobs are counted AT the emulator (the asynchronous
//! submissions of the successful statement it received), and `drive_state` makes the emulator's
//! monitoring endpoint report each Snowflake status in turn.
#[allow(dead_code)]
mod support;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_snowflake::SnowflakeAgent;

#[tokio::test]
async fn snowflake_passes_the_conformance_kit() {
    let Some(emu) = support::start("snowflake_passes_the_conformance_kit").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let agent: Arc<dyn AsyncAgent> = Arc::new(SnowflakeAgent::new(emu.config()).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), support::services(store.path())));

    let case = support::conformance_case(Arc::new(emu)).async_agent(agent);
    testkit::run(client, case).await.assert_passes();
}
