//! `/metrics`: flytekit's metric names where the meaning is the same, Tern's own per RPC,
//! agents' slots and endpoint health, scraped over HTTP.
mod support;

use std::sync::Arc;

use support::{create, get, serve};
use tern_agent_api::grpc_client::{ClientOptions, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_gateway::metrics::serve_metrics;

async fn scrape(addr: std::net::SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert!(response.status().is_success());
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    response.text().await.unwrap()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_rpc_task_type_and_status() {
    let upstream = serve("[agents.sleep]\n", &[]).await;
    let served = serve(
        &format!(
            "[agents.echo]\nmax_concurrency = 3\n[[routes]]\ntask_type = \"sleep\"\ntarget = \"group:up\"\n\
             [groups.up]\nendpoints = [{{ url = \"http://{}\", region = \"r1\" }}]\nhealth_check_interval = \"100ms\"\n",
            upstream.addr()
        ),
        &[],
    )
    .await;
    let (metrics_addr, task) = serve_metrics("127.0.0.1:0", served.gateway.metrics.clone(), served.gateway.metrics_refresh()).await.unwrap();
    let c = GrpcAgentClient::connect_lazy_with(&served.addr(), ClientOptions::default()).unwrap();
    let mut request = create("echo", "p", "d");
    request.inputs = Some(core::LiteralMap { literals: Default::default() });
    let handle = c.create_task(request).await.unwrap();
    c.get_task(get("echo", handle.clone())).await.unwrap();
    c.get_task(get("echo", handle)).await.unwrap();
    assert!(c.create_task(create("nope", "p", "d")).await.is_err());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // a health check round

    let text = scrape(metrics_addr).await;
    let want = [
        ("flyte_connector_requests_success_total{task_type=\"echo\",operation=\"create\"}", 1.0),
        ("flyte_connector_requests_success_total{task_type=\"echo\",operation=\"get\"}", 2.0),
        ("flyte_connector_requests_failure_total{task_type=\"nope\",operation=\"create\",error_code=\"404\"}", 1.0),
        ("tern_requests_total{rpc=\"GetTask\",task_type=\"echo\",status=\"OK\"}", 2.0),
        ("tern_requests_total{rpc=\"CreateTask\",task_type=\"nope\",status=\"NOT_FOUND\"}", 1.0),
        ("flyte_connector_request_latency_seconds_count{task_type=\"echo\",operation=\"get\"}", 2.0),
        ("tern_request_duration_seconds_count{rpc=\"CreateTask\",task_type=\"echo\"}", 1.0),
        ("flyte_connector_input_literal_bytes_count{task_type=\"echo\"}", 1.0),
        ("tern_requests_in_flight{rpc=\"GetTask\"}", 0.0),
        ("tern_agent_tasks{agent=\"echo\",state=\"running\"}", 0.0),
        ("tern_agent_tasks{agent=\"echo\",state=\"queued\"}", 0.0),
    ];
    for (series, expected) in want {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    let health = format!("tern_route_endpoint_healthy{{group=\"up\",endpoint=\"http://{}\",region=\"r1\"}}", upstream.addr());
    assert_eq!(value(&text, &health), Some(1.0), "{text}");
    assert!(text.contains("# TYPE tern_request_duration_seconds histogram"), "{text}");

    // The endpoint's health follows the upstream gateway.
    let up = upstream;
    up.handle.shutdown().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let text = scrape(metrics_addr).await;
    assert_eq!(value(&text, &health), Some(0.0), "{text}");
    task.abort();
    let _ = Arc::strong_count(&served.gateway.metrics);
}
