//! `[agents.databricks]` as the gateway reads it: Databricks' and flytekit's standard variables, environment
//! overrides, secrets by reference, refusals naming the section.
#![cfg(feature = "agent-databricks")]
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tern_agent_api::factory::HostResources;
use tern_gateway::config::show;
use tern_gateway::registry::{self, compiled};
use tern_gateway::{GatewayConfig, Mode};

fn config(text: &str, env: &[(&str, &str)]) -> GatewayConfig {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    GatewayConfig::parse_with_env(text, Some(Path::new("tern.toml")), Arc::new(env)).unwrap()
}

fn effective(c: &GatewayConfig) -> toml::Table {
    let planned = registry::plan(c, Mode::Serve, &HostResources::detect(), &compiled::compiled_in()).unwrap();
    show::effective(c, &planned).unwrap()["agents"]["databricks"].as_table().unwrap().clone()
}

#[test]
fn standard_variables_fill_unset_keys_secrets_as_references() {
    let env = [
        ("DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com"),
        ("DATABRICKS_TOKEN", "dapi-very-secret"),
        ("DATABRICKS_CLIENT_ID", "sp-1"),
        ("DATABRICKS_CLIENT_SECRET", "oauth-very-secret"),
        ("TERN_AGENTS__DATABRICKS__API_VERSION", "2.1"),
    ];
    let c = config("[agents.databricks]\n", &env);
    let d = effective(&c);
    assert_eq!(d["host"].as_str(), Some("https://dbc-1.cloud.databricks.com"));
    assert_eq!(d["token"].as_str(), Some("env:DATABRICKS_TOKEN"), "the value stays in the environment");
    assert_eq!(d["client_id"].as_str(), Some("sp-1"));
    assert_eq!(d["client_secret"].as_str(), Some("env:DATABRICKS_CLIENT_SECRET"));
    assert_eq!(d["api_version"].as_str(), Some("2.1"), "a bare number from the environment is accepted");
    assert_eq!(d["task_types"].as_array().unwrap().len(), 2);
    let shown = toml::to_string(&d).unwrap();
    assert!(!shown.contains("very-secret"), "{shown}");

    // The file wins; flytekit's connector variables are honoured after Databricks' own.
    let c = config("[agents.databricks]\nhost = \"http://127.0.0.1:8090\"\n", &[("DATABRICKS_HOST", "https://x"), ("FLYTE_DATABRICKS_ACCESS_TOKEN", "t")]);
    let d = effective(&c);
    assert_eq!(d["host"].as_str(), Some("http://127.0.0.1:8090"));
    assert_eq!(d["token"].as_str(), Some("env:FLYTE_DATABRICKS_ACCESS_TOKEN"));
    let c = config("[agents.databricks]\n", &[("FLYTE_DATABRICKS_INSTANCE", "dbc-2.cloud.databricks.com")]);
    assert_eq!(effective(&c)["host"].as_str(), Some("dbc-2.cloud.databricks.com"));
}

#[test]
fn served_task_types_follow_the_section_and_bad_sections_are_refused() {
    let c = config("[agents.databricks]\ntask_types = [\"databricks\"]\n", &[]);
    let (_, built) = tern_gateway::in_process_client(&c, Mode::Serve).unwrap();
    let agent = built.served.iter().find(|a| a.name == "databricks").unwrap();
    let types: Vec<&str> = agent.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(types, ["databricks"], "spark is left to another agent");

    for (text, needle) in [
        ("[agents.databricks]\nauth = \"pat\"\n", "token"),
        ("[agents.databricks]\ntask_types = []\n", "task_types"),
        ("[agents.databricks]\nhost = \"ftp://x\"\n", "host"),
        ("[agents.databricks]\ntoken = \"dapi-pasted-value\"\n", "secret reference"),
    ] {
        let c = GatewayConfig::parse_with_env(text, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new()));
        let msg = match c {
            Err(e) => e.to_string(),
            Ok(c) => tern_gateway::in_process_client(&c, Mode::Serve).err().map(|e| e.to_string()).unwrap_or_default(),
        };
        assert!(msg.contains("databricks") && msg.contains(needle), "{text}: {msg}");
        assert!(!msg.contains("dapi-pasted-value"), "{msg}");
    }
}
