//! The Tern gateway: serves Flyte's agent protocol (plus gRPC health and reflection) for
//! the agents it hosts in-process.
//!
//! Which agents exist is decided by cargo features (`agent-duckdb`, …); which are served,
//! and with what settings, by `tern.toml` ([`GatewayConfig`], `docs/gateway.md`).
pub mod config;
pub mod error;
pub mod metrics;
pub mod overload;
pub mod plugins;
pub mod registry;
pub mod routing;
pub mod security;
pub mod serve;

pub use config::GatewayConfig;
pub use error::GatewayError;
pub use registry::{BuiltAgents, Mode};
pub use serve::{serve, serve_gateway, ServeHandle};

use std::sync::Arc;

use tern_agent_api::context::AgentServices;
use tern_agent_api::datastore::LocalDataStore;
use tern_agent_api::dispatch::InProcessClient;
use tern_agent_api::factory::HostResources;
use tern_agent_api::metrics::AgentMetrics;
use tern_agent_api::secrets::StaticSecrets;
use tern_type_transformers::store::DataStores;

/// The shared services (data store, secrets, HTTP client, metrics) agents get, from
/// config. The data store routes by URI: local paths and `file://` to `[data_store].root`
/// (confined to the allowed roots when serving), `s3://` to S3 (connected on first use),
/// so propeller's `s3://` output prefixes work.
pub fn services(config: &GatewayConfig, mode: Mode, metrics: AgentMetrics) -> Result<AgentServices, GatewayError> {
    let mut secrets =
        StaticSecrets::from_env_map(&config.origin.env, &config.secrets.env_prefix).with_env(config.origin.env.clone());
    if let Some(dir) = &config.secrets.dir {
        secrets = secrets.with_dir(dir);
    }
    let ds = &config.data_store;
    let local = if ds.confine.unwrap_or(mode == Mode::Serve) {
        LocalDataStore::confined(&ds.root, &ds.allowed_roots)
    } else {
        LocalDataStore::new(&ds.root)
    };
    let store = DataStores::with_local(local).with_s3(ds.s3());
    let services = AgentServices::new(Arc::new(store), Arc::new(secrets))
        .map_err(|e| GatewayError::Registration { name: "(shared services)".into(), message: e.to_string() })?;
    Ok(services.with_metrics(metrics))
}

/// The in-process client over every agent `config` serves in `mode`, and what it serves.
pub fn in_process_client(config: &GatewayConfig, mode: Mode) -> Result<(InProcessClient, BuiltAgents), GatewayError> {
    in_process_client_with(config, mode, AgentMetrics::default())
}

/// [`in_process_client`], registering metrics in `metrics`.
pub fn in_process_client_with(
    config: &GatewayConfig,
    mode: Mode,
    metrics: AgentMetrics,
) -> Result<(InProcessClient, BuiltAgents), GatewayError> {
    let services = services(config, mode, metrics)?;
    let host = HostResources { env: config.origin.env.clone(), ..HostResources::detect() };
    let agents = plugins::agent_entries(config)?;
    let mut built = registry::build(config, mode, &services, &host, &agents.entries)?;
    built.not_served.extend(agents.skipped);
    Ok((InProcessClient::new(built.registry.clone(), services), built))
}

/// Everything `tern serve` (or an embedded run with routes) needs, built from config.
pub struct Gateway {
    pub router: Arc<routing::Router>,
    pub metrics: Arc<metrics::GatewayMetrics>,
    pub built: BuiltAgents,
    pub authenticator: Option<security::Authenticator>,
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    pub max_message_bytes: usize,
    /// `[server] max_in_flight`, `call_timeout`, `drain_timeout`.
    pub limits: overload::ServerLimits,
}

impl Gateway {
    /// Builds agents, routes, groups (with background health checks), auth and TLS.
    pub fn build(
        config: &GatewayConfig,
        mode: Mode,
        metrics: Arc<metrics::GatewayMetrics>,
    ) -> Result<Self, GatewayError> {
        let (local, built) = in_process_client_with(config, mode, metrics.agent_metrics())?;
        let secrets = local.services().secrets.clone();
        let handle_key = match &config.server.handle_key {
            Some(r) => Some(
                secrets.resolve(r).map_err(|e| GatewayError::Auth(format!("[server] handle_key: {}", e.message)))?,
            ),
            None => None,
        };
        if handle_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
            return Err(GatewayError::Auth("[server] handle_key must be at least 16 characters".into()));
        }
        let router = routing::Router::new(
            local,
            routing::RouterSettings {
                routes: &config.routes,
                groups: &config.groups,
                region: config.server.region.as_deref(),
                sealer: routing::envelope::Sealer::new(handle_key),
                secrets: secrets.as_ref(),
                health_checks: true,
                metrics: metrics.clone(),
            },
        )?;
        let authenticator = security::Authenticator::from_config(&config.auth, secrets.as_ref())?;
        let tls = config.server.tls.as_ref().map(|t| t.server_config(secrets.as_ref())).transpose()?;
        Ok(Self {
            router: Arc::new(router),
            metrics,
            built,
            authenticator,
            tls,
            max_message_bytes: config.server.max_message_bytes,
            limits: config.server.limits(),
        })
    }

    /// Refreshes the gauges that mirror live state (agents' slots, endpoint health);
    /// called before each scrape.
    pub fn metrics_refresh(&self) -> metrics::Refresh {
        let agents: Vec<(String, tern_agent_api::admission::Admission)> =
            self.built.served.iter().map(|a| (a.name.clone(), a.admission.clone())).collect();
        let groups = self.router.groups().clone();
        Arc::new(move |m: &metrics::GatewayMetrics| {
            for (name, admission) in &agents {
                m.set_agent_tasks(name, admission.in_use(), admission.waiting());
            }
            for (name, group) in &groups {
                for (url, region, healthy) in group.health() {
                    m.set_endpoint_health(name, &url, &region, healthy);
                }
            }
        })
    }
}
