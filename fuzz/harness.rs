//! The bodies of Tern's fuzz targets, one plain function per target.
//!
//! Compiled twice: by `cargo fuzz` (nightly, `fuzz/fuzz_targets/<target>.rs`) and by the root
//! crate's `tests/fuzz_corpus.rs` (stable), which replays every committed corpus file through
//! the same function, so CI keeps what fuzzing found without fuzzing. Each function takes
//! arbitrary bytes, must never panic, and asserts a property where one holds (round trips).
//!
//! Nothing here dials the network or runs a command: the gateways below point every
//! networked agent at a closed loopback port, and the agents that run code on this host
//! (shell, dask, gpu, duckdb, sleep) only ever see GetTask/DeleteTask/metrics/logs, never a
//! CreateTask.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prost::Message;
use tern_agent_api::client::AgentClient;
use tern_agent_api::dispatch::InProcessClient;
use tern_agent_api::server::AgentGrpcService;
use tern_agent_api::{admin, core};
use tern_core_engine::WorkflowSpec;
use tern_gateway::{GatewayConfig, Mode};
use tern_type_transformers::{FlyteDirectory, FlyteFile, FlyteType, JsonDict, StructuredDataset, Union2, Union3};

// ---------------------------------------------------------------------------------------
// shared state: one runtime, two in-process gateways
// ---------------------------------------------------------------------------------------

/// A port nothing listens on (the discard port, closed on any sane host): a networked agent
/// given a handle that passes its checks fails at once with "connection refused".
const CLOSED: &str = "http://127.0.0.1:9";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime"))
}

struct Gateway {
    client: InProcessClient,
    grpc: AgentGrpcService,
}

struct Gateways {
    /// Every embedded agent, the ones that run code included: only handle-taking calls.
    every: Gateway,
    /// The agents whose CreateTask/ExecuteTaskSync has no effect on this host.
    create: Gateway,
    /// Categories (name, version) `every` serves, for the resource_meta target.
    categories: Vec<(String, i32)>,
    _dir: tempfile::TempDir,
}

/// Backend agents, each aimed at the closed port with a short deadline and fake credentials.
fn backend_sections(dir: &std::path::Display<'_>) -> String {
    format!(
        r#"
[agents.webhook]
allowed_hosts = ["127.0.0.1:9"]
connect_timeout = "1s"
max_timeout = "2s"

[agents.snowflake]
endpoint = "{CLOSED}"
account = "fuzz"
user = "fuzz"
password = "env:FUZZ_SECRET"
request_timeout = "2s"
max_retries = 0

[agents.bigquery]
endpoint = "{CLOSED}"
auth = "anonymous"
default_project = "fuzz-project"
request_timeout = "2s"

[agents.databricks]
host = "{CLOSED}"
token = "env:FUZZ_SECRET"
task_types = ["databricks"]
request_timeout = "2s"

[agents.batch]
job_queue = "fuzz"
region = "us-east-1"
endpoint_url = "{CLOSED}"
logs_endpoint_url = "{CLOSED}"
access_key_id = "env:FUZZ_SECRET"
secret_access_key = "env:FUZZ_SECRET"
request_timeout = "2s"
max_attempts = 1

[agents.ray]
address = "{CLOSED}"
request_timeout = "2s"

[agents.spark]
mode = "standalone"
rest_url = "{CLOSED}"
work_dir = "{dir}/spark"

[agents.lepton]
workspace_id = "fuzz"
token = "env:FUZZ_SECRET"
api_url = "{CLOSED}"
request_timeout = "2s"
"#
    )
}

fn build_gateway(text: &str, dir: &Path) -> Gateway {
    let env: BTreeMap<String, String> = [("FUZZ_SECRET", "fuzz-secret-value"), ("HOME", "/nonexistent")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut config = GatewayConfig::parse_with_env(text, Some(Path::new("tern.toml")), Arc::new(env))
        .unwrap_or_else(|e| panic!("fuzz gateway config: {e}\n{text}"));
    config.data_store.root = dir.join("data");
    let (client, _built) =
        tern_gateway::in_process_client(&config, Mode::Serve).unwrap_or_else(|e| panic!("fuzz gateway: {e}"));
    let grpc = AgentGrpcService::new(Arc::new(client.clone()));
    Gateway { client, grpc }
}

fn gateways() -> &'static Gateways {
    static G: OnceLock<Gateways> = OnceLock::new();
    G.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let _rt = runtime().enter();
        let every = format!(
            r#"
[agents.echo]
[agents.sleep]
state_dir = "{d}/sleep"
[agents.duckdb]
[agents.shell]
enabled = true
scratch_root = "{d}/shell"
[agents.dask]
enabled = true
state_dir = "{d}/dask"
[agents.gpu]
enabled = true
state_dir = "{d}/gpu"
fake_devices = [{{ uuid = "GPU-fuzz-0", name = "Tesla T4" }}]
{}"#,
            backend_sections(&d)
        );
        let create = format!("[agents.echo]\n{}", backend_sections(&d));
        let every = build_gateway(&every, dir.path());
        let create = build_gateway(&create, dir.path());
        let categories = every
            .client
            .registry()
            .agents()
            .into_iter()
            .flat_map(|a| a.supported_task_categories.into_iter().map(|c| (c.name, c.version)))
            .collect();
        Gateways { every, create, categories, _dir: dir }
    })
}

/// The task categories the fuzz gateway serves (the replay test checks every agent is there).
pub fn served_categories() -> Vec<(String, i32)> {
    gateways().categories.clone()
}

/// `TERN_FUZZ_VERBOSE=1`: print each call's outcome (to check what seeds reach).
fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("TERN_FUZZ_VERBOSE").is_some())
}

// ---------------------------------------------------------------------------------------
// grpc_request: a raw request body for any RPC, through tonic's framing and our codec
// ---------------------------------------------------------------------------------------

/// The RPCs, by the first input byte.
pub const RPCS: [&str; 8] = [
    "/flyteidl.service.AsyncAgentService/CreateTask",
    "/flyteidl.service.AsyncAgentService/GetTask",
    "/flyteidl.service.AsyncAgentService/DeleteTask",
    "/flyteidl.service.AsyncAgentService/GetTaskMetrics",
    "/flyteidl.service.AsyncAgentService/GetTaskLogs",
    "/flyteidl.service.SyncAgentService/ExecuteTaskSync",
    "/flyteidl.service.AgentMetadataService/GetAgent",
    "/flyteidl.service.AgentMetadataService/ListAgents",
];

async fn call<S>(service: S, request: http::Request<Full<Bytes>>) -> (http::StatusCode, Option<String>)
where
    S: tower_service::Service<
        http::Request<Full<Bytes>>,
        Response = http::Response<tonic::body::Body>,
        Error = Infallible,
    >,
{
    let mut service = service;
    let response = match service.call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status();
    let mut grpc_status = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Drain the body: the reply is encoded, and a streamed reply's trailers carry its status.
    if let Ok(collected) = response.into_body().collect().await {
        if let Some(t) = collected.trailers() {
            if let Some(s) = t.get("grpc-status").and_then(|v| v.to_str().ok()) {
                grpc_status = Some(s.to_owned());
            }
        }
    }
    (status, grpc_status)
}

/// Frames one protobuf message the way a gRPC client sends it.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Input: one byte choosing the RPC, then the HTTP/2 request body (gRPC-framed messages).
pub fn grpc_request(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else { return };
    let rpc = usize::from(which) % RPCS.len();
    let g = gateways();
    // CreateTask and ExecuteTaskSync start work: only on the gateway whose agents have no
    // effect here; every other call goes to the gateway with every agent.
    let gateway = if matches!(rpc, 0 | 5) { &g.create } else { &g.every };
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://fuzz{}", RPCS[rpc]))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let (status, grpc_status) = runtime().block_on(async {
        match rpc {
            0..=4 => call(gateway.grpc.async_server(), request).await,
            5 => call(gateway.grpc.sync_server(), request).await,
            _ => call(gateway.grpc.metadata_server(), request).await,
        }
    });
    if verbose() {
        eprintln!("{} -> grpc-status {grpc_status:?}", RPCS[rpc]);
    }
    // Every answer is a gRPC answer: HTTP 200 with a status code.
    assert_eq!(status, http::StatusCode::OK, "{}", RPCS[rpc]);
    assert!(grpc_status.is_some(), "{}: no grpc-status", RPCS[rpc]);
}

// ---------------------------------------------------------------------------------------
// resource_meta: arbitrary handles into every agent's GetTask/DeleteTask/metrics/logs
// ---------------------------------------------------------------------------------------

/// Input: a byte choosing the call, the task category's name, a NUL, then the handle. A name
/// the gateway does not serve picks a served category by its first byte (so mutations of the
/// name still reach an agent).
pub fn resource_meta(data: &[u8]) {
    let Some((&op, rest)) = data.split_first() else { return };
    let (name, meta) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let g = gateways();
    let served = g.categories.iter().find(|(n, _)| n.as_bytes() == name);
    let (name, version) = match served {
        Some(c) => c.clone(),
        None => g.categories[usize::from(name.first().copied().unwrap_or(0)) % g.categories.len()].clone(),
    };
    let category = Some(admin::TaskCategory { name, version });
    let client = &g.every.client;
    let meta = meta.to_vec();
    let outcome = runtime().block_on(async {
        match op % 4 {
            0 => client
                .get_task(admin::GetTaskRequest {
                    task_category: category.clone(),
                    resource_meta: meta,
                    ..Default::default()
                })
                .await
                .map(drop),
            1 => {
                client
                    .delete_task(admin::DeleteTaskRequest {
                        task_category: category.clone(),
                        resource_meta: meta,
                        ..Default::default()
                    })
                    .await
            }
            2 => client
                .get_task_metrics(admin::GetTaskMetricsRequest {
                    task_category: category.clone(),
                    resource_meta: meta,
                    queries: vec!["cpu".into()],
                    ..Default::default()
                })
                .await
                .map(drop),
            _ => client
                .get_task_logs(admin::GetTaskLogsRequest {
                    task_category: category.clone(),
                    resource_meta: meta,
                    lines: 10,
                    ..Default::default()
                })
                .await
                .map(drop),
        }
    });
    if verbose() {
        eprintln!(
            "resource_meta {category:?} op {} -> {:?}",
            op % 4,
            outcome.map_err(|e| format!("{} {}", e.code, e.message))
        );
    }
}

// ---------------------------------------------------------------------------------------
// literal: decoding every FlyteType
// ---------------------------------------------------------------------------------------

#[derive(FlyteType, Debug, PartialEq)]
enum Color {
    Red,
    Green,
}

#[derive(FlyteType, Debug, PartialEq)]
struct Inner {
    a: i64,
    b: Vec<String>,
}

#[derive(FlyteType, Debug, PartialEq)]
struct Point {
    x: i64,
    y: f64,
    label: Option<String>,
    tags: Vec<String>,
    color: Color,
    inner: Option<Inner>,
    extra: HashMap<String, f64>,
}

/// `T` reads `literal`; when it does, what it writes reads back and is written the same.
fn round_trip<T: FlyteType>(literal: &core::Literal) {
    let Ok(value) = T::from_literal(literal) else { return };
    let Ok(written) = value.to_literal() else { return };
    let name = std::any::type_name::<T>();
    let again = T::from_literal(&written)
        .unwrap_or_else(|e| panic!("{name}: reading back what it wrote failed: {e}\nwritten: {written:?}"));
    let rewritten = again.to_literal().unwrap_or_else(|e| panic!("{name}: writing a value read back failed: {e}"));
    assert!(
        written.encode_to_vec() == rewritten.encode_to_vec(),
        "{name}: decode→encode→decode is not stable\nfirst: {written:?}\nsecond: {rewritten:?}"
    );
}

/// Every `FlyteType` implementation, plus the untyped paths (render, infer, msgpack, registry).
pub fn check_literal(literal: &core::Literal) {
    use tern_type_transformers::{infer, msgpack, msgpack_literal, registry, render};
    round_trip::<bool>(literal);
    round_trip::<i8>(literal);
    round_trip::<i16>(literal);
    round_trip::<i32>(literal);
    round_trip::<i64>(literal);
    round_trip::<u8>(literal);
    round_trip::<u16>(literal);
    round_trip::<u32>(literal);
    round_trip::<u64>(literal);
    round_trip::<f32>(literal);
    round_trip::<f64>(literal);
    round_trip::<String>(literal);
    round_trip::<tern_type_transformers::Bytes>(literal);
    round_trip::<chrono::DateTime<chrono::Utc>>(literal);
    round_trip::<chrono::Duration>(literal);
    round_trip::<std::time::Duration>(literal);
    round_trip::<Vec<i64>>(literal);
    round_trip::<Vec<String>>(literal);
    round_trip::<Vec<Vec<f64>>>(literal);
    round_trip::<HashMap<String, i64>>(literal);
    round_trip::<BTreeMap<String, String>>(literal);
    round_trip::<Option<i64>>(literal);
    round_trip::<Option<String>>(literal);
    round_trip::<Union2<i64, String>>(literal);
    round_trip::<Union3<i64, f64, String>>(literal);
    round_trip::<serde_json::Value>(literal);
    round_trip::<JsonDict>(literal);
    round_trip::<FlyteFile>(literal);
    round_trip::<FlyteDirectory>(literal);
    round_trip::<StructuredDataset>(literal);
    round_trip::<Color>(literal);
    round_trip::<Point>(literal);
    round_trip::<Vec<Point>>(literal);
    round_trip::<HashMap<String, Point>>(literal);
    round_trip::<Option<Point>>(literal);
    round_trip::<Union2<Point, i64>>(literal);

    let ty = infer::infer_type(literal);
    let _ = render::literal_to_json(literal);
    let _ = tern_type_transformers::literals::describe(literal);
    let _ = msgpack::msgpack_literal_to_json(literal);
    let _ = msgpack_literal::literal_to_msgpack(literal);
    let reg = registry::TypeRegistry::new();
    if let Ok(json) = reg.to_json(literal, &ty) {
        let _ = reg.from_json(&json, &ty);
    }
}

/// Input: a byte choosing the form, then: a protobuf `Literal`; msgpack bytes (flytekit's
/// `Binary` literal for dicts and dataclasses); or JSON (a `Struct`, and its msgpack form).
pub fn literal(data: &[u8]) {
    let Some((&form, rest)) = data.split_first() else { return };
    match form % 3 {
        0 => {
            if let Ok(l) = core::Literal::decode(rest) {
                check_literal(&l);
            }
        }
        1 => {
            check_literal(&tern_type_transformers::literals::msgpack_binary(rest.to_vec()));
            if let Ok(v) = tern_type_transformers::msgpack_literal::decode(rest, "fuzz") {
                let _ = tern_type_transformers::msgpack_literal::describe_msgpack(&v);
            }
        }
        _ => {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
            check_literal(&tern_type_transformers::msgpack::json_to_msgpack_literal(&json));
            if let serde_json::Value::Object(o) = &json {
                let s = tern_type_transformers::structs::json_to_struct(o);
                check_literal(&tern_type_transformers::literals::scalar(core::scalar::Value::Generic(s)));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// workflow: YAML parse + compile
// ---------------------------------------------------------------------------------------

/// Input: workflow YAML. Compiling either succeeds or names every problem with a TERN-E code.
pub fn workflow(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let spec = match WorkflowSpec::parse(text, "fuzz.yaml") {
        Ok(s) => s,
        Err(e) => {
            assert!(e.code.starts_with("TERN-E"), "parse error without an engine code: {e}");
            return;
        }
    };
    match tern_core_engine::compile::compile(&spec) {
        Ok(wf) => {
            let _ = wf.summary_json();
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty(), "compile failed without naming a problem");
            for e in &errors.errors {
                assert!(e.code.starts_with("TERN-E"), "compile error without an engine code: {e:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// tern_toml: gateway configuration
// ---------------------------------------------------------------------------------------

fn host() -> &'static tern_agent_api::factory::HostResources {
    static HOST: OnceLock<tern_agent_api::factory::HostResources> = OnceLock::new();
    HOST.get_or_init(|| tern_agent_api::factory::HostResources {
        cpus: 2,
        memory_bytes: Some(8 << 30),
        ..tern_agent_api::factory::HostResources::detect()
    })
}

/// Input: `tern.toml` text. Parsed, then planned against every compiled-in agent (no agent
/// is built: that would create directories), then rendered as `tern config show` does.
pub fn tern_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = GatewayConfig::parse_with_env(text, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new()))
    else {
        return;
    };
    let entries = tern_gateway::registry::compiled::compiled_in();
    for mode in [Mode::Serve, Mode::Embedded] {
        let Ok(planned) = tern_gateway::registry::plan(&config, mode, host(), &entries) else { continue };
        if let Ok(shown) = tern_gateway::config::show::render_toml(&config, &planned, mode) {
            assert!(shown.parse::<toml::Table>().is_ok(), "`tern config show` printed invalid TOML:\n{shown}");
        }
        let _ = tern_gateway::config::show::render_json(&config, &planned);
    }
}

// ---------------------------------------------------------------------------------------
// input_text: `tern run --input NAME=VALUE` for every type
// ---------------------------------------------------------------------------------------

fn every_type() -> &'static Vec<core::LiteralType> {
    static TYPES: OnceLock<Vec<core::LiteralType>> = OnceLock::new();
    TYPES.get_or_init(|| {
        vec![
            bool::literal_type(),
            i64::literal_type(),
            f64::literal_type(),
            String::literal_type(),
            tern_type_transformers::Bytes::literal_type(),
            chrono::DateTime::<chrono::Utc>::literal_type(),
            chrono::Duration::literal_type(),
            Vec::<i64>::literal_type(),
            Vec::<Vec<String>>::literal_type(),
            HashMap::<String, f64>::literal_type(),
            Option::<i64>::literal_type(),
            Union3::<i64, f64, String>::literal_type(),
            serde_json::Value::literal_type(),
            JsonDict::literal_type(),
            FlyteFile::literal_type(),
            FlyteDirectory::literal_type(),
            StructuredDataset::literal_type(),
            Color::literal_type(),
            Point::literal_type(),
            Vec::<Point>::literal_type(),
        ]
    })
}

/// Input: `NAME=VALUE` as given to `--input`, optionally after a type expression line
/// (`list<integer>\n…`). The value is read as every type; what reads is rendered.
pub fn input_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (declared, raw) = match text.split_once('\n') {
        Some((ty, rest)) => (tern_type_transformers::types::parse_type_expr(ty).ok(), rest),
        None => (None, text),
    };
    let value = match tern_core_engine::split_input(raw) {
        Some((_, v)) => v,
        None => raw.to_owned(),
    };
    if let Some(ty) = &declared {
        let _ = tern_type_transformers::types::type_expr(ty);
        if let Ok(l) = tern_type_transformers::parse::parse_literal(&value, ty) {
            let _ = tern_type_transformers::render::literal_to_json(&l);
        }
    }
    for ty in every_type() {
        if let Ok(l) = tern_type_transformers::parse::parse_literal(&value, ty) {
            let _ = tern_type_transformers::render::literal_to_json(&l);
        }
    }
}
