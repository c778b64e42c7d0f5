//! The webhook agent served over real gRPC honours the task's `metadata.timeout`: the
//! request to a slow endpoint is cut at the task's timeout, not at the webhook's own
//! (longer) `timeout_sec`.
// Only the HTTP sink of the shared support module is used here.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::HttpSink;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::server::AgentGrpcService;
use tern_agent_webhook::{codes, WebhookConfig};
use tern_type_transformers::render::json_to_struct;

async fn serve(dir: &std::path::Path) -> String {
    let mut registry = AgentRegistry::new();
    registry.register_sync(tern_agent_webhook::agent_with(WebhookConfig::default()).unwrap()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AgentGrpcService::new(client).sync_server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

#[tokio::test]
async fn the_tasks_timeout_cuts_a_slow_webhook_short() {
    let sink = HttpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(dir.path()).await;
    // The caller waits up to 60 s; the endpoint answers after 3 s; the task allows 300 ms.
    let timeouts = ClientTimeouts { execute_sync: Duration::from_secs(60), ..Default::default() };
    let client = GrpcAgentClient::connect_lazy(&addr, timeouts).unwrap();
    let custom = json!({"url": format!("{}/slow", sink.url), "method": "GET", "timeout_sec": 600});
    let info = core::Variable {
        r#type: Some(core::LiteralType {
            r#type: Some(core::literal_type::Type::Simple(core::SimpleType::Struct as i32)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let template = core::TaskTemplate {
        r#type: "webhook".into(),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        metadata: Some(core::TaskMetadata {
            timeout: Some(prost_types::Duration { seconds: 0, nanos: 300_000_000 }),
            ..Default::default()
        }),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("info".to_owned(), info)].into() }),
        }),
        ..Default::default()
    };
    let header = admin::CreateRequestHeader {
        template: Some(template.into()),
        output_prefix: "out/webhook".into(),
        ..Default::default()
    };
    let status = TaskStatus::from_resource(client.execute_task_sync(header, Default::default()).await.unwrap());
    assert_eq!(status.phase, Phase::Failed, "the webhook outlived the task's timeout: {status:?}");
    let error = status.error.expect("an error");
    assert_eq!(error.code, codes::REQUEST_FAILED, "{error}");
    assert!(error.message.to_lowercase().contains("timed out"), "{error}");
}
