//! A group of endpoints (other Tern gateways or flytekit connector servers), each in a
//! region: health checks, passive outlier ejection, and creates that go to the first
//! healthy endpoint of the preferred region and fail over to the next.
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tern_agent_api::client::AgentClient;
use tern_agent_api::grpc_client::{ClientOptions, ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::secrets::SecretProvider;

use super::config::GroupConfig;
use crate::error::GatewayError;

/// The service a health check asks about: every Flyte agent server registers it (flytekit
/// does not register the empty service name).
const HEALTH_SERVICE: &str = "flyteidl.service.AgentMetadataService";

#[derive(Debug, Clone, Default)]
struct Health {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
    /// Result of the last active check (`None`: not checked yet).
    checked_ok: Option<bool>,
    last_error: String,
}

/// One endpoint and what is known of its health.
pub struct Endpoint {
    pub url: String,
    pub region: String,
    pub client: GrpcAgentClient,
    health: Mutex<Health>,
}

impl Endpoint {
    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Usable for new creates: not ejected and not failing its checks.
    pub fn is_healthy(&self) -> bool {
        let h = self.lock();
        h.ejected_until.is_none_or(|t| Instant::now() >= t) && h.checked_ok != Some(false)
    }

    /// Why it is not healthy, for messages.
    pub fn last_error(&self) -> String {
        self.lock().last_error.clone()
    }
}

/// Whether an error says the endpoint itself is unreachable or failing (counts towards
/// ejection, and lets a create fail over).
fn is_endpoint_failure(e: &AgentError) -> bool {
    e.code == codes::TRANSPORT || e.class == tern_agent_api::error::ErrorClass::Unavailable
}

pub struct Group {
    pub name: String,
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Indexes into `endpoints`: preferred region first, then the others in listed order.
    order: Vec<usize>,
    pub config: GroupConfig,
    /// The agents the group serves (`ListAgents`), refreshed with the health checks.
    catalog: RwLock<Option<Vec<admin::Agent>>>,
}

impl Group {
    pub fn new(
        name: &str,
        config: GroupConfig,
        default_region: Option<&str>,
        secrets: &dyn SecretProvider,
    ) -> Result<Self, GatewayError> {
        let bad = |m: String| GatewayError::Routing(format!("[groups.{name}]: {m}"));
        if config.endpoints.is_empty() {
            return Err(bad("no endpoints".into()));
        }
        let t = &config.timeouts;
        let timeouts = ClientTimeouts {
            connect: t.connect,
            create: t.create,
            get: t.get,
            delete: t.delete,
            execute_sync: t.execute_sync,
            metadata: t.metadata,
        };
        let options: ClientOptions = config.client.options(secrets, timeouts).map_err(|e| bad(e.to_string()))?;
        let mut endpoints = Vec::new();
        for e in &config.endpoints {
            if endpoints.iter().any(|x: &Arc<Endpoint>| x.url == e.url) {
                return Err(bad(format!("endpoint {} is listed twice", e.url)));
            }
            let client = GrpcAgentClient::connect_lazy_with(&e.url, options.clone()).map_err(|err| bad(err.message))?;
            endpoints.push(Arc::new(Endpoint {
                url: e.url.clone(),
                region: e.region.clone(),
                client,
                health: Mutex::new(Health::default()),
            }));
        }
        let preferred = config
            .prefer_region
            .clone()
            .or_else(|| default_region.map(str::to_owned))
            .unwrap_or_else(|| endpoints[0].region.clone());
        let mut order: Vec<usize> = (0..endpoints.len()).collect();
        // Stable: within a region, the listed order stays.
        order.sort_by_key(|&i| {
            let region = &endpoints[i].region;
            let first_of_region = endpoints.iter().position(|e| &e.region == region).unwrap_or(i);
            (region != &preferred, first_of_region)
        });
        Ok(Self { name: name.to_owned(), endpoints, order, config, catalog: RwLock::new(None) })
    }

    pub fn endpoint(&self, url: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.url == url)
    }

    /// Endpoints in the order creates try them: healthy ones by preference, then (as a
    /// last resort) the unhealthy ones.
    pub fn candidates(&self) -> Vec<&Arc<Endpoint>> {
        let (healthy, unhealthy): (Vec<_>, Vec<_>) =
            self.order.iter().map(|&i| &self.endpoints[i]).partition(|e| e.is_healthy());
        healthy.into_iter().chain(unhealthy).collect()
    }

    /// Records the outcome of a call to `endpoint` (passive outlier ejection).
    pub fn record(&self, endpoint: &Endpoint, outcome: Result<(), &AgentError>) {
        let mut h = endpoint.lock();
        match outcome {
            Ok(()) => {
                h.consecutive_failures = 0;
                h.ejected_until = None;
            }
            Err(e) if is_endpoint_failure(e) => {
                h.consecutive_failures += 1;
                h.last_error = e.message.clone();
                if h.consecutive_failures >= self.config.eject_after_failures.max(1) {
                    if h.ejected_until.is_none_or(|t| Instant::now() >= t) {
                        tracing::warn!(group = %self.name, endpoint = %endpoint.url, error = %e.message, "endpoint ejected");
                    }
                    h.ejected_until = Some(Instant::now() + self.config.eject_for);
                }
            }
            // The endpoint answered (the task or request was at fault): it is alive.
            Err(_) => h.consecutive_failures = 0,
        }
    }

    /// Tries `call` on each candidate until one succeeds or fails for a reason other
    /// than the endpoint being unreachable. Returns the endpoint that answered.
    pub async fn first_answer<'a, T, F, Fut>(&'a self, mut call: F) -> Result<(T, &'a Arc<Endpoint>), AgentError>
    where
        F: FnMut(&'a GrpcAgentClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, AgentError>>,
    {
        let mut failures = Vec::new();
        for endpoint in self.candidates() {
            match call(&endpoint.client).await {
                Ok(v) => {
                    self.record(endpoint, Ok(()));
                    return Ok((v, endpoint));
                }
                Err(e) if is_endpoint_failure(&e) || e.class == tern_agent_api::error::ErrorClass::ResourceExhausted => {
                    self.record(endpoint, Err(&e));
                    tracing::info!(group = %self.name, endpoint = %endpoint.url, error = %e.message, "failing over");
                    failures.push(format!("{} ({}): {}", endpoint.url, endpoint.region, e.message));
                }
                Err(e) => {
                    self.record(endpoint, Err(&e));
                    return Err(e);
                }
            }
        }
        Err(AgentError::unavailable(
            codes::TRANSPORT,
            format!("no endpoint of group {:?} could take the task: {}", self.name, failures.join("; ")),
        ))
    }

    /// One round of active health checks, and a refresh of the catalog.
    pub async fn check_once(&self) {
        for endpoint in &self.endpoints {
            let result = endpoint.client.check_health(HEALTH_SERVICE).await;
            let ok = matches!(result, Ok(true));
            {
                let mut h = endpoint.lock();
                h.checked_ok = Some(ok);
                match &result {
                    Ok(true) => {}
                    Ok(false) => h.last_error = "health check: NOT_SERVING".into(),
                    Err(e) => h.last_error = format!("health check: {}", e.message),
                }
            }
            self.record(endpoint, result.as_ref().map(|_| ()));
        }
        if let Some(endpoint) = self.candidates().into_iter().find(|e| e.is_healthy()) {
            if let Ok(agents) = endpoint.client.list_agents().await {
                *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(agents);
            }
        }
    }

    /// Runs health checks every `health_check_interval` until the task is aborted.
    pub fn spawn_health_checks(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let group = Arc::downgrade(self);
        let every = self.config.health_check_interval.max(Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                let Some(g) = group.upgrade() else { return };
                g.check_once().await;
                drop(g);
                tokio::time::sleep(every).await;
            }
        })
    }

    /// The group's agents (fetched now if never fetched).
    pub async fn agents(&self) -> Result<Vec<admin::Agent>, AgentError> {
        if let Some(agents) = self.catalog.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(agents);
        }
        let (agents, _) = self.first_answer(|c| c.list_agents()).await?;
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(agents.clone());
        Ok(agents)
    }

    /// `(url, region, healthy)` of every endpoint, for metrics and `tern agents`.
    pub fn health(&self) -> Vec<(String, String, bool)> {
        self.endpoints.iter().map(|e| (e.url.clone(), e.region.clone(), e.is_healthy())).collect()
    }
}
