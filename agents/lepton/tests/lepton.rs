//! The Lepton agent against the test server (tests/support/lepton_server.rs), through its
//! real reqwest client: the deployment body Lepton receives, readiness and the endpoint URL
//! as output `o0`, idempotency counted at the server (also across a new agent instance, as
//! after a gateway restart), deletion, cancel, logs, and errors with their codes.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tern_agent_api::core::literal::Value as Lit;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as Scalar;
use tern_agent_api::prelude::*;
use tern_agent_lepton::agent::{KEY_LABEL, TASK_LABEL};
use tern_agent_lepton::{codes, LeptonAgent, LeptonConfig};

struct Env {
    server: support::Server,
    services: AgentServices,
    config: LeptonConfig,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn env() -> Env {
    let server = support::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let config = support::config(&server, dir.path());
    let services = AgentServices::local(store.path());
    Env { server, services, config, _dirs: (dir, store) }
}

impl Env {
    fn agent(&self) -> LeptonAgent {
        LeptonAgent::new(self.config.clone(), &self.services).unwrap()
    }

    fn ctx(&self, exec: &str, node: &str, attempt: u32) -> TaskContext {
        self.services.task_context("", Some(support::execution(exec, node, attempt)), None)
    }
}

fn request(template: tern_agent_api::core::TaskTemplate) -> TaskRequest {
    TaskRequest { template: Box::new(template), inputs: Default::default() }
}

async fn wait(agent: &LeptonAgent, ctx: &TaskContext, meta: &ResourceMeta) -> TaskStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = agent.get(ctx, meta).await.unwrap_or_else(|e| panic!("GetTask failed: {e}"));
        if status.is_terminal() {
            return status;
        }
        assert!(Instant::now() < deadline, "not terminal within 20 s: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn o0(status: &TaskStatus) -> String {
    let lit = status.outputs.as_ref().and_then(|o| o.literals.get("o0")).expect("output o0");
    match &lit.value {
        Some(Lit::Scalar(s)) => match &s.value {
            Some(Scalar::Primitive(p)) => match &p.value {
                Some(Prim::StringValue(v)) => v.clone(),
                other => panic!("o0 is not a string: {other:?}"),
            },
            other => panic!("o0 is not a primitive: {other:?}"),
        },
        other => panic!("o0 is not a scalar: {other:?}"),
    }
}

#[tokio::test]
async fn a_named_endpoint_is_deployed_once_and_succeeds_with_its_url() {
    let e = env().await;
    let agent = e.agent();
    let ctx = e.ctx("exec1", "n0", 0);
    let template = support::deployment_template(json!({
        "endpoint_name": "My_Web.Endpoint",
        "env_vars": {"MODE": "test", "HF_TOKEN": {"value_from": {"secret_name_ref": "hf"}}},
        "api_tokens": [{"value_from": {"secret_name_ref": "ep-token"}}],
        "min_replicas": 1.0, "max_replicas": 2.0,
    }));
    // Each create looks the name up first (a poll at this server): ready after the 5th.
    e.server.lepton.state.lock().unwrap().ready_after = 5;
    let meta = agent.create(&ctx, request(template.clone())).await.unwrap();
    assert!(!String::from_utf8_lossy(meta.as_bytes()).contains(support::TOKEN), "no token in the handle");
    // Propeller repeats the create (a lost answer): the same deployment.
    let again = agent.create(&ctx, request(template.clone())).await.unwrap();
    // A restarted gateway: a new agent instance, nothing kept in memory.
    let restarted = e.agent();
    let third = restarted.create(&ctx, request(template.clone())).await.unwrap();
    assert_eq!(e.server.lepton.created(), 1, "one deployment at Lepton");
    assert_eq!(e.server.lepton.names(), ["my-web-endpoint"]);
    for m in [&again, &third] {
        let a: Value = serde_json::from_slice(m.as_bytes()).unwrap();
        assert_eq!(a["name"], "my-web-endpoint");
        assert_eq!(a["op"], "deploy");
    }

    let body = e.server.lepton.deployment("my-web-endpoint").unwrap().body;
    assert_eq!(body["metadata"]["id"], "my-web-endpoint");
    assert_eq!(body["metadata"]["name"], "my-web-endpoint");
    assert_eq!(body["metadata"]["labels"][KEY_LABEL].as_str().unwrap().len(), 32);
    assert_eq!(body["metadata"]["labels"][TASK_LABEL].as_str().unwrap().len(), 32);
    assert_eq!(
        body["spec"]["container"],
        json!({"image": "python:3.11-slim", "ports": [{"container_port": 8080}],
               "command": ["/bin/bash", "-c", "python3 -m http.server 8080 --bind 0.0.0.0"]})
    );
    assert_eq!(
        body["spec"]["resource_requirement"],
        json!({"resource_shape": "cpu.small", "min_replicas": 1, "max_replicas": 2,
               "affinity": {"allowed_dedicated_node_groups": ["ng-test"]}})
    );
    assert_eq!(
        body["spec"]["envs"],
        json!([{"name": "MODEL_PORT", "value": "8080"}, {"name": "HF_TOKEN", "value_from": {"secret_name_ref": "hf"}},
               {"name": "MODE", "value": "test"}])
    );
    assert_eq!(body["spec"]["api_tokens"], json!([{"value_from": {"token_name_ref": "ep-token"}}]));

    let first = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(first.phase, Phase::Initializing, "{first:?}");
    assert!(first.message.contains("Not Ready"), "{}", first.message);
    let link = &first.log_links[0];
    assert_eq!(link.name, "Lepton Console");
    assert_eq!(link.uri, "https://dashboard.lepton.test/workspace/tern-test-ws/compute/deployments/detail/my-web-endpoint/replicas/list");
    let done = wait(&agent, &ctx, &meta).await;
    assert_eq!(done.phase, Phase::Succeeded, "{done:?}");
    assert_eq!(o0(&done), "https://tern-test-ws-my-web-endpoint.xenon.lepton.run");

    // Another retry attempt of the same task adopts its endpoint; another execution may not take the name.
    let retry = agent.create(&e.ctx("exec1", "n0", 1), request(template.clone())).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(retry.as_bytes()).unwrap()["name"], "my-web-endpoint");
    let other = agent.create(&e.ctx("exec2", "n0", 0), request(template)).await.unwrap_err();
    assert_eq!(other.code, codes::NAME_TAKEN);
    assert!(!other.is_retryable() && other.message.contains("my-web-endpoint"), "{other}");
    assert_eq!(e.server.lepton.created(), 1);

    // GetTaskLogs: Lepton's log API, oldest first, paged.
    let page = agent.logs(&ctx, &meta, 2, "").await.unwrap();
    let text: Vec<&str> = page.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(text, ["my-web-endpoint: pulling python:3.11-slim", "my-web-endpoint: model loaded"]);
    let rest = agent.logs(&ctx, &meta, 2, &page.next_token).await.unwrap();
    assert_eq!(rest.lines[0].message, "my-web-endpoint: serving on :8080");
    assert!(rest.next_token.is_empty());
}

#[tokio::test]
async fn unnamed_endpoints_take_their_name_from_the_idempotency_key() {
    let e = env().await;
    let agent = e.agent();
    let template = support::deployment_template(json!({}));
    let a0 = agent.create(&e.ctx("exec1", "n0", 0), request(template.clone())).await.unwrap();
    let a0_again = e.agent().create(&e.ctx("exec1", "n0", 0), request(template.clone())).await.unwrap();
    let a1 = agent.create(&e.ctx("exec1", "n0", 1), request(template)).await.unwrap();
    let name = |m: &ResourceMeta| serde_json::from_slice::<Value>(m.as_bytes()).unwrap()["name"].as_str().unwrap().to_owned();
    assert_eq!(name(&a0), name(&a0_again));
    assert_ne!(name(&a0), name(&a1), "another attempt is another endpoint");
    assert!(name(&a0).starts_with("tern-") && name(&a0).len() == 36, "{}", name(&a0));
    assert_eq!(e.server.lepton.created(), 2);
}

#[tokio::test]
async fn deletion_is_idempotent_and_cancel_deletes_the_endpoint() {
    let e = env().await;
    let agent = e.agent();
    let ctx = e.ctx("exec1", "deploy", 0);
    let deploy = agent.create(&ctx, request(support::deployment_template(json!({"endpoint_name": "to-delete"})))).await.unwrap();
    assert_eq!(wait(&agent, &ctx, &deploy).await.phase, Phase::Succeeded);

    let dctx = e.ctx("exec1", "delete", 0);
    let del = agent.create(&dctx, request(support::deletion_template("to-delete"))).await.unwrap();
    let running = agent.get(&dctx, &del).await.unwrap();
    assert_eq!(running.phase, Phase::Running, "{running:?}");
    assert!(running.message.contains("Deleting"), "{}", running.message);
    let done = wait(&agent, &dctx, &del).await;
    assert_eq!(done.phase, Phase::Succeeded);
    assert_eq!(o0(&done), "Successfully deleted endpoint: to-delete");
    assert!(e.server.lepton.deployment("to-delete").is_none());
    // Deleting what is gone: fine (a repeated create, a rerun).
    let again = agent.create(&dctx, request(support::deletion_template("to-delete"))).await.unwrap();
    assert_eq!(wait(&agent, &dctx, &again).await.phase, Phase::Succeeded);
    agent.delete(&dctx, &again).await.unwrap();
    // The deployment task's handle now sees its endpoint gone: ABORTED, not a success.
    let gone = agent.get(&ctx, &deploy).await.unwrap();
    assert_eq!(gone.phase, Phase::Aborted, "{gone:?}");

    // Cancel (DeleteTask) of a deployment waiting for readiness deletes it; twice is fine.
    let cctx = e.ctx("exec1", "slow", 0);
    let slow = agent.create(&cctx, request(support::deployment_template(json!({"image": "tern/never-ready"})))).await.unwrap();
    assert_eq!(agent.get(&cctx, &slow).await.unwrap().phase, Phase::Initializing);
    agent.delete(&cctx, &slow).await.unwrap();
    agent.delete(&cctx, &slow).await.unwrap();
    let deleting = agent.get(&cctx, &slow).await.unwrap();
    assert_eq!(deleting.phase, Phase::Aborted, "Deleting: {deleting:?}");
    let gone = agent.get(&cctx, &slow).await.unwrap();
    assert_eq!(gone.phase, Phase::Aborted, "gone: {gone:?}");
    assert!(gone.message.contains("no longer exists"), "{}", gone.message);
    assert!(e.server.lepton.names().is_empty(), "{:?}", e.server.lepton.names());
    agent.delete(&cctx, &slow).await.unwrap();
}

#[tokio::test]
async fn readiness_times_out_as_a_user_error() {
    let e = env().await;
    let agent = LeptonAgent::new(LeptonConfig { readiness_timeout: Duration::from_secs(1), ..e.config.clone() }, &e.services).unwrap();
    let ctx = e.ctx("exec1", "n0", 0);
    let meta = agent.create(&ctx, request(support::deployment_template(json!({"image": "tern/never-ready"})))).await.unwrap();
    let status = wait(&agent, &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    let error = status.error.unwrap();
    assert_eq!(error.code, codes::NOT_READY_IN_TIME);
    assert!(!error.is_retryable());
    let name = serde_json::from_slice::<Value>(meta.as_bytes()).unwrap()["name"].as_str().unwrap().to_owned();
    assert!(e.server.lepton.deployment(&name).is_some(), "left in place");
}

#[tokio::test]
async fn lepton_errors_keep_their_codes() {
    let e = env().await;
    let agent = e.agent();
    let ctx = e.ctx("exec1", "n0", 0);

    // Lepton refuses the spec: its code and message, permanent.
    let refused = agent.create(&ctx, request(support::deployment_template(json!({"resource_shape": "gpu.unavailable"})))).await.unwrap_err();
    assert_eq!(refused.code, codes::REQUEST_REJECTED);
    assert!(refused.message.contains("InvalidParameter") && refused.message.contains("gpu.unavailable"), "{refused}");
    assert!(!refused.is_retryable());
    assert_eq!(e.server.lepton.created(), 0);

    // A bad template never reaches Lepton.
    let bad = agent.create(&ctx, request(support::deployment_template(json!({"image": null})))).await.unwrap_err();
    assert_eq!(bad.code, codes::BAD_TEMPLATE);

    // A wrong token.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t"), "wrong").unwrap();
    let wrong = LeptonConfig { token: Some(format!("file:{}", dir.path().join("t").display()).parse().unwrap()), ..e.config.clone() };
    let denied = LeptonAgent::new(wrong, &e.services).unwrap().create(&ctx, request(support::deployment_template(json!({})))).await.unwrap_err();
    assert_eq!(denied.code, codes::PERMISSION_DENIED);
    assert!(!denied.message.contains("wrong"), "the token is never in a message: {denied}");

    // No workspace or no token configured.
    let unconfigured = LeptonAgent::new(LeptonConfig { workspace_id: None, ..e.config.clone() }, &e.services).unwrap();
    assert_eq!(unconfigured.create(&ctx, request(support::deployment_template(json!({})))).await.unwrap_err().code, codes::NOT_CONFIGURED);
    let no_token = LeptonAgent::new(LeptonConfig { token: None, ..e.config.clone() }, &e.services).unwrap();
    assert_eq!(no_token.create(&ctx, request(support::deployment_template(json!({})))).await.unwrap_err().code, codes::NOT_CONFIGURED);
    let missing = LeptonConfig { token: Some("env:TERN_LEPTON_TEST_TOKEN_UNSET".parse().unwrap()), ..e.config.clone() };
    let missing = LeptonAgent::new(missing, &e.services).unwrap().create(&ctx, request(support::deployment_template(json!({})))).await.unwrap_err();
    assert_eq!(missing.code, tern_agent_api::error::codes::SECRET_MISSING);

    // Lepton unreachable: a retryable system error.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = LeptonAgent::new(LeptonConfig { api_url: format!("http://127.0.0.1:{port}"), ..e.config.clone() }, &e.services).unwrap();
    let unavailable = down.create(&ctx, request(support::deployment_template(json!({})))).await.unwrap_err();
    assert_eq!(unavailable.code, codes::UNAVAILABLE);
    assert!(unavailable.is_retryable());
}
