//! `tern serve`: host the configured agents over gRPC until SIGINT/SIGTERM.
use std::net::SocketAddr;
use std::path::PathBuf;

use tern_gateway::{Gateway, GatewayConfig, Mode};

use super::fail;
use crate::exit::Exit;

pub async fn run(addr: Option<String>, config_path: Option<PathBuf>, metrics_addr: Option<String>) -> Exit {
    let stop = shutdown_signal();
    let mut config = match GatewayConfig::load(config_path.as_deref(), tern_gateway::config::env::from_process()) {
        Ok(c) => c,
        Err(e) => return fail(Exit::Usage, e),
    };
    if let Some(a) = addr {
        config.server.addr = a;
    }
    if let Some(a) = metrics_addr {
        config.metrics.addr = Some(a);
    }
    let gateway = match Gateway::build(&config, Mode::Serve, Default::default()) {
        Ok(g) => g,
        Err(e) => return fail(Exit::Usage, e),
    };
    let handle = match tern_gateway::serve_gateway(&gateway, &config.server.addr).await {
        Ok(h) => h,
        Err(e) => return fail(Exit::System, e),
    };
    let metrics_server = match &config.metrics.addr {
        Some(addr) => match tern_gateway::metrics::serve_metrics(addr, gateway.metrics.clone(), gateway.metrics_refresh()).await {
            Ok((local, task)) => {
                eprintln!("tern serve: metrics on http://{local}/metrics");
                Some(task)
            }
            Err(e) => return fail(Exit::System, e),
        },
        None => None,
    };
    announce(&config, &gateway, handle.local_addr);
    stop.await;
    // Handlers for a second signal, installed before the drain starts.
    let again = shutdown_signal();
    eprintln!(
        "tern serve: shutting down: health NOT_SERVING, new calls refused, in-flight calls have {:?} (drain_timeout; a second signal stops at once)",
        config.server.drain_timeout
    );
    let result = tokio::select! {
        r = handle.shutdown() => r,
        _ = again => {
            eprintln!("tern serve: second signal: stopping without waiting for in-flight calls");
            Ok(())
        }
    };
    if let Some(task) = metrics_server {
        task.abort();
    }
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => fail(Exit::System, e),
    }
}

/// What is served, to whom: printed once at start, like flytekit's connector table.
fn announce(config: &GatewayConfig, gateway: &Gateway, addr: SocketAddr) {
    let built = &gateway.built;
    eprintln!(
        "tern serve listening on {addr} ({}, {}; config: {})",
        if gateway.tls.is_some() { "TLS" } else { "plaintext" },
        if gateway.authenticator.is_some() { "bearer tokens required" } else { "no authentication" },
        config.origin.describe()
    );
    let limits = &gateway.limits;
    eprintln!(
        "  at most {} calls in flight (then RESOURCE_EXHAUSTED), each at most {:?} (call_timeout); drain on shutdown: {:?}",
        limits.max_in_flight, limits.call_timeout, limits.drain_timeout
    );
    eprintln!("  {:<10} {:<28} {:<6} {:<14} SOURCE", "AGENT", "TASK TYPES", "MODE", "CONCURRENCY");
    for a in &built.served {
        let types: Vec<String> = a.categories.iter().map(|c| format!("{}:{}", c.name, c.version)).collect();
        let limit = match a.max_concurrency {
            Some(n) => format!("{n} ({})", if a.on_full == tern_agent_api::admission::OnFull::Queue { "queue" } else { "reject" }),
            None => "unlimited".into(),
        };
        eprintln!(
            "  {:<10} {:<28} {:<6} {:<14} {}{}",
            a.name,
            types.join(","),
            if a.is_sync { "sync" } else { "async" },
            limit,
            a.source,
            if a.exposure.is_safe() { String::new() } else { format!("  [enabled explicitly: {}]", a.exposure.risk()) }
        );
    }
    for (name, reason) in &built.not_served {
        eprintln!("  not serving {name}: {reason}");
    }
    for (i, route) in config.routes.iter().enumerate() {
        let name = route.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
        eprintln!("  route {name} -> {}", route.target);
    }
    for (name, group) in gateway.router.groups() {
        for (url, region, _) in group.health() {
            eprintln!("  group {name}: {url} (region {region:?})");
        }
    }
    if !addr.ip().is_loopback() && gateway.authenticator.is_none() {
        eprintln!(
            "warning: listening on {addr}, beyond loopback, without authentication: anyone who can reach this port can run tasks. \
             Configure [auth] tokens (docs/gateway.md)."
        );
    }
}

/// SIGINT or SIGTERM. The handlers are installed when this is created, so a signal that
/// arrives while the gateway is still starting is not lost (nor kills the process).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        match (term, int) {
            (Some(mut term), Some(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
