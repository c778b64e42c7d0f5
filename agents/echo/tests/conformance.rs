//! The echo agent passes the agent conformance kit (`tern_agent_api::testkit`).
use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_type_transformers::{FlyteType, LiteralMapBuilder};

fn template(outputs: &[(&str, core::LiteralType)]) -> core::TaskTemplate {
    let variables = outputs
        .iter()
        .map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), ..Default::default() }))
        .collect();
    core::TaskTemplate {
        r#type: tern_agent_echo::TASK_TYPE.into(),
        interface: Some(core::TypedInterface { inputs: None, outputs: Some(core::VariableMap { variables }) }),
        ..Default::default()
    }
}

#[tokio::test]
async fn echo_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let agent = tern_agent_echo::agent();
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(dir.path())));

    let inputs = LiteralMapBuilder::new().with("n", &7i64).unwrap().with("s", &"héllo".to_owned()).unwrap().build();
    let declared = [("n", i64::literal_type()), ("s", String::literal_type())];
    // Inputs that do not fit the declared outputs: refused at create (TERN-K001).
    let mismatched = LiteralMapBuilder::new().with("n", &"seven".to_owned()).unwrap().build();
    let case = Case::new(template(&declared), inputs.clone())
        .expect_outputs(inputs)
        .failing(template(&declared), mismatched)
        .async_agent(agent)
        .self_describing_handles()
        .no_backend_states("echo has no backend: its handle carries the inputs it returns");
    testkit::run(client, case).await.assert_passes();
}
