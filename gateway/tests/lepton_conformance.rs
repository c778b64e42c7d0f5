//! The Lepton agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against the test server implementing Lepton's REST shapes
//! (`agents/lepton/tests/support/lepton_server.rs`): the "remote" run of `agents/lepton/tests/conformance.rs`,
//! plus a repeated CreateTask after the gateway restarted, counted at the server. The agent is configured
//! through `[agents.lepton]`, the way a deployment configures it (the token as a `file:` reference).
#![cfg(feature = "agent-lepton")]
#[allow(dead_code)]
#[path = "../../agents/lepton/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};

fn gateway_config(server: &support::Server, dir: &Path) -> GatewayConfig {
    let token = dir.join("lepton_token");
    std::fs::write(&token, format!("{}\n", support::TOKEN)).unwrap();
    let toml = format!(
        "[agents.lepton]\nworkspace_id = \"{}\"\ntoken = \"file:{}\"\napi_url = \"{}\"\n",
        support::WORKSPACE,
        token.display(),
        server.url
    );
    // An empty environment: no LEPTON_* variable of the machine running the test leaks in.
    let mut config = GatewayConfig::parse_with_env(&toml, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = dir.join("store");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lepton_over_grpc() {
    let peer = support::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = tern_gateway::Gateway::build(&gateway_config(&peer, dir.path()), Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = gateway.built.registry.lookup(&TaskCategory::new("lepton_endpoint_deployment_task", 0)).unwrap().clone();

    let case = support::conformance_case(&peer).agent(agent);
    let report = testkit::run(client, case).await;
    peer.lepton.drive(None);
    server.shutdown().await.unwrap();
    report.assert_passes();
    // Nothing skipped: idempotency was counted at the server, states were driven there.
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
    let shown = format!("{report}");
    assert!(!shown.contains(support::TOKEN), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_after_a_gateway_restart_does_not_start_a_second_job() {
    let peer = support::start().await;
    let dir = tempfile::tempdir().unwrap();
    let request = || admin::CreateTaskRequest {
        inputs: Some(Default::default()),
        template: Some(Box::new(support::deployment_template(serde_json::json!({"image": "tern/never-ready"})))),
        output_prefix: "runs/restart/n0/0".into(),
        task_execution_metadata: Some(support::execution("restart", "n0", 0)),
    };
    let mut names = Vec::new();
    for _ in 0..2 {
        // A fresh gateway each time: a restarted `tern serve` (no cache, no memory of the first create).
        let gateway = tern_gateway::Gateway::build(&gateway_config(&peer, dir.path()), Mode::Serve, Default::default()).unwrap();
        let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
        let client = GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap();
        let meta = client.create_task(request()).await.unwrap();
        let resource = client
            .get_task(admin::GetTaskRequest {
                resource_meta: meta.clone(),
                task_category: Some(admin::TaskCategory { name: "lepton_endpoint_deployment_task".into(), version: 0 }),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(resource.phase, core::task_execution::Phase::Initializing as i32, "{resource:?}");
        let info = resource.custom_info.as_ref().map(tern_type_transformers::render::struct_to_json).unwrap_or_default();
        names.push(info["endpoint_name"].as_str().unwrap_or_default().to_owned());
        server.shutdown().await.unwrap();
    }
    assert!(names[0].starts_with("tern-"), "{names:?}");
    assert_eq!(names[0], names[1], "the create after the restart attached to the first deployment");
    assert_eq!(peer.lepton.created(), 1, "one deployment at Lepton");
}
