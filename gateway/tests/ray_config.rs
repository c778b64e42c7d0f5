//! `[agents.ray]` as the gateway reads it: Ray's standard variables, secrets by reference, served without a
//! section (harmless: no address, every create refused), refusals naming the section.
#![cfg(feature = "agent-ray")]
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
    show::effective(c, &planned).unwrap()["agents"]["ray"].as_table().unwrap().clone()
}

#[test]
fn standard_variables_fill_unset_keys_secrets_as_references() {
    let env = [("RAY_ADDRESS", "http://10.0.0.5:8265"), ("RAY_AUTH_TOKEN", "ray-very-secret")];
    let d = effective(&config("[agents.ray]\n", &env));
    assert_eq!(d["address"].as_str(), Some("http://10.0.0.5:8265"));
    assert_eq!(d["token"].as_str(), Some("env:RAY_AUTH_TOKEN"), "the value stays in the environment");
    let shown = toml::to_string(&d).unwrap();
    assert!(!shown.contains("very-secret"), "{shown}");

    // The file wins; a token file is a file: reference.
    let c = config("[agents.ray]\naddress = \"127.0.0.1:8265\"\n", &[("RAY_ADDRESS", "http://x:1"), ("RAY_AUTH_TOKEN_PATH", "/run/ray/token")]);
    let d = effective(&c);
    assert_eq!(d["address"].as_str(), Some("127.0.0.1:8265"));
    assert_eq!(d["token"].as_str(), Some("file:/run/ray/token"));
}

#[test]
fn served_without_a_section_and_bad_sections_are_refused() {
    let (_, built) = tern_gateway::in_process_client(&config("", &[]), Mode::Serve).unwrap();
    let agent = built.served.iter().find(|a| a.name == "ray").expect("ray is served by default");
    assert_eq!(agent.categories.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["ray"]);

    for (text, needle) in [
        ("[agents.ray]\naddress = \"ray://10.0.0.5:10001\"\n", "address"),
        ("[agents.ray]\ntask_types = []\n", "task_types"),
        ("[agents.ray]\ntoken = \"ray-pasted-value\"\n", "secret reference"),
        ("[agents.ray]\nheaders = { \"bad name\" = \"env:X\" }\n", "headers"),
    ] {
        let c = GatewayConfig::parse_with_env(text, Some(Path::new("tern.toml")), Arc::new(BTreeMap::new()));
        let msg = match c {
            Err(e) => e.to_string(),
            Ok(c) => tern_gateway::in_process_client(&c, Mode::Serve).err().map(|e| e.to_string()).unwrap_or_default(),
        };
        assert!(msg.contains("ray") && msg.contains(needle), "{text}: {msg}");
        assert!(!msg.contains("ray-pasted-value"), "{msg}");
    }
}
