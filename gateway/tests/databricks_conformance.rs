//! The Databricks agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against minilake (`tests/interop/peers/minilake_peer.py`): the "remote" run of
//! `agents/databricks/tests/conformance.rs`. The agent is configured through `[agents.databricks]`, the way a
//! deployment configures it (token as a `file:` reference, the entrypoints from the workspace).
#![cfg(feature = "agent-databricks")]
#[allow(dead_code)]
#[path = "../../agents/databricks/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};

const TOKEN: &str = "dapi-conformance-over-grpc";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databricks_over_grpc() {
    let Some(minilake) = support::start("databricks_over_grpc").await else { return };
    let token = minilake.dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();

    let store = tempfile::tempdir().unwrap();
    let toml = format!(
        "[agents.databricks]\nhost = \"{}\"\ntoken = \"file:{}\"\npython_file_source = \"workspace\"\n",
        minilake.url,
        token.display()
    );
    // An empty environment: no DATABRICKS_* variable of the machine running the test leaks in.
    let mut config = GatewayConfig::parse_with_env(&toml, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = store.path().to_owned();
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = gateway.built.registry.lookup(&TaskCategory::new("databricks", 0)).unwrap().clone();

    let case = support::conformance_case(&minilake).await.agent(agent);
    let report = testkit::run(client, case).await;
    minilake.drive(None).await;
    server.shutdown().await.unwrap();
    report.assert_passes();
    // Nothing skipped: idempotency was counted at minilake, states were driven there.
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
    let shown = format!("{report}");
    assert!(!shown.contains(TOKEN), "{shown}");
}
