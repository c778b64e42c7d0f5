//! The BigQuery agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against the BigQuery emulator: the "remote" run of `agents/bigquery/tests/conformance.rs`.
#![cfg(feature = "agent-bigquery")]
#[path = "../../agents/bigquery/tests/emulator/mod.rs"]
mod emulator;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_over_grpc() {
    let Some(emulator) = emulator::Emulator::start() else { return };
    let emulator = Arc::new(emulator);
    let store = tempfile::tempdir().unwrap();
    let toml = format!("[agents.bigquery]\nendpoint = \"{}\"\nauth = \"anonymous\"\n", emulator.root());
    let mut config = GatewayConfig::parse_with_env(&toml, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = store.path().to_owned();
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = gateway.built.registry.lookup(&TaskCategory::new(tern_agent_bigquery::TASK_TYPE, 0)).unwrap().clone();

    let case = emulator::conformance_case(emulator.clone()).agent(agent);
    let report = testkit::run(client, case).await;
    server.shutdown().await.unwrap();
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "backend_states"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}
