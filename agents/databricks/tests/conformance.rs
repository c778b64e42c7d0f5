//! The Databricks agent passes the agent conformance kit (`tern_agent_api::testkit`) against
//! the real emulator, minilake 1.9.0 (subprocess executor): jobs are counted at minilake
//! (`runs/list`), the long-running run is cancelled for real (`runs/cancel`; minilake ends it
//! `CANCELED` when its script exits), and every declared state is driven through GetTask with
//! the peer's test hook (minilake itself only produces PENDING/RUNNING/TERMINATED).
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_agent_databricks::config::FileSource;
use tern_agent_databricks::{DatabricksAgent, DatabricksConfig};
use tern_type_transformers::render::json_to_struct;

/// A `DatabricksV2` template (as flytekit serializes it) running `script` from the workspace.
pub fn template(script: &str, args: &[&str]) -> core::TaskTemplate {
    let custom = json!({
        "databricksConf": {
            "run_name": "tern-conformance",
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
async fn databricks_passes_the_conformance_kit_against_minilake() {
    let Some(minilake) = support::start("databricks_passes_the_conformance_kit_against_minilake").await else { return };
    minilake.import("/Shared/tern/ok.py", support::OK_PY).await;
    minilake.import("/Shared/tern/fail.py", support::FAIL_PY).await;
    minilake.import("/Shared/tern/slow.py", support::SLOW_PY).await;
    let token = minilake.dir.path().join("token");
    std::fs::write(&token, "dapi-conformance-test\n").unwrap();

    let config = DatabricksConfig {
        host: Some(minilake.url.clone()),
        token: Some(format!("file:{}", token.display()).parse().unwrap()),
        python_file_source: FileSource::Workspace,
        ..Default::default()
    };
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent: Arc<dyn AsyncAgent> = Arc::new(DatabricksAgent::new(config, &services).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), services));

    let counter = minilake.remote();
    let driver = minilake.remote();
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
        .async_agent(agent)
        .poll_interval(Duration::from_millis(200))
        .settle(Duration::from_millis(500))
        .poll_timeout(Duration::from_secs(60));
    let report = testkit::run(client, case).await;
    minilake.drive(None).await;
    println!("{report:#?}");
    report.assert_passes();
}
