//! The Lepton agent's conformance case over real gRPC, as `tern serve` hosts it (router, owner-tagged
//! handles), against the test server implementing Lepton's REST shapes
//! (`agents/lepton/tests/support/lepton_server.rs`): the "remote" run of `agents/lepton/tests/conformance.rs`,
//! plus a repeated CreateTask after the gateway restarted, counted at the server. The agent is configured
//! through `[agents.lepton]`, the way a deployment configures it (the token as a `file:` reference).
#![cfg(feature = "agent-lepton")]
#[allow(dead_code)]
#[path = "../../agents/lepton/tests/support/mod.rs"]
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
    let request = admin::CreateTaskRequest {
        inputs: Some(Default::default()),
        template: Some(Box::new(support::deployment_template(serde_json::json!({"image": "tern/never-ready"})))),
        output_prefix: "runs/restart/n0/0".into(),
        task_execution_metadata: Some(support::execution("restart", "n0", 0)),
    };
    let answers = gateway_support::create_and_get_across_restarts(&gateway_config(&peer, dir.path()), &request, 2).await;
    let names: Vec<String> = answers
        .iter()
        .map(|(_, resource)| {
            assert_eq!(resource.phase, core::task_execution::Phase::Initializing as i32, "{resource:?}");
            let info = resource.custom_info.as_ref().map(tern_type_transformers::render::struct_to_json).unwrap_or_default();
            info["endpoint_name"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(names[0].starts_with("tern-"), "{names:?}");
    assert_eq!(names[0], names[1], "the create after the restart attached to the first deployment");
    assert_eq!(peer.lepton.created(), 1, "one deployment at Lepton");
}

/// flytekitplugins-dgxc-lepton's own templates (serialized by the plugin with flytekit 1.16.31), through the gateway
/// over gRPC: the deployment reaches the test server with the body leptonai would send, succeeds with the URL as
/// `o0`; the vLLM one carries every option; the deletion task deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flytekit_plugin_templates_deploy_and_delete() {
    let Some(templates) = support::plugin_templates("flytekit_plugin_templates_deploy_and_delete") else { return };
    let peer = support::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = tern_gateway::Gateway::build(&gateway_config(&peer, dir.path()), Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap();
    let run = |name: &str, node: &str| {
        let template = templates[name].clone();
        let category = admin::TaskCategory { name: template.r#type.clone(), version: template.task_type_version };
        (
            admin::CreateTaskRequest {
                inputs: Some(Default::default()),
                template: Some(Box::new(template)),
                output_prefix: format!("runs/plugin/{node}/0"),
                task_execution_metadata: Some(support::execution("plugin", node, 0)),
            },
            category,
        )
    };
    let until_done = |meta: Vec<u8>, category: admin::TaskCategory| {
        let client = &client;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let r = client
                    .get_task(admin::GetTaskRequest { resource_meta: meta.clone(), task_category: Some(category.clone()), ..Default::default() })
                    .await
                    .unwrap();
                if tern_agent_api::status::is_terminal(Phase::try_from(r.phase).unwrap_or(Phase::Undefined)) {
                    return r;
                }
                assert!(std::time::Instant::now() < deadline, "{r:?}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    let string_output = |r: &admin::Resource| -> String {
        use tern_agent_api::core::{literal::Value as L, primitive::Value as P, scalar::Value as S};
        let lit = r.outputs.as_ref().and_then(|o| o.literals.get("o0")).expect("o0");
        match &lit.value {
            Some(L::Scalar(s)) => match &s.value {
                Some(S::Primitive(p)) => match &p.value {
                    Some(P::StringValue(v)) => v.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    };

    let (request, category) = run("deploy_web", "web");
    let meta = client.create_task(request).await.unwrap();
    let done = until_done(meta, category).await;
    assert_eq!(done.phase, core::task_execution::Phase::Succeeded as i32, "{done:?}");
    assert_eq!(string_output(&done), format!("https://{}-interop-web.xenon.lepton.run", support::WORKSPACE));
    // What leptonai 0.27.3 sends for the plugin's spec of this task (its pydantic dump of the connector's
    // _build_spec), except MODEL_PORT: flytekit sends "8080.0" (the Struct's double), the agent the port.
    let body = peer.lepton.deployment("interop-web").unwrap().body;
    assert_eq!(
        body["spec"],
        serde_json::json!({
            "container": {"command": ["/bin/bash", "-c", "python3 -m http.server 8080 --bind 0.0.0.0"], "image": "python:3.11-slim", "ports": [{"container_port": 8080}]},
            "envs": [{"name": "MODEL_PORT", "value": "8080"}, {"name": "HF_TOKEN", "value_from": {"secret_name_ref": "hf-secret"}}, {"name": "MODE", "value": "interop"}],
            "health": {}, "log": {"enable_collection": true}, "metrics": {},
            "resource_requirement": {"affinity": {"allowed_dedicated_node_groups": ["ng-test"]}, "max_replicas": 1, "min_replicas": 1, "resource_shape": "cpu.small"},
            "routing_policy": {}, "user_security_context": {}
        })
    );

    let (request, category) = run("deploy_llm", "llm");
    let meta = client.create_task(request).await.unwrap();
    assert_eq!(until_done(meta, category).await.phase, core::task_execution::Phase::Succeeded as i32);
    let llm = peer.lepton.deployment("interop-llm").unwrap().body;
    assert_eq!(llm["spec"]["container"]["command"][3], "--tensor-parallel-size=2");
    assert_eq!(llm["spec"]["api_tokens"], serde_json::json!([{"value_from": {"token_name_ref": "ep-token"}}]));
    assert_eq!(llm["spec"]["auto_scaler"]["scale_down"], serde_json::json!({"no_traffic_timeout": 1800}));
    assert_eq!(llm["spec"]["mounts"][0]["from"], "node-nfs:lepton-shared-fs");
    assert_eq!(llm["spec"]["health"], serde_json::json!({"liveness": {"initial_delay_seconds": 600}}));

    let (request, category) = run("delete_web", "del");
    let meta = client.create_task(request).await.unwrap();
    let deleted = until_done(meta, category).await;
    assert_eq!(deleted.phase, core::task_execution::Phase::Succeeded as i32, "{deleted:?}");
    assert_eq!(string_output(&deleted), "Successfully deleted endpoint: interop-web");
    assert!(peer.lepton.deployment("interop-web").is_none());
    assert_eq!(peer.lepton.created(), 2);
    server.shutdown().await.unwrap();
}
