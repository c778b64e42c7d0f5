//! GetTask outputs are checked against the task's declared interface in the dispatcher,
//! over real gRPC (propeller's path), as the engine checks them for `tern run`: the
//! interface travels with the job's handle from CreateTask to GetTask.
use std::sync::Arc;

use async_trait::async_trait;
use prost::Message;
use tern_agent_api::error::codes;
use tern_agent_api::grpc_client::{ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::server::AgentGrpcService;

/// Succeeds with the outputs named by the job: `int`: n = 7; `text`: n = "seven";
/// `file`: none in the Resource, `outputs.pb` holding n = "seven"; `none`: nothing at all.
struct Reporter;

#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    what: String,
    prefix: String,
}

fn lit(v: core::primitive::Value) -> core::Literal {
    core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Primitive(core::Primitive { value: Some(v) })),
        }))),
        ..Default::default()
    }
}

fn n(v: core::primitive::Value) -> core::LiteralMap {
    core::LiteralMap { literals: [("n".to_owned(), lit(v))].into() }
}

#[async_trait]
impl AsyncAgent for Reporter {
    fn name(&self) -> &str {
        "reporter"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("reporter", 0)]
    }
    async fn create(&self, ctx: &TaskContext, task: TaskRequest) -> Result<ResourceMeta, AgentError> {
        let what = task.template.config.get("what").cloned().unwrap_or_default();
        if what == "file" {
            let bytes = n(core::primitive::Value::StringValue("seven".into())).encode_to_vec();
            ctx.data_store().write(&join_uri(&ctx.output_prefix, "outputs.pb"), bytes.into()).await?;
        }
        ResourceMeta::encode(&Job { what, prefix: ctx.output_prefix.clone() })
    }
    async fn get(&self, _ctx: &TaskContext, meta: &ResourceMeta) -> Result<TaskStatus, AgentError> {
        let job: Job = meta.decode()?;
        use tern_agent_api::core::primitive::Value as P;
        Ok(TaskStatus::succeeded(match job.what.as_str() {
            "int" => Some(n(P::Integer(7))),
            "text" => Some(n(P::StringValue("seven".into()))),
            _ => None,
        }))
    }
    async fn delete(&self, _ctx: &TaskContext, _meta: &ResourceMeta) -> Result<(), AgentError> {
        Ok(())
    }
}

async fn serve(dir: &std::path::Path) -> GrpcAgentClient {
    let mut registry = AgentRegistry::new();
    registry.register_async(Arc::new(Reporter)).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AgentGrpcService::new(client).async_server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    GrpcAgentClient::connect_lazy(&addr, ClientTimeouts::default()).unwrap()
}

/// CreateTask then GetTask as propeller does (the handle and the output prefix sent back).
async fn run(client: &GrpcAgentClient, dir: &std::path::Path, what: &str) -> TaskStatus {
    let integer = core::LiteralType {
        r#type: Some(core::literal_type::Type::Simple(core::SimpleType::Integer as i32)),
        ..Default::default()
    };
    let var = core::Variable { r#type: Some(integer), description: "how many".into(), ..Default::default() };
    let template = core::TaskTemplate {
        r#type: "reporter".into(),
        config: [("what".to_owned(), what.to_owned())].into(),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("n".to_owned(), var)].into() }),
        }),
        ..Default::default()
    };
    let prefix = dir.join(what).display().to_string();
    let request = admin::CreateTaskRequest {
        template: Some(template.into()),
        output_prefix: prefix.clone(),
        ..Default::default()
    };
    let resource_meta = client.create_task(request).await.unwrap();
    let get = admin::GetTaskRequest {
        task_category: Some(admin::TaskCategory { name: "reporter".into(), version: 0 }),
        resource_meta,
        output_prefix: prefix,
        ..Default::default()
    };
    TaskStatus::from_resource(client.get_task(get).await.unwrap())
}

#[tokio::test]
async fn get_task_outputs_that_do_not_match_the_interface_fail_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let client = serve(dir.path()).await;

    let ok = run(&client, dir.path(), "int").await;
    assert_eq!(ok.phase, Phase::Succeeded, "{ok:?}");

    let wrong = run(&client, dir.path(), "text").await;
    assert_eq!(wrong.phase, Phase::Failed, "a string output passed as an integer: {wrong:?}");
    let e = wrong.error.expect("an error");
    assert_eq!(e.code, codes::OUTPUT_MISMATCH);
    assert!(e.message.contains("\"n\"") && e.message.contains("integer") && e.message.contains("string"), "{e}");

    // No outputs in the Resource: outputs.pb is what propeller reads, so it is what is checked.
    let wrong_file = run(&client, dir.path(), "file").await;
    assert_eq!(wrong_file.phase, Phase::Failed, "{wrong_file:?}");
    let e = wrong_file.error.expect("an error");
    assert_eq!(e.code, codes::OUTPUT_MISMATCH);
    assert!(e.message.contains("integer") && e.message.contains("string"), "{e}");

    let missing = run(&client, dir.path(), "none").await;
    assert_eq!(missing.phase, Phase::Failed, "{missing:?}");
    assert_eq!(missing.error.expect("an error").code, codes::OUTPUT_MISMATCH);
}
