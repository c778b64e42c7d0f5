//! The webhook agent (sync) passes the agent conformance kit (`tern_agent_api::testkit`),
//! calling a real local HTTP server.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{HttpSink, OK_BODY};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_type_transformers::render::json_to_struct;
use tern_type_transformers::{FlyteType, JsonDict};

fn template(url: &str) -> core::TaskTemplate {
    let custom = json!({"url": url, "method": "GET", "headers": {}, "data": {}, "show_data": false, "show_url": false, "timeout_sec": 10});
    let info = core::Variable { r#type: Some(JsonDict::literal_type()), ..Default::default() };
    core::TaskTemplate {
        r#type: tern_agent_webhook::TASK_TYPE.into(),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("info".to_owned(), info)].into() }),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn webhook_passes_the_conformance_kit() {
    let sink = HttpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = tern_agent_webhook::agent();
    let mut registry = AgentRegistry::new();
    registry.register_sync(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())));

    let info = json!({"status_code": 200, "response_data": OK_BODY});
    let expected = core::LiteralMap {
        literals: [("info".to_owned(), JsonDict(info.as_object().unwrap().clone()).to_literal().unwrap())].into(),
    };
    let sink = Arc::new(sink);
    let counted = sink.clone();
    let case = Case::new(template(&format!("{}/ok", sink.url)), core::LiteralMap::default())
        .expect_outputs(expected)
        // HTTP 500: FAILED with TERN-W004.
        .failing(template(&format!("{}/fail", sink.url)), core::LiteralMap::default())
        .sync_agent(agent)
        // One ExecuteTaskSync, one request at the endpoint.
        .count_jobs(move || {
            let n = counted.requests().len() as u64;
            async move { n }
        })
        .settle(Duration::from_millis(50))
        .no_backend_states("a webhook call has no states: the HTTP status is the whole answer");
    testkit::run(client, case).await.assert_passes();
    assert!(!sink.requests().is_empty(), "the endpoint was called");
}
