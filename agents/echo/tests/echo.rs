//! The echo agent through `InProcessClient`, the path the gateway uses.
use std::sync::Arc;

use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::error::codes as api_codes;
use tern_agent_api::prelude::*;

fn client(dir: &std::path::Path) -> InProcessClient {
    let mut registry = AgentRegistry::new();
    registry.register_async(tern_agent_echo::agent()).unwrap();
    InProcessClient::new(Arc::new(registry), AgentServices::local(dir))
}

fn primitive(v: P) -> core::Literal {
    core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Primitive(core::Primitive { value: Some(v) })),
        }))),
        ..Default::default()
    }
}

fn simple(t: core::SimpleType) -> core::Variable {
    core::Variable {
        r#type: Some(core::LiteralType { r#type: Some(core::literal_type::Type::Simple(t as i32)), ..Default::default() }),
        ..Default::default()
    }
}

fn inputs() -> core::LiteralMap {
    let list = core::Literal {
        value: Some(core::literal::Value::Collection(core::LiteralCollection {
            literals: vec![primitive(P::Integer(1)), primitive(P::Integer(2))],
        })),
        ..Default::default()
    };
    core::LiteralMap {
        literals: [
            ("s".to_owned(), primitive(P::StringValue("héllo".into()))),
            ("f".to_owned(), primitive(P::FloatValue(2.5))),
            ("l".to_owned(), list),
        ]
        .into(),
    }
}

fn category() -> admin::TaskCategory {
    admin::TaskCategory { name: "echo".into(), version: 0 }
}

fn create_request(template: core::TaskTemplate, inputs: core::LiteralMap) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        inputs: Some(inputs),
        template: Some(template.into()),
        output_prefix: "out/echo".into(),
        task_execution_metadata: None,
    }
}

#[tokio::test]
async fn outputs_are_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path());
    let template = core::TaskTemplate { r#type: "echo".into(), ..Default::default() };
    let meta = client.create_task(create_request(template, inputs())).await.unwrap();
    assert!(std::str::from_utf8(&meta).unwrap().starts_with('{'), "resource_meta is versioned JSON");

    let resource = client
        .get_task(admin::GetTaskRequest { resource_meta: meta.clone(), task_category: Some(category()), ..Default::default() })
        .await
        .unwrap();
    let status = TaskStatus::from_resource(resource);
    assert_eq!(status.phase, Phase::Succeeded);
    assert_eq!(status.outputs, Some(inputs()));

    client
        .delete_task(admin::DeleteTaskRequest { resource_meta: meta, task_category: Some(category()), ..Default::default() })
        .await
        .unwrap();
    // Nothing was written to the data store.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn declared_outputs_must_match_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path());
    let interface = |vars: Vec<(&str, core::SimpleType)>| core::TypedInterface {
        inputs: None,
        outputs: Some(core::VariableMap {
            variables: vars.into_iter().map(|(n, t)| (n.to_owned(), simple(t))).collect(),
        }),
    };
    let one = core::LiteralMap { literals: [("n".to_owned(), primitive(P::Integer(7)))].into() };

    let ok = core::TaskTemplate {
        r#type: "echo".into(),
        interface: Some(interface(vec![("n", core::SimpleType::Integer)])),
        ..Default::default()
    };
    assert!(client.create_task(create_request(ok, one.clone())).await.is_ok());

    let wrong = core::TaskTemplate {
        r#type: "echo".into(),
        interface: Some(interface(vec![("n", core::SimpleType::String)])),
        ..Default::default()
    };
    let err = client.create_task(create_request(wrong, one)).await.unwrap_err();
    assert_eq!(err.code, tern_agent_echo::codes::INTERFACE_MISMATCH);
    assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
    assert!(err.message.contains("\"n\""), "{err}");
}

#[tokio::test]
async fn bad_handles_are_invalid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(dir.path());
    for meta in [&b"not json"[..], br#"{"v":1}"#, br#"{"v":1,"inputs":"***"}"#, br#"{"v":1,"inputs":"/////w=="}"#] {
        let err = client
            .get_task(admin::GetTaskRequest {
                resource_meta: meta.to_vec(),
                task_category: Some(category()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code, api_codes::BAD_RESOURCE_META, "{err}");
        assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
        // Delete has nothing to cancel, but refuses the handle all the same.
        let err = client
            .delete_task(admin::DeleteTaskRequest { resource_meta: meta.to_vec(), task_category: Some(category()), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(err.code, api_codes::BAD_RESOURCE_META, "{err}");
    }
}
