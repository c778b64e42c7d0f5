//! The Snowflake agent passes the agent conformance kit (`tern_agent_api::testkit`) against the
//! emulator (fakesnow + the test-side shim): jobs are counted AT the emulator (the asynchronous
//! submissions of the successful statement it received), and `drive_state` makes the emulator's
//! monitoring endpoint report each Snowflake status in turn.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_agent_snowflake::SnowflakeAgent;

const SUCCESS: &str = "SELECT ID, REGION FROM ORDERS ORDER BY ID";

#[tokio::test]
async fn snowflake_passes_the_conformance_kit() {
    let Some(emu) = support::start("snowflake_passes_the_conformance_kit").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let agent: Arc<dyn AsyncAgent> = Arc::new(SnowflakeAgent::new(emu.config()).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), support::services(store.path())));

    let emu = Arc::new(emu);
    let (counted, driven) = (emu.clone(), emu.clone());
    let case = Case::new(support::template(SUCCESS, &[], true), core::LiteralMap::default())
        // Snowflake rejects it: FAILED with TERN-F003 and Snowflake's code.
        .failing(support::template("SELECT NOPE FROM ORDERS", &[], false), core::LiteralMap::default())
        .count_jobs(move || {
            let emu = counted.clone();
            async move { emu.submissions(SUCCESS).await.len() as u64 }
        })
        .drive_state(move |state| {
            let emu = driven.clone();
            async move { emu.drive(Some(&state)).await }
        })
        .async_agent(agent)
        .poll_timeout(Duration::from_secs(30));
    testkit::run(client, case).await.assert_passes();
}
