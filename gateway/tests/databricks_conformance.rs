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
use std::time::Duration;

use serde_json::json;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_gateway::{GatewayConfig, Mode};
use tern_type_transformers::structs::json_to_struct;

const TOKEN: &str = "dapi-conformance-over-grpc";

/// A `DatabricksV2` template (as flytekit serializes it) running `script` from the workspace.
fn template(script: &str, args: &[&str]) -> core::TaskTemplate {
    let custom = json!({
        "databricksConf": {
            "run_name": "tern-conformance-grpc",
            "new_cluster": {"spark_version": "13.3.x-scala2.12", "node_type_id": "m5.xlarge", "num_workers": 1.0},
            "python_file": script,
        },
        "sparkConf": {"spark.driver.memory": "512m"},
        "mainApplicationFile": "local:///usr/local/bin/entrypoint.py",
        "executorPath": "/usr/bin/python3",
        "applicationType": "PYTHON",
    });
    core::TaskTemplate {
        r#type: "databricks".into(),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![core::KeyValuePair { key: "TERN_CONFORMANCE".into(), value: "1".into() }],
            ..Default::default()
        })),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databricks_over_grpc() {
    let Some(minilake) = support::start("databricks_over_grpc").await else { return };
    minilake.import("/Shared/tern/ok.py", support::OK_PY).await;
    minilake.import("/Shared/tern/fail.py", support::FAIL_PY).await;
    minilake.import("/Shared/tern/slow.py", support::SLOW_PY).await;
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

    let (counter, driver) = (minilake.remote(), minilake.remote());
    let case = Case::new(template("/Shared/tern/ok.py", &["a", "b"]), core::LiteralMap::default())
        // The script exits 3: TERMINATED/FAILED → FAILED with TERN-X009.
        .failing(template("/Shared/tern/fail.py", &[]), core::LiteralMap::default())
        // Sleeps 8 s: still RUNNING when deleted; minilake ends it CANCELED once the script exits.
        .long_running(template("/Shared/tern/slow.py", &["8"]), core::LiteralMap::default())
        .count_jobs(move || {
            let c = counter.clone();
            async move { c.count_runs().await }
        })
        .drive_state(move |state| {
            let d = driver.clone();
            async move { d.drive(Some(&state)).await }
        })
        .agent(agent)
        .poll_interval(Duration::from_millis(200))
        .settle(Duration::from_millis(500))
        .poll_timeout(Duration::from_secs(60));
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
