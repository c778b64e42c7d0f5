//! The shell agent passes the agent conformance kit (`tern_agent_api::testkit`), running
//! real processes. Every run of the successful command appends a line to a file, so the kit
//! counts the commands that really ran.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_agent_shell::{ShellAgent, ShellSettings};
use tern_type_transformers::render::json_to_struct;
use tern_type_transformers::{FlyteType, LiteralMapBuilder};

fn template(script: &str, custom: Value, outputs: &[(&str, core::LiteralType)]) -> core::TaskTemplate {
    let variables = outputs
        .iter()
        .map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), ..Default::default() }))
        .collect();
    core::TaskTemplate {
        r#type: tern_agent_shell::TASK_TYPE.into(),
        target: Some(core::task_template::Target::Container(core::Container {
            command: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        })),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        interface: Some(core::TypedInterface { inputs: None, outputs: Some(core::VariableMap { variables }) }),
        ..Default::default()
    }
}

fn lines(path: &Path) -> u64 {
    std::fs::read_to_string(path).map(|t| t.lines().count() as u64).unwrap_or(0)
}

#[tokio::test]
async fn shell_passes_the_conformance_kit() {
    let store = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let runs = store.path().join("runs.txt");
    let settings = ShellSettings {
        scratch_root: scratch.path().to_owned(),
        inherited_env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))],
        log_lines_in_memory: 100,
    };
    let agent: Arc<dyn AsyncAgent> = Arc::new(ShellAgent::new(settings));
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(store.path())));

    let n = [("n", i64::literal_type())];
    let stdout = json!({"outputs": {"n": {"from": "stdout"}}});
    let success = template(&format!("echo run >> '{}'; echo 42", runs.display()), stdout.clone(), &n);
    let counted = runs.clone();
    let case = Case::new(success, core::LiteralMap::default())
        .expect_outputs(LiteralMapBuilder::new().with("n", &42i64).unwrap().build())
        // Non-zero exit: FAILED with TERN-H004.
        .failing(template("echo oops >&2; exit 3", json!({}), &[]), core::LiteralMap::default())
        .long_running(template("sleep 600", json!({}), &[]), core::LiteralMap::default())
        .count_jobs(move || {
            let n = lines(&counted);
            async move { n }
        })
        .async_agent(agent)
        .no_backend_states("commands run in this process; their life-cycle is LocalJobs' Rust enum, not a backend's states")
        .poll_timeout(Duration::from_secs(20));
    testkit::run(client, case).await.assert_passes();
}
