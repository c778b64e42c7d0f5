//! The Ray agent passes the agent conformance kit (`tern_agent_api::testkit`) against a real Ray
//! 2.60 head the test starts: jobs are counted at the head (`GET /api/jobs/`), the long-running
//! job is stopped for real (`POST /api/jobs/{id}/stop` → `STOPPED`), the failing one exits 3.
//! Every declared state (and an undeclared one) is driven end to end through GetTask by a
//! pass-through in front of the dashboard (`support::Proxy`), as a real Ray only reports the
//! states a job reaches. Then the agent's own guarantees: the job's logs, the runtime env reaching the job, and a
//! second agent (a restarted gateway) attaching to the job the first one submitted.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_api::idempotency::IdempotencyKey;
use tern_agent_ray::{Handle, RayAgent, RayConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ray_passes_the_conformance_kit_against_a_real_head() {
    let Some(head) = support::start("ray_passes_the_conformance_kit_against_a_real_head").await else { return };
    let proxy = support::Proxy::start(&head.url).await;
    let config = RayConfig { address: Some(proxy.url.clone()), ..Default::default() };
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent: Arc<dyn AsyncAgent> = Arc::new(RayAgent::new(config, &services).unwrap());
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), services));

    let case = support::conformance_case(&head, &proxy).async_agent(agent);
    let report = testkit::run(client, case).await;
    *proxy.driver().lock().unwrap() = None;
    println!("{report:#?}");
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }

    // The same head, for the agent's own guarantees (one Ray start per test binary).
    restarted_gateway_attaches_to_the_first_job(&head).await;
    refusals_without_a_reachable_cluster().await;
}

fn request(template: core::TaskTemplate) -> TaskRequest {
    TaskRequest { template: Box::new(template), inputs: core::LiteralMap::default() }
}

/// Two agent instances (a gateway, then the same gateway restarted) create one attempt: one job at the
/// head, both handles name it; its logs carry the container's env and the template's runtime env.
async fn restarted_gateway_attaches_to_the_first_job(head: &support::RayHead) {
    let token = head.dir.path().join("token");
    std::fs::write(&token, "ray-secret-token-for-tests\n").unwrap();
    let config = RayConfig {
        address: Some(head.url.clone()),
        token: Some(format!("file:{}", token.display()).parse().unwrap()),
        ..Default::default()
    };
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let mut ctx = services.task_context("", None, None);
    ctx.idempotency_key = Some(IdempotencyKey::from_string(format!("restart{}", std::process::id())));
    let before = head.jobs().await.len();

    let first = RayAgent::new(config.clone(), &services).unwrap();
    let a = first.create(&ctx, request(support::conformance_template(support::OK_PY))).await.unwrap();
    drop(first);
    let second = RayAgent::new(config, &services).unwrap();
    let b = second.create(&ctx, request(support::conformance_template(support::OK_PY))).await.unwrap();
    let (ha, hb): (Handle, Handle) = (a.decode().unwrap(), b.decode().unwrap());
    assert_eq!(ha, hb);
    assert_eq!(ha.submission_id, format!("tern-restart{}", std::process::id()));
    assert!(!String::from_utf8_lossy(a.as_bytes()).contains("ray-secret"), "no credential in the handle");

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = second.get(&ctx, &b).await.unwrap();
        if s.is_terminal() || std::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.log_links[0].name, "Ray Dashboard");
    assert_eq!(status.log_links[0].uri, format!("{}/#/jobs/{}", head.url, ha.submission_id));
    assert_eq!(head.jobs().await.len(), before + 1, "one job for the attempt");
    let job = head.remote().job(&ha.submission_id).await;
    assert_eq!(job["metadata"]["tern.idempotency_key"], format!("restart{}", std::process::id()));

    let logs = second.logs(&ctx, &b, 0, "").await.unwrap();
    let text: Vec<&str> = logs.lines.iter().map(|l| l.message.as_str()).collect();
    assert!(text.iter().any(|l| l.contains("tern-ok 1 yaml")), "container env and runtime_env reach the job: {text:?}");

    // The same submission id with another entrypoint is not this task's job: refused, nothing started.
    let other = second.create(&ctx, request(support::conformance_template("print('another task')"))).await.unwrap_err();
    assert_eq!((other.code.as_ref(), other.is_retryable()), (tern_agent_ray::codes::SUBMISSION_ID_TAKEN, false), "{other}");
    // Stopping a finished job changes nothing, twice.
    second.delete(&ctx, &b).await.unwrap();
    second.delete(&ctx, &b).await.unwrap();
    assert_eq!(second.get(&ctx, &b).await.unwrap().phase, Phase::Succeeded);
    assert_eq!(head.jobs().await.len(), before + 1);
}

async fn refusals_without_a_reachable_cluster() {
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let ctx = services.task_context("", None, None);
    let template = support::conformance_template(support::OK_PY);
    let none = RayAgent::new(RayConfig::default(), &services).unwrap();
    let e = none.create(&ctx, request(template.clone())).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.is_retryable()), (tern_agent_ray::codes::NO_ADDRESS, false), "{e}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = RayConfig { address: Some(format!("127.0.0.1:{closed}")), ..Default::default() };
    let down = RayAgent::new(config, &services).unwrap();
    let e = down.create(&ctx, request(template)).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.is_retryable()), (tern_agent_ray::codes::UNAVAILABLE, true), "{e}");
}
