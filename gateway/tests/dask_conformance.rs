//! The Dask agent over real gRPC, as `tern serve` hosts it (router, owner-tagged handles), configured
//! through `[agents.dask]` (opted in with `enabled = true`, a standing `distributed` scheduler as
//! `scheduler_address`): the conformance case of `agents/dask/tests/conformance.rs`, and a repeated
//! CreateTask after the gateway restarted, which must find the running job instead of starting a second.
#![cfg(feature = "agent-dask")]
#[allow(dead_code)]
#[path = "../../agents/dask/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::{GatewayConfig, Mode};

struct Served {
    gateway: tern_gateway::Gateway,
    server: tern_gateway::ServeHandle,
    client: Arc<GrpcAgentClient>,
}

async fn serve(toml: &str, store: &Path) -> Served {
    // An empty environment: no DASK_SCHEDULER_ADDRESS of the machine running the test leaks in.
    let mut config = GatewayConfig::parse_with_env(toml, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
    config.data_store.root = store.to_owned();
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    Served { gateway, server, client }
}

fn section(python: &Path, state: &Path, address: &str) -> String {
    format!(
        "[agents.dask]\nenabled = true\npython = \"{}\"\nstate_dir = \"{}\"\nscheduler_address = \"{address}\"\n",
        python.display(),
        state.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dask_over_grpc() {
    let Some(python) = support::python("dask_over_grpc") else { return };
    let cluster = support::Cluster::start(&python);
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runs = state.path().join("runs.txt");
    let served = serve(&section(&python, state.path(), &cluster.address), store.path()).await;
    let agent = served.gateway.built.registry.lookup(&TaskCategory::new("dask", 0)).unwrap().clone();

    let case = support::conformance_case(&python, &runs).agent(agent);
    let report = testkit::run(served.client.clone(), case).await;
    served.server.shutdown().await.unwrap();
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}

fn create_request(template: core::TaskTemplate) -> admin::CreateTaskRequest {
    let execution = admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { project: "p".into(), domain: "d".into(), name: "t".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: "n0".into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: "p".into(),
                    domain: "d".into(),
                    name: "restart-exec".into(),
                    org: String::new(),
                }),
            }),
            retry_attempt: 0,
        }),
        ..Default::default()
    };
    admin::CreateTaskRequest {
        template: Some(template.into()),
        inputs: Some(core::LiteralMap::default()),
        output_prefix: "runs/restart".into(),
        task_execution_metadata: Some(execution.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_after_a_gateway_restart_does_not_start_a_second_job() {
    let Some(python) = support::python("a_repeated_create_after_a_gateway_restart_does_not_start_a_second_job") else { return };
    let cluster = support::Cluster::start(&python);
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runs = state.path().join("runs.txt");
    let config = section(&python, state.path(), &cluster.address);
    let script = format!("import time\ntime.sleep(4)\n{}", support::counted_script(&runs));
    let request = create_request(support::template(&python, &script, support::default_job()));

    let first = serve(&config, store.path()).await;
    let meta = first.client.create_task(request.clone()).await.unwrap();
    // The gateway goes away: its server, its agents, everything it held in memory.
    let Served { gateway, server, client } = first;
    server.shutdown().await.unwrap();
    drop((gateway, client));

    let second = serve(&config, store.path()).await;
    let again = second.client.create_task(request).await.unwrap();
    let category = || Some(admin::TaskCategory { name: "dask".into(), version: 0 });
    let get = |meta: Vec<u8>| admin::GetTaskRequest { resource_meta: meta, task_category: category(), ..Default::default() };
    let started = Instant::now();
    let resource = loop {
        let r = second.client.get_task(get(again.clone())).await.unwrap();
        if r.phase != core::task_execution::Phase::Running as i32 && r.phase != core::task_execution::Phase::Initializing as i32 {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still running after 60 s: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(resource.phase, core::task_execution::Phase::Succeeded as i32, "{resource:?}");
    // The first handle (issued before the restart) names the same job.
    let r = second.client.get_task(get(meta)).await.unwrap();
    assert_eq!(r.phase, core::task_execution::Phase::Succeeded as i32, "{r:?}");
    let logs = second
        .client
        .get_task_logs(admin::GetTaskLogsRequest { resource_meta: again, lines: 0, task_category: category(), ..Default::default() })
        .await
        .unwrap();
    let text: Vec<String> = logs
        .iter()
        .filter_map(|r| match &r.part {
            Some(admin::get_task_logs_response::Part::Body(b)) => Some(b.structured_lines.iter().map(|l| l.message.clone()).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(text.iter().any(|l| l.contains("tern-dask-ok")), "{text:?}");
    second.server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(support::lines(&runs), 1, "exactly one job ran across the restart");
    assert_eq!(std::fs::read_dir(state.path().join("jobs")).unwrap().count(), 1);
}
