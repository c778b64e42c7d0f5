//! The Databricks agent against the real emulator, minilake 1.9.0 (subprocess executor):
//! idempotency across agent instances (a restarted gateway), what reaches the workspace,
//! logs, notebooks with inputs, refusals that send nothing, API versions, OAuth M2M.
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tern_agent_api::prelude::*;
use tern_agent_databricks::config::{ApiVersion, FileSource};
use tern_agent_databricks::{DatabricksAgent, DatabricksConfig, Handle};
use tern_type_transformers::render::json_to_struct;
use tern_type_transformers::{FlyteType, LiteralMapBuilder};

fn template(custom: Value, args: &[&str]) -> core::TaskTemplate {
    core::TaskTemplate {
        r#type: "databricks".into(),
        id: Some(core::Identifier { name: "tests.dbx.task".into(), ..Default::default() }),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![core::KeyValuePair { key: "TERN_ENV_PROBE".into(), value: "from-container-env".into() }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn python_task(script: &str, args: &[&str]) -> core::TaskTemplate {
    template(json!({"databricksConf": {"new_cluster": {"num_workers": 1.0}, "python_file": script}}), args)
}

fn config(minilake: &support::Minilake) -> DatabricksConfig {
    let token = minilake.dir.path().join("token");
    std::fs::write(&token, "dapi-test\n").unwrap();
    DatabricksConfig {
        host: Some(minilake.url.clone()),
        token: Some(format!("file:{}", token.display()).parse().unwrap()),
        python_file_source: FileSource::Workspace,
        ..Default::default()
    }
}

fn execution(node: &str) -> Box<admin::TaskExecutionMetadata> {
    Box::new(admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "tests.dbx.task".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: "p".into(),
                    domain: "d".into(),
                    name: format!("e{}", std::process::id()),
                    org: String::new(),
                }),
            }),
            retry_attempt: 0,
        }),
        ..Default::default()
    })
}

async fn wait_terminal(agent: &DatabricksAgent, ctx: &TaskContext, meta: &ResourceMeta) -> TaskStatus {
    let started = Instant::now();
    loop {
        let s = agent.get(ctx, meta).await.unwrap();
        if s.is_terminal() {
            return s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {:?} after 60 s", s.phase);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_per_attempt_across_agent_restarts_and_what_the_workspace_receives() {
    let Some(m) = support::start("one_run_per_attempt_across_agent_restarts").await else { return };
    m.import("/Shared/tern/ok.py", support::OK_PY).await;
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let task = TaskRequest { template: Box::new(python_task("/Shared/tern/ok.py", &["x", "--flag=1"])), inputs: Default::default() };

    let ctx = services.task_context("out/n0/0", Some(execution("n0")), None);
    let first = DatabricksAgent::new(config(&m), &services).unwrap();
    let a = first.create(&ctx, task.clone()).await.unwrap();
    let b = first.create(&ctx, task.clone()).await.unwrap();
    drop(first); // the gateway restarts: a new agent, nothing remembered
    let second = DatabricksAgent::new(config(&m), &services).unwrap();
    let c = second.create(&ctx, task.clone()).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c, "the same attempt is the same run after a restart");
    let runs = m.runs().await;
    assert_eq!(runs.len(), 1, "exactly one run at minilake: {runs:?}");

    // Another retry attempt is another run.
    let mut other = execution("n0");
    other.task_execution_id.as_mut().unwrap().retry_attempt = 1;
    let ctx1 = services.task_context("out/n0/1", Some(other), None);
    let d = second.create(&ctx1, task.clone()).await.unwrap();
    assert_ne!(a, d);
    assert_eq!(m.runs().await.len(), 2);

    // The handle holds no credential, and names the workspace by its instance.
    let text = String::from_utf8(a.as_bytes().to_vec()).unwrap();
    assert!(!text.contains("dapi-test"), "{text}");
    let handle: Handle = a.decode().unwrap();
    assert_eq!(handle.instance, m.url.trim_start_matches("http://"));

    // What minilake ran: the one task, the args as parameters, the container env.
    let status = wait_terminal(&second, &ctx, &a).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.log_links.len(), 1);
    assert_eq!(status.log_links[0].name, "Databricks Console");
    assert!(status.log_links[0].uri.ends_with(&format!("/run/{}", handle.run_id)), "{:?}", status.log_links);
    let run = m.run(handle.run_id.parse().unwrap()).await;
    assert_eq!(run["run_name"], "tests.dbx.task");
    assert_eq!(run["tasks"][0]["task_key"], "flyte_task");
    assert_eq!(run["tasks"][0]["spark_python_task"]["parameters"], json!(["x", "--flag=1"]));
    let page = second.logs(&ctx, &a, 0, "").await.unwrap();
    let lines: Vec<&str> = page.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(lines, ["tern-ok ['x', '--flag=1']"], "GetTaskLogs serves runs/get-output");
    assert!(page.next_token.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_failure_logs_and_missing_outputs() {
    let Some(m) = support::start("environment_failure_logs_and_missing_outputs").await else { return };
    m.import("/Shared/tern/env.py", "import os\nprint('env', os.environ.get('TERN_ENV_PROBE'), os.environ.get('FLYTE_FAIL_ON_ERROR'))\n").await;
    m.import("/Shared/tern/fail.py", support::FAIL_PY).await;
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent = DatabricksAgent::new(config(&m), &services).unwrap();

    // The container env and FLYTE_FAIL_ON_ERROR reach the task (new_cluster.spark_env_vars).
    let ctx = services.task_context("out/env", Some(execution("env")), None);
    let meta = agent.create(&ctx, TaskRequest { template: Box::new(python_task("/Shared/tern/env.py", &[])), inputs: Default::default() }).await.unwrap();
    assert_eq!(wait_terminal(&agent, &ctx, &meta).await.phase, Phase::Succeeded);
    let lines = agent.logs(&ctx, &meta, 0, "").await.unwrap().lines;
    assert_eq!(lines[0].message, "env from-container-env true");

    // A failing script: FAILED (user, permanent) with its exit status; the logs carry stderr.
    let ctx = services.task_context("out/fail", Some(execution("fail")), None);
    let meta = agent.create(&ctx, TaskRequest { template: Box::new(python_task("/Shared/tern/fail.py", &[])), inputs: Default::default() }).await.unwrap();
    let s = wait_terminal(&agent, &ctx, &meta).await;
    assert_eq!(s.phase, Phase::Failed);
    let e = s.error.unwrap();
    assert_eq!(e.code, tern_agent_databricks::codes::RUN_FAILED);
    assert!(!e.is_retryable());
    let all: Vec<String> = agent.logs(&ctx, &meta, 0, "").await.unwrap().lines.into_iter().map(|l| l.message).collect();
    assert!(all.contains(&"tern-fail: about to exit 3".to_owned()), "{all:?}");
    let first = agent.logs(&ctx, &meta, 1, "").await.unwrap();
    assert_eq!((first.lines.len(), first.next_token.as_str()), (1, "1"), "paged");

    // The interface declares an output but the script writes no outputs.pb: not a success.
    let mut t = python_task("/Shared/tern/env.py", &[]);
    t.interface = Some(core::TypedInterface {
        inputs: None,
        outputs: Some(core::VariableMap {
            variables: [("o0".to_owned(), core::Variable { r#type: Some(i64::literal_type()), ..Default::default() })].into(),
        }),
    });
    let ctx = services.task_context("out/no-outputs", Some(execution("no-outputs")), None);
    let meta = agent.create(&ctx, TaskRequest { template: Box::new(t), inputs: Default::default() }).await.unwrap();
    let s = wait_terminal(&agent, &ctx, &meta).await;
    assert_eq!(s.phase, Phase::Failed, "{s:?}");
    assert!(s.message.contains("outputs.pb"), "{}", s.message);
    // Once the task has written it, the same run is a success.
    services.data_store.write("out/no-outputs/outputs.pb", bytes_of(&core::LiteralMap::default())).await.unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Succeeded);
}

fn bytes_of(m: &core::LiteralMap) -> bytes::Bytes {
    use prost::Message;
    m.encode_to_vec().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebooks_get_base_parameters_with_inputs() {
    let Some(m) = support::start("notebooks_get_base_parameters_with_inputs").await else { return };
    // minilake runs a notebook's source with its base parameters as `key=value` arguments.
    m.import("/Users/me/report", "import sys\nprint('notebook', sorted(sys.argv[1:]))\n").await;
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent = DatabricksAgent::new(config(&m), &services).unwrap();
    let t = template(
        json!({
            "databricksConf": {"existing_cluster_id": "0101-tern"},
            "notebookPath": "/Users/me/report",
            "notebookBaseParameters": {"day": "{{.inputs.day}}", "n": "{{.inputs.n}}", "static": "x"},
        }),
        &["pyflyte-execute"],
    );
    let inputs = LiteralMapBuilder::new().with("day", &"2026-11-30".to_owned()).unwrap().with("n", &7i64).unwrap().build();
    let ctx = services.task_context("out/nb", Some(execution("nb")), None);
    let meta = agent.create(&ctx, TaskRequest { template: Box::new(t), inputs }).await.unwrap();
    assert_eq!(wait_terminal(&agent, &ctx, &meta).await.phase, Phase::Succeeded);
    let lines = agent.logs(&ctx, &meta, 0, "").await.unwrap().lines;
    assert_eq!(lines[0].message, "notebook ['day=2026-11-30', 'n=7', 'static=x']");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_send_nothing_and_api_versions_are_configurable() {
    let Some(m) = support::start("refusals_send_nothing_and_api_versions_are_configurable").await else { return };
    m.import("/Shared/tern/ok.py", support::OK_PY).await;
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent = DatabricksAgent::new(config(&m), &services).unwrap();
    let ctx = services.task_context("out/r", Some(execution("r")), None);

    // A template naming a workspace the gateway does not know: refused, nothing sent.
    let mut elsewhere = python_task("/Shared/tern/ok.py", &[]);
    let mut custom = tern_type_transformers::render::struct_to_json(elsewhere.custom.as_ref().unwrap());
    custom.insert("databricksInstance".into(), json!("attacker.example.com"));
    elsewhere.custom = Some(json_to_struct(&custom));
    let e = agent.create(&ctx, TaskRequest { template: Box::new(elsewhere.clone()), inputs: Default::default() }).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::INSTANCE_NOT_ALLOWED);
    // No compute: refused before anything is sent.
    let bad = template(json!({"databricksConf": {"run_name": "x"}}), &[]);
    let e = agent.create(&ctx, TaskRequest { template: Box::new(bad), inputs: Default::default() }).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::BAD_TEMPLATE);
    // Unrendered propeller variables in the args: refused.
    let raw = python_task("/Shared/tern/ok.py", &["--inputs", "{{.input}}"]);
    let e = agent.create(&ctx, TaskRequest { template: Box::new(raw), inputs: Default::default() }).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::BAD_TEMPLATE);
    assert_eq!(m.runs().await.len(), 0, "nothing reached minilake");

    // The same template is accepted when `instances` maps that name to the emulator.
    let mapped = DatabricksConfig {
        instances: [("attacker.example.com".to_owned(), m.url.clone())].into(),
        ..config(&m)
    };
    let agent2 = DatabricksAgent::new(mapped, &services).unwrap();
    let meta = agent2.create(&ctx, TaskRequest { template: Box::new(elsewhere), inputs: Default::default() }).await.unwrap();
    assert_eq!(wait_terminal(&agent2, &ctx, &meta).await.phase, Phase::Succeeded);
    // Its handle is refused by an agent that does not know that workspace (NOT_FOUND).
    let e = agent.get(&ctx, &meta).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::INSTANCE_NOT_ALLOWED);

    // minilake serves only /api/2.2: a 2.1 client gets a clear, permanent refusal.
    let v21 = DatabricksAgent::new(DatabricksConfig { api_version: ApiVersion::V2_1, ..config(&m) }, &services).unwrap();
    let ctx2 = services.task_context("out/v21", Some(execution("v21")), None);
    let e = v21.create(&ctx2, TaskRequest { template: Box::new(python_task("/Shared/tern/ok.py", &[])), inputs: Default::default() }).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::REQUEST_REJECTED);
    assert!(e.message.contains("api_version"), "{}", e.message);

    // A run minilake does not have: NOT_FOUND; deleting it is fine (idempotent).
    let ghost = ResourceMeta::encode(&Handle { run_id: "99999".into(), instance: m.url.trim_start_matches("http://").into(), auth: tern_agent_databricks::client::AuthMethod::Pat, outputs: false }).unwrap();
    assert_eq!(agent.get(&ctx, &ghost).await.unwrap_err().code, tern_agent_databricks::codes::RUN_NOT_FOUND);
    agent.delete(&ctx, &ghost).await.unwrap();

    // The workspace unreachable: a retryable system error.
    let down = DatabricksAgent::new(DatabricksConfig { host: Some("http://127.0.0.1:9".into()), ..config(&m) }, &services).unwrap();
    let e = down.create(&ctx, TaskRequest { template: Box::new(python_task("/Shared/tern/ok.py", &[])), inputs: Default::default() }).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::UNAVAILABLE);
    assert!(e.is_retryable());
}

/// A test-side OAuth token endpoint: counts requests and checks the client credentials.
async fn token_endpoint(calls: Arc<Mutex<HashMap<String, u32>>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oidc/v1/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let calls = calls.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                loop {
                    let r = sock.read(&mut buf[n..]).await.unwrap_or(0);
                    n += r;
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    if r == 0 || (text.contains("\r\n\r\n") && text.contains("grant_type=")) {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                use base64::Engine as _;
                let expected = base64::engine::general_purpose::STANDARD.encode("sp-client:sp-secret");
                let ok = text.to_ascii_lowercase().contains(&format!("authorization: basic {}", expected.to_ascii_lowercase()))
                    && text.contains("grant_type=client_credentials&scope=all-apis");
                *calls.lock().unwrap().entry(if ok { "ok" } else { "bad" }.to_owned()).or_default() += 1;
                let (status, body) = if ok {
                    ("200 OK", r#"{"access_token":"oauth-access-1","token_type":"Bearer","expires_in":3600}"#)
                } else {
                    ("401 Unauthorized", r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#)
                };
                let answer = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_m2m_tokens_are_fetched_once_and_cached() {
    let Some(m) = support::start("oauth_m2m_tokens_are_fetched_once_and_cached").await else { return };
    m.import("/Shared/tern/ok.py", support::OK_PY).await;
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let endpoint = token_endpoint(calls.clone()).await;
    let secret = m.dir.path().join("client-secret");
    std::fs::write(&secret, "sp-secret").unwrap();
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let cfg = DatabricksConfig {
        token: None,
        client_id: Some("sp-client".into()),
        client_secret: Some(format!("file:{}", secret.display()).parse().unwrap()),
        token_endpoint: Some(endpoint.clone()),
        ..config(&m)
    };
    let agent = DatabricksAgent::new(cfg.clone(), &services).unwrap();
    let ctx = services.task_context("out/oauth", Some(execution("oauth")), None);
    let meta = agent.create(&ctx, TaskRequest { template: Box::new(python_task("/Shared/tern/ok.py", &[])), inputs: Default::default() }).await.unwrap();
    assert_eq!(wait_terminal(&agent, &ctx, &meta).await.phase, Phase::Succeeded);
    assert_eq!(calls.lock().unwrap().get("ok"), Some(&1), "one token for the create and every poll: {calls:?}");
    let handle = String::from_utf8(meta.as_bytes().to_vec()).unwrap();
    assert!(handle.contains("\"auth\":\"oauth_m2m\"") && !handle.contains("oauth-access-1") && !handle.contains("sp-secret"), "{handle}");

    // Wrong client secret: PERMISSION_DENIED-class user error, the secret not echoed.
    std::fs::write(&secret, "wrong").unwrap();
    let fresh = DatabricksAgent::new(cfg, &services).unwrap();
    let e = fresh.create(&ctx, TaskRequest { template: Box::new(python_task("/Shared/tern/ok.py", &[])), inputs: Default::default() }).await.unwrap_err();
    assert_eq!(e.code, tern_agent_databricks::codes::PERMISSION_DENIED, "{e}");
    assert!(e.message.contains("invalid_client") || e.message.contains("Client authentication failed"), "{}", e.message);
    assert!(!e.message.contains("wrong"), "{}", e.message);
}
