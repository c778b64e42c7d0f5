//! The AWS Batch agent's conformance case over real gRPC, as `tern serve` hosts it (router,
//! owner-tagged handles), against moto (`tests/interop/peers/moto_batch_peer.py`): the "remote" run
//! of `agents/batch/tests/conformance.rs`, plus a repeated CreateTask after the gateway restarted,
//! counted at moto. The agent is configured through `[agents.batch]`, the way a deployment configures
//! it (credentials as `file:` references).
#![cfg(feature = "agent-batch")]
#[allow(dead_code)]
#[path = "../../agents/batch/tests/support/mod.rs"]
mod support;
#[path = "support/mod.rs"]
mod gateway_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};

const SECRET: &str = "tern-secret-access-key-value";

fn gateway_config(peer: &support::BatchPeer, store: &Path) -> GatewayConfig {
    // An empty environment: no AWS_* variable of the machine running the test leaks in.
    let mut config = GatewayConfig::parse_with_env(&peer.config_toml(), Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = store.to_owned();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_over_grpc() {
    let Some(peer) = support::start("batch_over_grpc").await else { return };
    let store = tempfile::tempdir().unwrap();
    let config = gateway_config(&peer, store.path());
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    let agent = gateway.built.registry.lookup(&TaskCategory::new("aws-batch", 0)).unwrap().clone();

    let case = support::conformance_case(&peer).agent(agent);
    let report = testkit::run(client, case).await;
    peer.remote().drive(None);
    server.shutdown().await.unwrap();
    report.assert_passes();
    // Nothing skipped: idempotency was counted at moto, states were driven there.
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
    let shown = format!("{report}");
    assert!(!shown.contains(SECRET), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_after_a_gateway_restart_does_not_start_a_second_job() {
    let Some(peer) = support::start("a_repeated_create_after_a_gateway_restart_does_not_start_a_second_job").await else { return };
    let remote = peer.remote();
    let store = tempfile::tempdir().unwrap();
    let request = || admin::CreateTaskRequest {
        inputs: Some(Default::default()),
        template: Some(support::template(&["sleep", "3600"], Some("RUNNING")).into()),
        output_prefix: "runs/restart/n0/0".into(),
        task_execution_metadata: Some(admin::TaskExecutionMetadata {
            task_execution_id: Some(core::TaskExecutionIdentifier {
                task_id: Some(core::Identifier { name: "tests.batch_task".into(), version: "1".into(), ..Default::default() }),
                node_execution_id: Some(core::NodeExecutionIdentifier {
                    node_id: "n0".into(),
                    execution_id: Some(core::WorkflowExecutionIdentifier { project: "p".into(), domain: "d".into(), name: "restart".into(), org: String::new() }),
                }),
                retry_attempt: 0,
            }),
            ..Default::default()
        }
        .into()),
    };
    let answers = gateway_support::create_and_get_across_restarts(&gateway_config(&peer, store.path()), &request(), 2).await;
    let job_ids: Vec<String> = answers
        .iter()
        .map(|(_, resource)| {
            assert_eq!(resource.phase, core::task_execution::Phase::Running as i32, "{resource:?}");
            let info = resource.custom_info.as_ref().map(tern_type_transformers::render::struct_to_json).unwrap_or_default();
            info["job_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(!job_ids[0].is_empty());
    assert_eq!(job_ids[0], job_ids[1], "the create after the restart attached to the first job");
    assert_eq!(remote.count_jobs().await, 1, "one job at moto");
}
