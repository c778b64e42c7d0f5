//! The GPU agent over real gRPC, as `tern serve` hosts it (router, owner-tagged handles), configured
//! through `[agents.gpu]` (opted in with `enabled = true`; the test-only `fake_devices` stands in for
//! NVML on this GPU-less machine): the conformance case of `agents/gpu/tests/conformance.rs`, and a
//! repeated CreateTask after the gateway restarted, which must find the job instead of starting a second.
#![cfg(feature = "agent-gpu")]
#[allow(dead_code)]
#[path = "../../agents/gpu/tests/support/mod.rs"]
mod support;

#[path = "support/mod.rs"]
mod gateway_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::Mode;

struct Served {
    gateway: tern_gateway::Gateway,
    server: tern_gateway::ServeHandle,
    client: Arc<GrpcAgentClient>,
}

/// `tern serve` with `toml` and its data store under `store` (kept across restarts), an empty environment.
async fn serve(toml: &str, store: &Path) -> Served {
    let config = gateway_support::config(toml, store, &[]);
    let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
    let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap());
    Served { gateway, server, client }
}

fn section(state: &Path, devices: u32) -> String {
    let fake: Vec<String> = (0..devices).map(|i| format!("{{ index = {i}, uuid = \"GPU-fake-{i}\", name = \"Tesla T4\" }}")).collect();
    format!("[agents.gpu]\nenabled = true\nstate_dir = \"{}\"\nfake_devices = [{}]\n", state.display(), fake.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_over_grpc() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runs = state.path().join("runs.txt");
    let seen = state.path().join("devices.txt");
    let served = serve(&section(state.path(), 4), store.path()).await;
    let agent = served.gateway.built.registry.lookup(&TaskCategory::new("gpu", 0)).unwrap().clone();

    let case = support::conformance_case(&runs, &seen).agent(agent);
    let report = testkit::run(served.client.clone(), case).await;
    served.server.shutdown().await.unwrap();
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}

fn create_request(template: core::TaskTemplate) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        template: Some(template.into()),
        inputs: Some(core::LiteralMap::default()),
        output_prefix: "runs/restart".into(),
        task_execution_metadata: Some(gateway_support::execution("p", "d", "n0", 0).into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_after_a_gateway_restart_does_not_start_a_second_job() {
    let (state, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runs = state.path().join("runs.txt");
    let release = state.path().join("release");
    let config = section(state.path(), 1);
    let script = support::counted_script(&runs, &state.path().join("devices.txt"), Some(&release));
    let request = create_request(support::template(&script, Some("1"), Some("nvidia-tesla-t4")));

    let first = serve(&config, store.path()).await;
    let meta = first.client.create_task(request.clone()).await.unwrap();
    // The gateway goes away: its server, its agents, everything it held in memory.
    let Served { gateway, server, client } = first;
    server.shutdown().await.unwrap();
    drop((gateway, client));

    let second = serve(&config, store.path()).await;
    let again = second.client.create_task(request).await.unwrap();
    std::fs::write(&release, b"").unwrap();
    let get = |meta: Vec<u8>| admin::GetTaskRequest {
        resource_meta: meta,
        task_category: Some(admin::TaskCategory { name: "gpu".into(), version: 0 }),
        ..Default::default()
    };
    let started = Instant::now();
    let resource = loop {
        let r = second.client.get_task(get(again.clone())).await.unwrap();
        if !tern_agent_api::status::is_terminal(core::task_execution::Phase::try_from(r.phase).unwrap()) {
            assert!(started.elapsed() < Duration::from_secs(30), "still not done after 30 s: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        break r;
    };
    assert_eq!(resource.phase, core::task_execution::Phase::Succeeded as i32, "{resource:?}");
    // The first handle (issued before the restart) names the same job.
    let r = second.client.get_task(get(meta)).await.unwrap();
    assert_eq!(r.phase, core::task_execution::Phase::Succeeded as i32, "{r:?}");
    second.server.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(support::lines(&runs), 1, "exactly one job ran across the restart");
    assert_eq!(std::fs::read_dir(state.path().join("jobs")).unwrap().count(), 1);
}
