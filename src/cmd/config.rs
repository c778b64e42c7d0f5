//! `tern config show`: the effective gateway configuration, secrets redacted.
use std::path::Path;

use tern_agent_api::factory::HostResources;
use tern_gateway::config::show;
use tern_gateway::registry;
use tern_gateway::{GatewayConfig, Mode};

use super::fail;
use crate::exit::Exit;

pub fn show(config_path: Option<&Path>, mode: Mode, json: bool) -> Exit {
    let config = match GatewayConfig::load(config_path, tern_gateway::config::env::from_process()) {
        Ok(c) => c,
        Err(e) => return fail(Exit::Usage, e),
    };
    let host = HostResources { env: config.origin.env.clone(), ..HostResources::detect() };
    let agents = match tern_gateway::plugins::agent_entries(&config) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Usage, e),
    };
    for (file, why) in &agents.skipped {
        eprintln!("warning: plugin {file} left out: {why}");
    }
    let planned = match registry::plan(&config, mode, &host, &agents.entries) {
        Ok(p) => p,
        Err(e) => return fail(Exit::Usage, e),
    };
    if json {
        match show::render_json(&config, &planned) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            Err(e) => return fail(Exit::System, e),
        }
    } else {
        match show::render_toml(&config, &planned, mode) {
            Ok(text) => print!("{text}"),
            Err(e) => return fail(Exit::System, e),
        }
    }
    Exit::Ok
}
