//! The Lepton agent's test peer (no emulator of Lepton exists): [`lepton_server`], an HTTP
//! server in the test process implementing the workspace API's shapes, and the conformance
//! case shared by the in-process run (agents/lepton/tests/conformance.rs) and, when added,
//! the gRPC one.
pub mod lepton_server;

use std::time::Duration;

use serde_json::json;
use tern_agent_api::core;
use tern_agent_lepton::LeptonConfig;
use tern_type_transformers::structs::json_to_struct;

pub use lepton_server::{start, Server, TOKEN, WORKSPACE};

/// A config reaching `server`, its token in a file (`file:` reference) under `dir`.
pub fn config(server: &Server, dir: &std::path::Path) -> LeptonConfig {
    let token = dir.join("lepton_token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    LeptonConfig {
        workspace_id: Some(WORKSPACE.into()),
        token: Some(format!("file:{}", token.display()).parse().unwrap()),
        api_url: server.url.clone(),
        dashboard_url: Some("https://dashboard.lepton.test".into()),
        ..Default::default()
    }
}

/// A `lepton_endpoint_deployment_task` template as flytekitplugins-dgxc-lepton 1.16.31
/// serializes it (`LeptonEndpointConfig.to_dict()` in `custom`, interface `o0: str`), with
/// `custom` merged over a `custom` endpoint's defaults.
pub fn deployment_template(extra: serde_json::Value) -> core::TaskTemplate {
    let mut custom = json!({
        "deployment_type": "custom",
        "resource_shape": "cpu.small",
        "node_group": "ng-test",
        "operation": "deploy",
        "image": "python:3.11-slim",
        "port": 8080.0,
        "command": ["/bin/bash", "-c", "python3 -m http.server 8080 --bind 0.0.0.0"],
    });
    if let (Some(c), Some(e)) = (custom.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    template("lepton_endpoint_deployment_task", custom)
}

/// A `lepton_endpoint_deletion_task` template.
pub fn deletion_template(endpoint_name: &str) -> core::TaskTemplate {
    template("lepton_endpoint_deletion_task", json!({"endpoint_name": endpoint_name}))
}

fn template(task_type: &str, custom: serde_json::Value) -> core::TaskTemplate {
    let string = core::LiteralType { r#type: Some(core::literal_type::Type::Simple(core::SimpleType::String as i32)), ..Default::default() };
    let mut outputs = core::VariableMap::default();
    outputs.variables.insert("o0".into(), core::Variable { r#type: Some(string), description: "o0".into(), ..Default::default() });
    core::TaskTemplate {
        r#type: task_type.into(),
        custom: Some(json_to_struct(custom.as_object().expect("an object"))),
        interface: Some(core::TypedInterface { inputs: Some(core::VariableMap::default()), outputs: Some(outputs) }),
        ..Default::default()
    }
}

/// The conformance kit's case against `server`: deployments counted at the server, states
/// driven through it. The successful task names no endpoint (its name comes from the
/// idempotency key, so each retry attempt is a new endpoint); the failing one never gets
/// ready within its 1 s `endpoint_readiness_timeout`; the long-running one never gets ready.
pub fn conformance_case(server: &Server) -> tern_agent_api::testkit::Case {
    let (counter, driver) = (server.lepton.clone(), server.lepton.clone());
    tern_agent_api::testkit::Case::new(deployment_template(json!({})), core::LiteralMap::default())
        .failing(
            deployment_template(json!({"image": "tern/never-ready", "endpoint_readiness_timeout": 1.0})),
            core::LiteralMap::default(),
        )
        .long_running(deployment_template(json!({"image": "tern/never-ready"})), core::LiteralMap::default())
        .count_jobs(move || {
            let c = counter.clone();
            async move { c.created() }
        })
        .drive_state(move |state| {
            let d = driver.clone();
            async move { d.drive(Some(&state)) }
        })
        .poll_interval(Duration::from_millis(100))
        .settle(Duration::from_millis(100))
        .poll_timeout(Duration::from_secs(30))
}

/// Propeller's execution metadata for `node`, attempt `attempt`, of execution `exec`.
pub fn execution(exec: &str, node: &str, attempt: u32) -> Box<tern_agent_api::admin::TaskExecutionMetadata> {
    Box::new(tern_agent_api::admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier {
                resource_type: 1,
                project: "p".into(),
                domain: "d".into(),
                name: "wf.deploy".into(),
                version: "1".into(),
                org: String::new(),
            }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: "p".into(),
                    domain: "d".into(),
                    name: exec.into(),
                    org: String::new(),
                }),
            }),
            retry_attempt: attempt,
        }),
        namespace: "p-d".into(),
        ..Default::default()
    })
}

/// The templates flytekitplugins-dgxc-lepton 1.16.31 serializes for the tasks of
/// `tests/interop/peers/lepton_templates.py` (`deploy_web`, `deploy_llm`, `delete_web`), run with
/// `$TERN_LEPTON_PYTHON` (scripts/test.sh builds it from tests/interop/requirements-lepton.txt). `None`
/// means skip (the reason printed); under `CI=true` a missing peer is a failure.
pub fn plugin_templates(test: &str) -> Option<std::collections::BTreeMap<String, core::TaskTemplate>> {
    use prost::Message;
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let python = std::env::var_os("TERN_LEPTON_PYTHON").filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
    let Some(python) = python.filter(|p| p.is_file()) else {
        let why = "TERN_LEPTON_PYTHON is not a python (scripts/test.sh builds it from tests/interop/requirements-lepton.txt)";
        assert!(!ci, "{test}: {why} (CI=true: a missing peer is a failure)");
        eprintln!("SKIPPED {test}: {why}");
        return None;
    };
    let rel = "tests/interop/peers/lepton_templates.py";
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = here.ancestors().map(|d| d.join(rel)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{rel} not found"));
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(&python)
        .arg(&script)
        .arg(out.path())
        .env("PYTHONPATH", script.parent().unwrap())
        .env_remove("LEPTON_WORKSPACE_ID")
        .env_remove("LEPTON_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(run.status.success(), "{rel}: {}\n{}", run.status, String::from_utf8_lossy(&run.stderr));
    let mut templates = std::collections::BTreeMap::new();
    for name in ["deploy_web", "deploy_llm", "delete_web"] {
        let bytes = std::fs::read(out.path().join(format!("{name}.pb"))).unwrap();
        templates.insert(name.to_owned(), core::TaskTemplate::decode(bytes.as_slice()).unwrap());
    }
    Some(templates)
}
