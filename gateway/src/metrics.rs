//! Prometheus metrics of the gateway, served on `/metrics` ([`serve_metrics`]).
//!
//! Where flytekit's connector server exports a metric with the same meaning, the same name
//! and labels are used, so existing dashboards keep working:
//! `flyte_connector_requests_success_total{task_type,operation}`,
//! `flyte_connector_requests_failure_total{task_type,operation,error_code}` (HTTP-like
//! codes as flytekit: 404, 500, …), `flyte_connector_request_latency_seconds{task_type,operation}`
//! (a histogram here; a summary in flytekit) and `flyte_connector_input_literal_bytes{task_type}`.
//! Tern's own add every RPC and the exact status: `tern_requests_total{rpc,task_type,status}`,
//! `tern_request_duration_seconds{rpc,task_type}`, `tern_requests_in_flight{rpc}`,
//! `tern_agent_tasks{agent,state}` (running/queued tasks per agent),
//! `tern_route_endpoint_healthy{group,endpoint,region}`, and the server's overload layer:
//! `tern_server_calls_in_flight` and `tern_server_calls_shed_total{reason}`.
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tern_agent_api::metrics::AgentMetrics;
use tern_agent_api::prelude::AgentError;

use crate::error::GatewayError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    task_type: String,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failure {
    task_type: String,
    operation: &'static str,
    error_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskType {
    task_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcStatus {
    rpc: &'static str,
    task_type: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcType {
    rpc: &'static str,
    task_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rpc {
    rpc: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentState {
    agent: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// The series the server's overload layer updates (clones share them). Its refusals
/// never reach the agent services, so `tern_requests_total` does not count them.
#[derive(Clone, Default)]
pub struct ServerSeries {
    /// Calls holding a `max_in_flight` slot.
    pub in_flight: Gauge,
    /// Refused: every slot taken.
    pub refused_full: Counter,
    /// Refused: the gateway is draining.
    pub refused_draining: Counter,
    /// Ended at the call's deadline.
    pub deadline: Counter,
    /// Ended at the drain deadline.
    pub drain_deadline: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    group: String,
    endpoint: String,
    region: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~52 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

fn bytes_histogram() -> Histogram {
    // 64 B … 64 MiB
    Histogram::new(exponential_buckets(64.0, 4.0, 11))
}

/// The gateway's metrics and the registry agents register theirs in.
pub struct GatewayMetrics {
    registry: Arc<Mutex<Registry>>,
    success: Family<Operation, Counter>,
    failure: Family<Failure, Counter>,
    latency: Family<Operation, Histogram, fn() -> Histogram>,
    input_bytes: Family<TaskType, Histogram, fn() -> Histogram>,
    requests: Family<RpcStatus, Counter>,
    duration: Family<RpcType, Histogram, fn() -> Histogram>,
    agent_tasks: Family<AgentState, Gauge>,
    endpoint_healthy: Family<EndpointLabels, Gauge>,
    ok_series: [SeriesCache; 8],
    input_bytes_cache: std::sync::RwLock<std::collections::HashMap<String, Histogram>>,
    in_flight_by_rpc: [Gauge; 8],
    server: ServerSeries,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayMetrics")
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The RPCs measured, in a fixed order (index into per-RPC arrays).
const RPCS: [&str; 8] =
    ["CreateTask", "GetTask", "DeleteTask", "ExecuteTaskSync", "GetTaskMetrics", "GetTaskLogs", "ListAgents", "GetAgent"];

/// Distinct `task_type` label values kept; beyond, requests are counted as `other` (task
/// types come from callers: without a cap, random ones would grow the series forever).
const MAX_TASK_TYPES: usize = 1000;

/// The series one successful (rpc, task type) updates, resolved once and cached: the hot
/// path then costs a read lock and atomic increments, no label allocation.
struct OkSeries {
    requests: Counter,
    duration: Histogram,
    flytekit: Option<(Counter, Histogram)>,
}

type SeriesCache = std::sync::RwLock<std::collections::HashMap<String, Arc<OkSeries>>>;

/// flytekit's operation names.
fn operation(rpc: &str) -> Option<&'static str> {
    match rpc {
        "CreateTask" => Some("create"),
        "GetTask" => Some("get"),
        "DeleteTask" => Some("delete"),
        "ExecuteTaskSync" => Some("do"),
        _ => None,
    }
}

/// flytekit's HTTP-like `error_code` for a failure.
fn http_like(e: &AgentError) -> &'static str {
    use tonic::Code;
    match e.grpc_code() {
        Code::NotFound => "404",
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => "400",
        Code::Unauthenticated => "401",
        Code::PermissionDenied => "403",
        Code::ResourceExhausted => "429",
        Code::Unimplemented => "501",
        Code::Unavailable => "503",
        Code::DeadlineExceeded => "504",
        _ => "500",
    }
}

fn status_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// One request being measured; record its outcome with [`finish`](Self::finish).
pub struct RequestTimer<'a> {
    metrics: &'a GatewayMetrics,
    rpc: usize,
    task_type: &'a str,
    started: Instant,
    finished: bool,
}

impl RequestTimer<'_> {
    pub fn finish<T>(mut self, result: &Result<T, AgentError>) {
        self.finished = true;
        let m = self.metrics;
        let seconds = self.started.elapsed().as_secs_f64();
        if result.is_ok() {
            let series = m.ok_series_for(self.rpc, self.task_type);
            series.requests.inc();
            series.duration.observe(seconds);
            if let Some((success, latency)) = &series.flytekit {
                success.inc();
                latency.observe(seconds);
            }
            return;
        }
        self.finish_slow(result, seconds);
    }

    /// Failures (rare): through the families, with the status label.
    fn finish_slow<T>(&self, result: &Result<T, AgentError>, seconds: f64) {
        let m = self.metrics;
        let rpc = RPCS[self.rpc];
        let task_type = m.task_type_label(self.rpc, self.task_type).to_owned();
        let status = match result {
            Ok(_) => "OK",
            Err(e) => status_name(e.grpc_code()),
        };
        m.requests.get_or_create(&RpcStatus { rpc, task_type: task_type.clone(), status }).inc();
        m.duration.get_or_create(&RpcType { rpc, task_type: task_type.clone() }).observe(seconds);
        if let Some(operation) = operation(rpc) {
            let op = Operation { task_type, operation };
            m.latency.get_or_create(&op).observe(seconds);
            match result {
                Ok(_) => {
                    m.success.get_or_create(&op).inc();
                }
                Err(e) => {
                    let f = Failure { task_type: op.task_type, operation, error_code: http_like(e) };
                    m.failure.get_or_create(&f).inc();
                }
            }
        }
    }
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight_by_rpc[self.rpc].dec();
        if !self.finished {
            // The caller went away (deadline, cancel) before an answer.
            let task_type = self.metrics.task_type_label(self.rpc, self.task_type).to_owned();
            let labels = RpcStatus { rpc: RPCS[self.rpc], task_type, status: "CANCELLED" };
            self.metrics.requests.get_or_create(&labels).inc();
        }
    }
}

impl GatewayMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let success = Family::<Operation, Counter>::default();
        let failure = Family::<Failure, Counter>::default();
        let latency = Family::<Operation, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let input_bytes = Family::<TaskType, Histogram, fn() -> Histogram>::new_with_constructor(bytes_histogram as fn() -> Histogram);
        let requests = Family::<RpcStatus, Counter>::default();
        let duration = Family::<RpcType, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let in_flight = Family::<Rpc, Gauge>::default();
        let agent_tasks = Family::<AgentState, Gauge>::default();
        let endpoint_healthy = Family::<EndpointLabels, Gauge>::default();
        registry.register("flyte_connector_requests_success", "Successful create/get/delete/do requests (as flytekit)", success.clone());
        registry.register("flyte_connector_requests_failure", "Failed create/get/delete/do requests (as flytekit)", failure.clone());
        registry.register("flyte_connector_request_latency_seconds", "Latency of create/get/delete/do requests (as flytekit)", latency.clone());
        registry.register("flyte_connector_input_literal_bytes", "Size of the inputs of created tasks (as flytekit)", input_bytes.clone());
        registry.register("tern_requests", "Agent protocol requests by RPC, task type and gRPC status", requests.clone());
        registry.register("tern_request_duration_seconds", "Agent protocol request latency", duration.clone());
        registry.register("tern_requests_in_flight", "Agent protocol requests being served", in_flight.clone());
        registry.register("tern_agent_tasks", "Tasks holding (running) or waiting for (queued) an agent's slot on this gateway", agent_tasks.clone());
        registry.register("tern_route_endpoint_healthy", "1 when a group endpoint takes new creates (health checks, ejection)", endpoint_healthy.clone());
        let in_flight_by_rpc = RPCS.map(|rpc| in_flight.get_or_create(&Rpc { rpc }).clone());
        let server_in_flight = Gauge::default();
        let shed = Family::<Reason, Counter>::default();
        registry.register("tern_server_calls_in_flight", "Calls holding one of [server] max_in_flight slots", server_in_flight.clone());
        registry.register("tern_server_calls_shed", "Calls the server refused or ended: max_in_flight, draining, deadline, drain_deadline", shed.clone());
        let reason = |reason| shed.get_or_create(&Reason { reason }).clone();
        let server = ServerSeries {
            in_flight: server_in_flight,
            refused_full: reason("max_in_flight"),
            refused_draining: reason("draining"),
            deadline: reason("deadline"),
            drain_deadline: reason("drain_deadline"),
        };
        Self {
            server,
            ok_series: Default::default(),
            input_bytes_cache: Default::default(),
            in_flight_by_rpc,
            registry: Arc::new(Mutex::new(registry)),
            success,
            failure,
            latency,
            input_bytes,
            requests,
            duration,
            agent_tasks,
            endpoint_healthy,
        }
    }

    /// The series of the server's overload layer.
    pub fn server_series(&self) -> ServerSeries {
        self.server.clone()
    }

    /// The handle agents register their own metrics with (same registry).
    pub fn agent_metrics(&self) -> AgentMetrics {
        AgentMetrics::new(self.registry.clone())
    }

    /// Starts measuring one request.
    pub fn start<'a>(&'a self, rpc: &'static str, task_type: &'a str) -> RequestTimer<'a> {
        let rpc = RPCS.iter().position(|r| *r == rpc).unwrap_or(0);
        self.in_flight_by_rpc[rpc].inc();
        RequestTimer { metrics: self, rpc, task_type, started: Instant::now(), finished: false }
    }

    /// `task_type`, or `other` once [`MAX_TASK_TYPES`] distinct values were seen for `rpc`.
    fn task_type_label<'a>(&self, rpc: usize, task_type: &'a str) -> &'a str {
        let cache = self.ok_series[rpc].read().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_TASK_TYPES && !cache.contains_key(task_type) {
            "other"
        } else {
            task_type
        }
    }

    /// The cached series of successful `rpc` calls for `task_type`.
    fn ok_series_for(&self, rpc: usize, task_type: &str) -> Arc<OkSeries> {
        if let Some(s) = self.ok_series[rpc].read().unwrap_or_else(|p| p.into_inner()).get(task_type) {
            return s.clone();
        }
        let label = self.task_type_label(rpc, task_type).to_owned();
        let name = RPCS[rpc];
        let series = Arc::new(OkSeries {
            requests: self.requests.get_or_create(&RpcStatus { rpc: name, task_type: label.clone(), status: "OK" }).clone(),
            duration: self.duration.get_or_create(&RpcType { rpc: name, task_type: label.clone() }).clone(),
            flytekit: operation(name).map(|operation| {
                let op = Operation { task_type: label.clone(), operation };
                (self.success.get_or_create(&op).clone(), self.latency.get_or_create(&op).clone())
            }),
        });
        let mut cache = self.ok_series[rpc].write().unwrap_or_else(|p| p.into_inner());
        if cache.len() < MAX_TASK_TYPES {
            cache.entry(task_type.to_owned()).or_insert_with(|| series.clone());
        }
        series
    }

    pub fn observe_input_bytes(&self, task_type: &str, bytes: usize) {
        if let Some(h) = self.input_bytes_cache.read().unwrap_or_else(|p| p.into_inner()).get(task_type) {
            h.observe(bytes as f64);
            return;
        }
        let mut cache = self.input_bytes_cache.write().unwrap_or_else(|p| p.into_inner());
        let label = if cache.len() >= MAX_TASK_TYPES { "other" } else { task_type };
        let h = self.input_bytes.get_or_create(&TaskType { task_type: label.to_owned() }).clone();
        h.observe(bytes as f64);
        if cache.len() < MAX_TASK_TYPES {
            cache.insert(task_type.to_owned(), h);
        }
    }

    pub fn set_agent_tasks(&self, agent: &str, running: usize, queued: usize) {
        self.agent_tasks.get_or_create(&AgentState { agent: agent.to_owned(), state: "running" }).set(running as i64);
        self.agent_tasks.get_or_create(&AgentState { agent: agent.to_owned(), state: "queued" }).set(queued as i64);
    }

    pub fn set_endpoint_health(&self, group: &str, endpoint: &str, region: &str, healthy: bool) {
        let labels = EndpointLabels { group: group.to_owned(), endpoint: endpoint.to_owned(), region: region.to_owned() };
        self.endpoint_healthy.get_or_create(&labels).set(i64::from(healthy));
    }

    /// The OpenMetrics text of everything registered.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Called before each scrape to refresh gauges that mirror live state.
pub type Refresh = Arc<dyn Fn(&GatewayMetrics) + Send + Sync>;

/// Serves `GET /metrics` on `addr` until the returned task is aborted.
pub async fn serve_metrics(
    addr: &str,
    metrics: Arc<GatewayMetrics>,
    refresh: Refresh,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), GatewayError> {
    use axum::http::header::CONTENT_TYPE;
    let sock: SocketAddr = addr
        .parse()
        .map_err(|e: std::net::AddrParseError| GatewayError::BadAddress { addr: addr.to_owned(), message: e.to_string() })?;
    let listener = tokio::net::TcpListener::bind(sock).await.map_err(|source| GatewayError::Bind { addr: addr.to_owned(), source })?;
    let local = listener.local_addr().map_err(|source| GatewayError::Bind { addr: addr.to_owned(), source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (metrics, refresh) = (metrics.clone(), refresh.clone());
            async move {
                refresh(&metrics);
                ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics.encode())
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    Ok((local, task))
}
