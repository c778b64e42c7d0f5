//! The Snowflake agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against the emulator (fakesnow behind `tests/interop/peers/fakesnow_shim.py`): the "remote" run
//! of `agents/snowflake/tests/conformance.rs`. The agent is configured through `[agents.snowflake]`, the way a
//! deployment configures it (password as a `file:` reference, no history lookup: fakesnow has none).
#![cfg(feature = "agent-snowflake")]
#[allow(dead_code)]
#[path = "../../agents/snowflake/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowflake_over_grpc() {
    let Some(emu) = support::start("snowflake_over_grpc").await else { return };
    emu.seed().await;
    let password = emu.dir.path().join("password");
    std::fs::write(&password, format!("{}\n", support::PASSWORD)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let toml = format!(
        "[agents.snowflake]\nendpoint = \"{}\"\npassword = \"file:{}\"\nhistory_lookup = false\n",
        emu.url,
        password.display()
    );
    let mut config = GatewayConfig::parse_with_env(&toml, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = store.path().to_owned();
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = gateway.built.registry.lookup(&TaskCategory::new(tern_agent_snowflake::TASK_TYPE, 0)).unwrap().clone();

    let case = support::conformance_case(Arc::new(emu)).agent(agent);
    let report = testkit::run(client, case).await;
    server.shutdown().await.unwrap();
    report.assert_passes();
    // Nothing skipped: idempotency was counted at the emulator, states were driven there.
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
    // The password never crossed the wire in a message or a handle (the kit's answers are all it saw).
    let shown = format!("{report}");
    assert!(!shown.contains(support::PASSWORD), "{shown}");
}
