//! `tern serve`: host the in-process agents over gRPC until SIGINT/SIGTERM.
use std::path::PathBuf;
use std::sync::Arc;

use tern_gateway::GatewayConfig;

use super::fail;
use crate::exit::Exit;

pub async fn run(addr: Option<String>, config_path: Option<PathBuf>) -> Exit {
    let mut config = match &config_path {
        Some(p) => match GatewayConfig::load(p) {
            Ok(c) => c,
            Err(e) => return fail(Exit::Usage, e),
        },
        None => GatewayConfig::default(),
    };
    if let Some(a) = addr {
        config.server.addr = a;
    }
    let client = match tern_gateway::in_process_client(&config) {
        Ok(c) => c,
        Err(e) => return fail(Exit::Usage, e),
    };
    let agents: Vec<String> = client.registry().agents().into_iter().map(|a| a.name).collect();
    let handle = match tern_gateway::serve(Arc::new(client), &config.server.addr).await {
        Ok(h) => h,
        Err(e) => return fail(Exit::System, e),
    };
    eprintln!("tern serve listening on {} (agents: {})", handle.local_addr, agents.join(", "));
    shutdown_signal().await;
    eprintln!("tern serve: shutting down");
    match handle.shutdown().await {
        Ok(()) => Exit::Ok,
        Err(e) => fail(Exit::System, e),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
