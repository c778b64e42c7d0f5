//! The webhook agent through `InProcessClient` (the gateway's own dispatch path), against
//! a real local HTTP server, with real reqwest on the path.
mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::{none, primitive, HttpSink, BIG_BODY_BYTES, FAIL_BODY, MOVED_BODY, OK_BODY};
use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::prelude::*;
use tern_agent_webhook::{codes, WebhookConfig};
use tern_type_transformers::msgpack::msgpack_literal_to_json;
use tern_type_transformers::render::json_to_struct;

struct Harness {
    client: InProcessClient,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    harness_with(WebhookConfig::default())
}

fn harness_with(config: WebhookConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = AgentRegistry::new();
    registry.register_sync(tern_agent_webhook::agent_with(config).unwrap()).unwrap();
    let client = InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path()));
    Harness { client, _dir: dir }
}

fn template(custom: Value) -> core::TaskTemplate {
    let info = core::Variable {
        r#type: Some(core::LiteralType {
            r#type: Some(core::literal_type::Type::Simple(core::SimpleType::Struct as i32)),
            ..Default::default()
        }),
        ..Default::default()
    };
    core::TaskTemplate {
        r#type: "webhook".into(),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("info".to_owned(), info)].into() }),
        }),
        ..Default::default()
    }
}

fn inputs(items: Vec<(&str, core::Literal)>) -> core::LiteralMap {
    core::LiteralMap { literals: items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() }
}

impl Harness {
    async fn run(&self, custom: Value, inputs: core::LiteralMap) -> TaskStatus {
        let header = admin::CreateRequestHeader {
            template: Some(template(custom).into()),
            output_prefix: "out/webhook".into(),
            ..Default::default()
        };
        TaskStatus::from_resource(self.client.execute_task_sync(header, inputs).await.unwrap())
    }
}

fn info(status: &TaskStatus) -> Value {
    let outputs = status.outputs.as_ref().expect("outputs");
    assert_eq!(outputs.literals.keys().collect::<Vec<_>>(), ["info"]);
    msgpack_literal_to_json(&outputs.literals["info"]).unwrap()
}

fn code(status: &TaskStatus) -> String {
    status.error.as_ref().expect("an error").code.to_string()
}

#[tokio::test]
async fn get_sends_query_params_and_headers() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h
        .run(
            json!({
                "url": format!("{}/items/{{inputs.item_id}}", sink.url),
                "method": "GET",
                "headers": {"X-Tern-Test": "hello {inputs.s}", "Accept": "application/json"},
                "data": {"q": "{inputs.s}", "id": "{inputs.item_id}", "ratio": "r={inputs.ratio}"},
                "show_data": false, "show_url": false, "timeout_sec": 10.0,
            }),
            inputs(vec![
                ("s", primitive(P::StringValue("world".into()))),
                ("item_id", primitive(P::Integer(10))),
                ("ratio", primitive(P::FloatValue(1.5))),
            ]),
        )
        .await;

    let got = sink.only_request();
    assert_eq!(got.method, "GET");
    assert_eq!(got.path, "/items/10");
    let mut query = got.query.clone();
    query.sort();
    assert_eq!(
        query,
        [("id".into(), "10".into()), ("q".into(), "world".into()), ("ratio".into(), "r=1.5".into())]
            as [(String, String); 3]
    );
    assert_eq!(got.headers["x-tern-test"], "hello world");
    assert_eq!(got.headers["accept"], "application/json");
    assert!(got.body.is_empty());

    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.message, "Webhook was successfully invoked!");
    let info = info(&status);
    assert_eq!(info, json!({"status_code": 200, "response_data": OK_BODY}));
    assert!(info["status_code"].is_i64(), "status_code must stay an integer");
}

#[tokio::test]
async fn post_sends_json_body_and_shows_data_and_url() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h
        .run(
            json!({
                "url": format!("{}/hooks/{{inputs.channel}}", sink.url),
                "method": "POST",
                "headers": {"X-Count": "n={inputs.n}"},
                "data": {
                    "text": "deploy of {inputs.channel} finished",
                    "count": "{inputs.n}",
                    "nested": {"items": ["{inputs.channel}", "static"], "flag": true},
                },
                "show_data": true, "show_url": true, "timeout_sec": 7.0,
            }),
            inputs(vec![("channel", primitive(P::StringValue("ops".into()))), ("n", primitive(P::Integer(3)))]),
        )
        .await;

    let expected_data = json!({"text": "deploy of ops finished", "count": 3,
                               "nested": {"items": ["ops", "static"], "flag": true}});
    let got = sink.only_request();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/hooks/ops");
    assert!(got.query.is_empty());
    assert_eq!(got.headers["x-count"], "n=3");
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.json(), expected_data);

    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(
        info(&status),
        json!({"status_code": 200, "response_data": OK_BODY, "input_data": expected_data,
               "url": format!("{}/hooks/ops", sink.url)})
    );
}

#[tokio::test]
async fn spliced_values_use_python_str() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h
        .run(
            json!({"url": format!("{}/s", sink.url), "method": "POST",
                   "data": {"t": "b={inputs.b} n={inputs.nothing} f={inputs.f}", "whole": "{inputs.f}"}}),
            inputs(vec![
                ("b", primitive(P::Boolean(true))),
                ("nothing", none()),
                ("f", primitive(P::FloatValue(1.0))),
            ]),
        )
        .await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let body = sink.only_request();
    assert_eq!(body.json(), json!({"t": "b=True n=None f=1.0", "whole": 1.0}));
    assert_eq!(String::from_utf8(body.body).unwrap(), r#"{"t":"b=True n=None f=1.0","whole":1.0}"#);
}

#[tokio::test]
async fn non_200_fails_with_flytekit_message() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h
        .run(
            json!({"url": format!("{}/fail/{{inputs.s}}", sink.url), "method": "POST", "data": {"s": "{inputs.s}"}}),
            inputs(vec![("s", primitive(P::StringValue("x".into())))]),
        )
        .await;
    assert_eq!(sink.only_request().path, "/fail/x");
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(status.message, format!("Webhook failed with status code 500, response: {FAIL_BODY}"));
    assert_eq!(code(&status), codes::HTTP_STATUS);
    assert!(status.outputs.as_ref().is_none_or(|o| o.literals.is_empty()));
}

#[tokio::test]
async fn redirects_are_not_followed_like_httpx() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h.run(json!({"url": format!("{}/moved", sink.url), "method": "GET"}), inputs(vec![])).await;
    assert_eq!(sink.only_request().path, "/moved", "the redirect must not be followed");
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(status.message, format!("Webhook failed with status code 302, response: {MOVED_BODY}"));
}

#[tokio::test]
async fn unknown_placeholder_fails_before_any_request() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h
        .run(json!({"url": format!("{}/x", sink.url), "method": "POST", "data": {"v": "{inputs.nope}"}}), inputs(vec![]))
        .await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert!(status.message.contains("{inputs.nope}"), "{}", status.message);
    assert_eq!(code(&status), codes::UNKNOWN_PLACEHOLDER);
    assert!(sink.requests().is_empty(), "no request may be sent when the template cannot be rendered");
}

#[tokio::test]
async fn unsupported_method_fails_naming_it() {
    let sink = HttpSink::start().await;
    let h = harness();
    let status = h.run(json!({"url": format!("{}/x", sink.url), "method": "delete"}), inputs(vec![])).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert!(status.message.contains("DELETE"), "{}", status.message);
    assert_eq!(code(&status), codes::BAD_CONFIG);
    assert!(sink.requests().is_empty());
}

#[tokio::test]
async fn timeout_and_refused_connections_fail_without_leaking_the_path() {
    let sink = HttpSink::start().await;
    let h = harness();
    let started = std::time::Instant::now();
    let status = h
        .run(json!({"url": format!("{}/slow/secret-token", sink.url), "method": "GET", "timeout_sec": 0.5}), inputs(vec![]))
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "timeout_sec was not honoured");
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(code(&status), codes::REQUEST_FAILED);
    assert!(status.message.contains("127.0.0.1"), "{}", status.message);
    assert!(!status.message.contains("secret-token"), "{}", status.message);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let status = h.run(json!({"url": format!("http://127.0.0.1:{port}/nobody"), "method": "GET"}), inputs(vec![])).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(code(&status), codes::REQUEST_FAILED);
    assert!(!status.message.is_empty());
}

#[tokio::test]
async fn hosts_outside_the_allowlist_are_refused_before_any_request() {
    let sink = HttpSink::start().await;
    let port = sink.url.rsplit(':').next().unwrap().to_owned();
    let h = harness_with(WebhookConfig { allowed_hosts: Some(vec!["hooks.example.com".into()]), ..Default::default() });
    let status = h.run(json!({"url": format!("{}/hook/secret-token", sink.url), "method": "GET"}), inputs(vec![])).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(code(&status), codes::HOST_NOT_ALLOWED);
    assert!(status.message.contains("allowed_hosts") && status.message.contains("127.0.0.1"), "{}", status.message);
    assert!(!status.message.contains("secret-token"), "{}", status.message);
    assert!(sink.requests().is_empty(), "a refused host must never be contacted");

    let h = harness_with(WebhookConfig { allowed_hosts: Some(vec![format!("127.0.0.1:{port}")]), ..Default::default() });
    let status = h.run(json!({"url": format!("{}/hook", sink.url), "method": "GET"}), inputs(vec![])).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
}

#[tokio::test]
async fn responses_beyond_the_body_cap_fail_the_task() {
    let sink = HttpSink::start().await;
    let h = harness_with(WebhookConfig { max_response_bytes: 1000, ..Default::default() });
    let status = h.run(json!({"url": format!("{}/big", sink.url), "method": "GET"}), inputs(vec![])).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(code(&status), codes::RESPONSE_TOO_LARGE);
    assert!(status.message.contains("max_response_bytes = 1000"), "{}", status.message);

    let h = harness_with(WebhookConfig { max_response_bytes: BIG_BODY_BYTES as u64, ..Default::default() });
    let status = h.run(json!({"url": format!("{}/big", sink.url), "method": "GET"}), inputs(vec![])).await;
    assert_eq!(status.phase, Phase::Succeeded, "a body of exactly the cap is read: {status:?}");
}

#[tokio::test]
async fn the_operators_max_timeout_caps_the_tasks_timeout() {
    let sink = HttpSink::start().await;
    let h = harness_with(WebhookConfig { max_timeout: std::time::Duration::from_millis(300), ..Default::default() });
    let started = std::time::Instant::now();
    let status = h.run(json!({"url": format!("{}/slow", sink.url), "method": "GET", "timeout_sec": 600}), inputs(vec![])).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "max_timeout was not applied");
    assert_eq!(code(&status), codes::REQUEST_FAILED);
}
