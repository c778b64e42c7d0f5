//! A Lepton workspace API for tests: the REST shapes of the open-source `leptonai` SDK
//! (0.27.3: `api/v1/deployment.py`, `api/v1/log.py`, `api/v1/types/deployment.py`,
//! `api/v2/client.py`, error bodies as `cli/util.py` reads them), served over loopback by
//! axum, so the agent's real reqwest client is on the path. No emulator of Lepton exists.
//!
//! Under `/api/v2/workspaces/{workspace}`:
//! - `POST /deployments` — a `LeptonDeployment` (`metadata.id`/`name`, `spec`); 409
//!   `AlreadyExists` for a taken name, 400 `InvalidParameter` for no image or an unknown
//!   resource shape (`gpu.unavailable`); counts every deployment it creates.
//! - `GET /deployments/{name}` — the deployment with `status.state` and
//!   `status.endpoint.external_endpoint`; states progress `Starting` → `Not Ready` →
//!   `Ready` over polls (an image containing `never-ready` stays `Not Ready`), `Deleting`
//!   once after a DELETE, then 404 `NotFound`. A driven state overrides all of it.
//! - `DELETE /deployments/{name}` — 404 when absent.
//! - `GET /logs?deployment=…` — `{"status":"success","data":{"result":[{"stream":…,"values":[[ns, line]]}]}}`.
//!
//! Every call needs `Authorization: Bearer <token>` (401 `Unauthorized` otherwise).
//!
//! For tests in another process (the example binary `lepton_test_server`, which tests/interop/test_lepton.py
//! starts), two test-only hooks: `GET /_tern_test/count` → `{"created": n}` and `POST /_tern_test/drive` with
//! `{"state": "Ready" | null}`.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

pub const WORKSPACE: &str = "tern-test-ws";
pub const TOKEN: &str = "lepton-test-token-0123";

#[derive(Debug, Clone)]
pub struct Deployment {
    pub body: Value,
    pub polls: u32,
    pub deleting: bool,
    pub deleting_seen: bool,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub deployments: BTreeMap<String, Deployment>,
    /// Deployments ever created (POST answered 200).
    pub created: u64,
    pub posts: u64,
    pub deletes: u64,
    /// Every deployment reports this state when set.
    pub forced: Option<String>,
    /// Polls before `Ready`.
    pub ready_after: u32,
}

/// The shared state: tests read counts and drive states through it.
#[derive(Debug, Clone)]
pub struct Lepton {
    pub state: Arc<Mutex<Inner>>,
}

impl Lepton {
    pub fn created(&self) -> u64 {
        self.state.lock().unwrap().created
    }

    pub fn drive(&self, state: Option<&str>) {
        self.state.lock().unwrap().forced = state.map(str::to_owned);
    }

    pub fn deployment(&self, name: &str) -> Option<Deployment> {
        self.state.lock().unwrap().deployments.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.state.lock().unwrap().deployments.keys().cloned().collect()
    }
}

pub struct Server {
    pub url: String,
    pub lepton: Lepton,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, [("content-type", "application/json")], json!({"code": code, "message": message}).to_string()).into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response()
}

/// The refusal of a call to another workspace (404) or without the token (401), if any.
fn refuse(ws: &str, headers: &HeaderMap) -> Option<Response> {
    if ws != WORKSPACE {
        return Some(error(StatusCode::NOT_FOUND, "WorkspaceNotFound", format!("workspace {ws} not found")));
    }
    let want = format!("Bearer {TOKEN}");
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == want => None,
        _ => Some(error(StatusCode::UNAUTHORIZED, "Unauthorized", "invalid or missing workspace token".into())),
    }
}

async fn create(State(l): State<Lepton>, Path(ws): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = refuse(&ws, &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "InvalidRequest", "the body is not JSON".into());
    };
    let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    if name.is_empty() || body.pointer("/metadata/id").and_then(Value::as_str) != Some(name.as_str()) {
        return error(StatusCode::BAD_REQUEST, "InvalidParameter", "metadata.id and metadata.name are required and equal".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.len() > 36 || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return error(StatusCode::BAD_REQUEST, "InvalidParameter", format!("invalid deployment name {name:?}"));
    }
    if body.pointer("/spec/container/image").and_then(Value::as_str).is_none_or(str::is_empty) {
        return error(StatusCode::BAD_REQUEST, "InvalidParameter", "spec.container.image is required".into());
    }
    if body.pointer("/spec/resource_requirement/resource_shape").and_then(Value::as_str) == Some("gpu.unavailable") {
        return error(StatusCode::BAD_REQUEST, "InvalidParameter", "resource shape gpu.unavailable is not available in this workspace".into());
    }
    let mut s = l.state.lock().unwrap();
    s.posts += 1;
    if s.deployments.contains_key(&name) {
        return error(StatusCode::CONFLICT, "AlreadyExists", format!("deployment {name} already exists"));
    }
    s.created += 1;
    s.deployments.insert(name, Deployment { body: body.clone(), polls: 0, deleting: false, deleting_seen: false });
    ok(body)
}

async fn read(State(l): State<Lepton>, Path((ws, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse(&ws, &headers) {
        return r;
    }
    let mut s = l.state.lock().unwrap();
    let forced = s.forced.clone();
    let ready_after = s.ready_after;
    let not_found = || error(StatusCode::NOT_FOUND, "NotFound", format!("deployment {name} not found"));
    let Some(d) = s.deployments.get_mut(&name) else { return not_found() };
    let state = if d.deleting {
        if d.deleting_seen {
            s.deployments.remove(&name);
            return not_found();
        }
        d.deleting_seen = true;
        "Deleting".to_owned()
    } else {
        d.polls += 1;
        let never = d.body.pointer("/spec/container/image").and_then(Value::as_str).is_some_and(|i| i.contains("never-ready"));
        if never {
            "Not Ready".into()
        } else if d.polls <= 1 {
            "Starting".into()
        } else if d.polls <= ready_after {
            "Not Ready".into()
        } else {
            "Ready".into()
        }
    };
    let state = forced.unwrap_or(state);
    let mut body = d.body.clone();
    body["status"] = json!({
        "state": state,
        "endpoint": {
            "internal_endpoint": format!("http://{name}.{ws}.svc.cluster.local:8080"),
            "external_endpoint": format!("https://{ws}-{name}.xenon.lepton.run"),
        },
        "autoscaler_status": {"desired_replicas": 1},
    });
    ok(body)
}

async fn remove(State(l): State<Lepton>, Path((ws, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse(&ws, &headers) {
        return r;
    }
    let mut s = l.state.lock().unwrap();
    s.deletes += 1;
    match s.deployments.get_mut(&name) {
        None => error(StatusCode::NOT_FOUND, "NotFound", format!("deployment {name} not found")),
        Some(d) => {
            d.deleting = true;
            (StatusCode::OK, "").into_response()
        }
    }
}

async fn logs(State(l): State<Lepton>, Path(ws): Path<String>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = refuse(&ws, &headers) {
        return r;
    }
    let q = q.unwrap_or_default();
    let name = q.split('&').find_map(|kv| kv.strip_prefix("deployment=")).unwrap_or_default().to_owned();
    let s = l.state.lock().unwrap();
    let Some(d) = s.deployments.get(&name) else {
        return ok(json!({"status": "success", "data": {"resultType": "streams", "result": []}}));
    };
    let image = d.body.pointer("/spec/container/image").and_then(Value::as_str).unwrap_or_default();
    let base: u128 = 1_764_547_200_000_000_000;
    ok(json!({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"deployment": name, "replica": format!("{name}-r2")},
         "values": [[format!("{}", base + 3), format!("{name}: serving on :8080\n")]]},
        {"stream": {"deployment": name, "replica": format!("{name}-r1")},
         "values": [[format!("{}", base + 2), format!("{name}: model loaded")], [format!("{}", base + 1), format!("{name}: pulling {image}")]]}
    ]}}))
}

async fn count(State(l): State<Lepton>) -> Response {
    ok(json!({"created": l.created()}))
}

async fn drive(State(l): State<Lepton>, body: Bytes) -> Response {
    let state = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("state").and_then(Value::as_str).map(str::to_owned));
    l.drive(state.as_deref());
    ok(json!({"state": state}))
}

/// Starts the server on a free loopback port.
pub async fn start() -> Server {
    let lepton = Lepton { state: Arc::new(Mutex::new(Inner { ready_after: 2, ..Default::default() })) };
    let app = Router::new()
        .route("/api/v2/workspaces/{ws}/deployments", axum::routing::post(create))
        .route("/api/v2/workspaces/{ws}/deployments/{name}", get(read).delete(remove))
        .route("/api/v2/workspaces/{ws}/logs", get(logs))
        .route("/_tern_test/count", get(count))
        .route("/_tern_test/drive", axum::routing::post(drive))
        .with_state(lepton.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { url, lepton, task }
}
