//! The BigQuery agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against the BigQuery emulator: the "remote" run of `agents/bigquery/tests/conformance.rs`.
#![cfg(feature = "agent-bigquery")]
#[path = "../../agents/bigquery/tests/emulator/mod.rs"]
mod emulator;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_gateway::{GatewayConfig, Mode};
use tern_type_transformers::structs::json_to_struct;
use tern_type_transformers::{FlyteType, LiteralMapBuilder, StructuredDataset};

const PROJECT: &str = "tern-conformance-grpc";

fn template(sql: &str, with_inputs: bool) -> core::TaskTemplate {
    let var = |t: core::LiteralType| core::Variable { r#type: Some(t), ..Default::default() };
    let inputs = with_inputs
        .then(|| core::VariableMap { variables: [("n".to_owned(), var(i64::literal_type()))].into() });
    let outputs = core::VariableMap {
        variables: [("results".to_owned(), var(StructuredDataset::literal_type_for(&[], "")))].into(),
    };
    let custom = serde_json::json!({"ProjectID": PROJECT, "Location": "US", "Domain": "development"});
    core::TaskTemplate {
        r#type: tern_agent_bigquery::TASK_TYPE.into(),
        interface: Some(core::TypedInterface { inputs, outputs: Some(outputs) }),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
        ..Default::default()
    }
}

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

    let (counter, driver) = (emulator.clone(), emulator.clone());
    let case = Case::new(template("SELECT @n + 1 AS answer", true), LiteralMapBuilder::new().with("n", &41i64).unwrap().build())
        .failing(template("SELECT nope FROM", false), core::LiteralMap::default())
        .long_running(template("SELECT 1 AS one /* TERN_HOLD */", false), core::LiteralMap::default())
        .count_jobs(move || {
            let e = counter.clone();
            async move { e.count_jobs(PROJECT).await }
        })
        .drive_state(move |state| {
            let e = driver.clone();
            async move { e.drive(Some(&state)).await }
        })
        .agent(agent)
        .poll_timeout(Duration::from_secs(30));
    let report = testkit::run(client, case).await;
    server.shutdown().await.unwrap();
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "backend_states"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}
