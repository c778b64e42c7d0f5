//! The sleep agent passes the agent conformance kit (`tern_agent_api::testkit`).
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_type_transformers::LiteralMapBuilder;

fn template() -> core::TaskTemplate {
    core::TaskTemplate { r#type: tern_agent_sleep::TASK_TYPE.into(), ..Default::default() }
}

fn seconds(s: f64) -> core::LiteralMap {
    LiteralMapBuilder::new().with("duration", &s).unwrap().build()
}

#[tokio::test]
async fn sleep_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let agent = tern_agent_sleep::agent(&dir.path().join("state"));
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())));

    let case = Case::new(template(), seconds(0.05))
        .expect_outputs(core::LiteralMap::default())
        // A negative duration is refused at create (TERN-K002).
        .failing(template(), seconds(-1.0))
        .long_running(template(), seconds(600.0))
        .async_agent(agent)
        // The handle holds the key and the end time: any replica answers `get` from it alone.
        .self_describing_handles()
        .no_backend_states("sleep has no backend: the handle holds the time it ends")
        .poll_timeout(Duration::from_secs(10));
    testkit::run(client, case).await.assert_passes();
}
