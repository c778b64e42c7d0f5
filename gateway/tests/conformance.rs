//! The agent conformance kit over real gRPC: `tern_gateway::serve_gateway` hosts the agents
//! a `tern.toml` configures for `tern serve` behind its router (owner-tagged handles,
//! confined data store, admission wrappers), and
//! the kit talks to it through `GrpcAgentClient`, as FlytePropeller or a remote Tern would.
//! The "remote" case of every agent.
// Each test needs its agent's cargo feature; with some off, helpers go unused.
#![cfg_attr(
    not(all(
        feature = "agent-echo",
        feature = "agent-sleep",
        feature = "agent-webhook",
        feature = "agent-shell",
        feature = "agent-duckdb"
    )),
    allow(unused_imports, dead_code)
)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_gateway::{GatewayConfig, Mode, ServeHandle};
use tern_type_transformers::render::json_to_struct;
use tern_type_transformers::{FlyteType, JsonDict, LiteralMapBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A gateway serving `toml` on a free port, and a gRPC client to it.
struct Remote {
    client: Arc<dyn AgentClient>,
    registry: Arc<AgentRegistry>,
    server: Option<ServeHandle>,
    _store: tempfile::TempDir,
}

impl Remote {
    async fn start(toml: &str) -> Self {
        let store = tempfile::tempdir().unwrap();
        let mut config =
            GatewayConfig::parse_with_env(toml, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new())).unwrap();
        config.data_store.root = store.path().to_owned();
        // Exactly what `tern serve` runs: the router (envelopes, limits) over the agents.
        let gateway = tern_gateway::Gateway::build(&config, Mode::Serve, Default::default()).unwrap();
        let server = tern_gateway::serve_gateway(&gateway, "127.0.0.1:0").await.unwrap();
        let client = GrpcAgentClient::connect_lazy(&server.local_addr.to_string(), ClientTimeouts::default()).unwrap();
        Self { client: Arc::new(client), registry: gateway.built.registry.clone(), server: Some(server), _store: store }
    }

    /// The served agent object behind `task_type` (for its declared states and mode).
    fn agent(&self, task_type: &str) -> AgentHandle {
        self.registry.lookup(&TaskCategory::new(task_type, 0)).unwrap().clone()
    }

    async fn check(mut self, case: Case) {
        let report = testkit::run(self.client.clone(), case).await;
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        assert!(report.target.starts_with("http://127.0.0.1:"), "{}", report.target);
        report.assert_passes();
    }
}

fn interface(outputs: &[(&str, core::LiteralType)]) -> Option<core::TypedInterface> {
    let variables = outputs
        .iter()
        .map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), ..Default::default() }))
        .collect();
    Some(core::TypedInterface { inputs: None, outputs: Some(core::VariableMap { variables }) })
}

fn toml_path(p: &Path) -> String {
    p.display().to_string().replace('\\', "\\\\")
}

fn count_files(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

#[cfg(feature = "agent-echo")]
#[tokio::test]
async fn echo_over_grpc() {
    // A limit puts echo behind the gateway's call-scoped admission wrapper.
    let remote = Remote::start("[agents.echo]\nmax_concurrency = 4\n").await;
    let inputs = LiteralMapBuilder::new().with("n", &7i64).unwrap().build();
    let template = core::TaskTemplate {
        r#type: "echo".into(),
        interface: interface(&[("n", i64::literal_type())]),
        ..Default::default()
    };
    let wrong = LiteralMapBuilder::new().with("n", &"seven".to_owned()).unwrap().build();
    let case = Case::new(template.clone(), inputs.clone())
        .expect_outputs(inputs)
        .failing(template, wrong)
        .agent(remote.agent("echo"))
        .self_describing_handles()
        .no_backend_states("echo has no backend");
    remote.check(case).await;
}

#[cfg(feature = "agent-sleep")]
#[tokio::test]
async fn sleep_over_grpc() {
    let remote = Remote::start("[agents.sleep]\n").await;
    let template = core::TaskTemplate { r#type: "sleep".into(), ..Default::default() };
    let seconds = |s: f64| LiteralMapBuilder::new().with("duration", &s).unwrap().build();
    let case = Case::new(template.clone(), seconds(0.05))
        .failing(template.clone(), seconds(-1.0))
        .long_running(template, seconds(600.0))
        .agent(remote.agent("sleep"))
        .self_describing_handles()
        .no_backend_states("sleep has no backend");
    remote.check(case).await;
}

/// Answers 200 `{"ok": true}` on `/ok…`, 500 elsewhere, counting requests.
async fn http_endpoint() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicU64::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let ok = head.starts_with(b"GET /ok");
                let (status, body) = if ok { ("200 OK", "{\"ok\": true}") } else { ("500 Internal Server Error", "no") };
                let response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, hits)
}

#[cfg(feature = "agent-webhook")]
#[tokio::test]
async fn webhook_over_grpc() {
    let (addr, hits) = http_endpoint().await;
    let remote = Remote::start(&format!("[agents.webhook]\nallowed_hosts = [\"{addr}\"]\nmax_concurrency = 4\n")).await;
    let template = |path: &str| {
        let custom = json!({"url": format!("http://{addr}{path}"), "method": "GET"});
        core::TaskTemplate {
            r#type: "webhook".into(),
            custom: Some(json_to_struct(custom.as_object().unwrap())),
            interface: interface(&[("info", JsonDict::literal_type())]),
            ..Default::default()
        }
    };
    let info: Value = json!({"status_code": 200, "response_data": "{\"ok\": true}"});
    let expected = core::LiteralMap {
        literals: [("info".to_owned(), JsonDict(info.as_object().unwrap().clone()).to_literal().unwrap())].into(),
    };
    let case = Case::new(template("/ok"), core::LiteralMap::default())
        .expect_outputs(expected)
        .failing(template("/fail"), core::LiteralMap::default())
        .count_jobs(move || {
            let n = hits.load(Ordering::SeqCst);
            async move { n }
        })
        .settle(Duration::from_millis(50))
        .agent(remote.agent("webhook"))
        .no_backend_states("a webhook call has no states");
    remote.check(case).await;
}

#[cfg(feature = "agent-shell")]
#[tokio::test]
async fn shell_over_grpc() {
    let scratch = tempfile::tempdir().unwrap();
    let runs: PathBuf = scratch.path().join("runs.txt");
    let remote = Remote::start(&format!(
        "[agents.shell]\nenabled = true\nscratch_root = \"{}\"\ninherit_env = [\"PATH\"]\n",
        toml_path(scratch.path())
    ))
    .await;
    let template = |script: &str, custom: Value, outputs: &[(&str, core::LiteralType)]| core::TaskTemplate {
        r#type: "shell".into(),
        target: Some(core::task_template::Target::Container(core::Container {
            command: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        })),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        interface: interface(outputs),
        ..Default::default()
    };
    let success = template(
        &format!("echo run >> '{}'; echo 42", runs.display()),
        json!({"outputs": {"n": {"from": "stdout"}}}),
        &[("n", i64::literal_type())],
    );
    let counted = runs.clone();
    let case = Case::new(success, core::LiteralMap::default())
        .expect_outputs(LiteralMapBuilder::new().with("n", &42i64).unwrap().build())
        .failing(template("exit 3", json!({}), &[]), core::LiteralMap::default())
        .long_running(template("sleep 600", json!({}), &[]), core::LiteralMap::default())
        .count_jobs(move || {
            let n = std::fs::read_to_string(&counted).map(|t| t.lines().count() as u64).unwrap_or(0);
            async move { n }
        })
        .agent(remote.agent("shell"))
        .no_backend_states("commands run in the gateway process")
        .poll_timeout(Duration::from_secs(20));
    remote.check(case).await;
}

#[cfg(feature = "agent-duckdb")]
#[tokio::test]
async fn duckdb_over_grpc() {
    let counter = tempfile::tempdir().unwrap();
    let runs = counter.path().join("runs");
    let remote = Remote::start(&format!(
        "[agents.duckdb]\nenabled = true\nallowed_directories = [\"{}\"]\nmax_concurrency = 4\n",
        toml_path(counter.path())
    ))
    .await;
    let template = |sql: &str, outputs: &[(&str, core::LiteralType)]| core::TaskTemplate {
        r#type: "duckdb".into(),
        interface: interface(outputs),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 0 })),
        ..Default::default()
    };
    let success = template(
        &format!(
            "COPY (SELECT 1 AS k, 1 AS one) TO '{}' (FORMAT csv, PARTITION_BY (k), APPEND, FILENAME_PATTERN 'run_{{uuid}}'); SELECT 42 AS n",
            runs.display()
        ),
        &[("n", i64::literal_type())],
    );
    let counted = runs.clone();
    let case = Case::new(success, core::LiteralMap::default())
        .expect_outputs(LiteralMapBuilder::new().with("n", &42i64).unwrap().build())
        .failing(template("SELECT nope FROM range(1)", &[]), core::LiteralMap::default())
        .long_running(
            template("SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1", &[]),
            core::LiteralMap::default(),
        )
        .count_jobs(move || {
            let n = count_files(&counted);
            async move { n }
        })
        .agent(remote.agent("duckdb"))
        .no_backend_states("queries run in the gateway process")
        .poll_timeout(Duration::from_secs(60));
    remote.check(case).await;
}
