//! The Ray agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against a real Ray head the test starts: the "remote" run of
//! `agents/ray/tests/conformance.rs`. The agent is configured through `[agents.ray]`, the way a
//! deployment configures it (the address as `RAY_ADDRESS`, a bearer token as a `file:` reference),
//! and the head is a secured one (Ray's token authentication): every call must carry the token.
#![cfg(feature = "agent-ray")]
#[allow(dead_code)]
#[path = "../../agents/ray/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};

const TOKEN: &str = "ray-conformance-over-grpc";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ray_over_grpc() {
    let Some(head) = support::start_secured("ray_over_grpc", Some(TOKEN)).await else { return };
    let token = head.dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();

    let store = tempfile::tempdir().unwrap();
    let toml = format!("[agents.ray]\ntoken = \"file:{}\"\n", token.display());
    // Only RAY_ADDRESS: no other variable of the machine running the test leaks in.
    // The agent talks to the head through the test's pass-through, which drives states the head cannot report.
    let proxy = support::Proxy::start(&head.url).await;
    let env: BTreeMap<String, String> = [("RAY_ADDRESS".to_owned(), proxy.url.clone())].into();
    let mut config = GatewayConfig::parse_with_env(&toml, Some(Path::new("tern.toml")), Arc::new(env)).unwrap();
    config.data_store.root = store.path().to_owned();
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = gateway.built.registry.lookup(&TaskCategory::new("ray", 0)).unwrap().clone();

    let case = support::conformance_case(&head, &proxy).agent(agent);
    let report = testkit::run(client, case).await;
    *proxy.driver().lock().unwrap() = None;
    server.shutdown().await.unwrap();
    report.assert_passes();
    // Nothing skipped: idempotency was counted at the head, states were driven end to end.
    let skipped: Vec<&str> = ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"]
        .into_iter()
        .filter(|check| report.outcome(check) != Some(testkit::Outcome::Passed))
        .collect();
    assert!(skipped.is_empty(), "not passed: {skipped:?}\n{report}");
    assert!(!format!("{report}").contains(TOKEN), "the token never shows\n{report}");

    // Without the token, or with another one, the secured head refuses: a permanent user error, nothing started.
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let ctx = services.task_context("", None, None);
    let wrong = head.dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let before = head.jobs().await.len();
    for token in [None, Some(format!("file:{}", wrong.display()).parse().unwrap())] {
        let config = tern_agent_ray::RayConfig { address: Some(head.url.clone()), token, ..Default::default() };
        let agent = tern_agent_ray::RayAgent::new(config, &services).unwrap();
        let task = TaskRequest { template: Box::new(support::conformance_template(support::OK_PY)), inputs: Default::default() };
        let e = agent.create(&ctx, task).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.is_retryable()), (tern_agent_ray::codes::PERMISSION_DENIED, false), "{e}");
        assert!(!e.message.contains("not-the-token"), "{e}");
    }
    assert_eq!(head.jobs().await.len(), before);
}
