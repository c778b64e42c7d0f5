//! Which agent client serves which task type, and what those clients say they serve.
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use tern_agent_api::category::TaskCategory;
use tern_agent_api::client::AgentClient;
use tern_agent_api::error::AgentError;

use crate::compile::ExecutionMode;

/// Routes task types to agent clients: explicit `routes` first, else `default`.
#[derive(Clone)]
pub struct AgentRouter {
    pub default: Arc<dyn AgentClient>,
    /// Task type → client (e.g. a flytekit connector server for `py_double`).
    pub routes: HashMap<String, Arc<dyn AgentClient>>,
}

impl fmt::Debug for AgentRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: BTreeMap<&String, String> = self.routes.iter().map(|(k, v)| (k, v.describe())).collect();
        f.debug_struct("AgentRouter").field("default", &self.default.describe()).field("routes", &routes).finish()
    }
}

/// What one task category is served by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub agent: String,
    pub mode: ExecutionMode,
    /// `AgentClient::describe()` of the client.
    pub endpoint: String,
}

/// `ListAgents` of one distinct client.
#[derive(Debug, Clone)]
pub struct ClientCatalog {
    pub endpoint: String,
    /// The categories it serves, or why it could not be asked.
    pub served: Result<BTreeMap<TaskCategory, Served>, AgentError>,
}

/// The result of [`AgentRouter::discover`]: per distinct client, what it serves, plus
/// the routing, so a lookup answers "does the client this type routes to serve it?".
#[derive(Debug, Clone)]
pub struct ServedTypes {
    pub clients: Vec<ClientCatalog>,
    routes: HashMap<String, usize>,
    default: usize,
}

impl ServedTypes {
    /// The agent serving `category` on the client its type routes to, or a message naming
    /// what that client serves (or why it could not be asked).
    pub fn lookup(&self, category: &TaskCategory) -> Result<&Served, String> {
        let idx = self.routes.get(&category.name).copied().unwrap_or(self.default);
        let Some(catalog) = self.clients.get(idx) else {
            return Err("no agent client is configured".into());
        };
        match &catalog.served {
            Ok(map) => map.get(category).ok_or_else(|| {
                let list: Vec<String> = map.keys().map(ToString::to_string).collect();
                format!(
                    "no agent at {} serves task type {category}; it serves: {}",
                    catalog.endpoint,
                    if list.is_empty() { "nothing".to_owned() } else { list.join(", ") }
                )
            }),
            Err(e) => Err(format!("the agent server {} could not list its agents: {e}", catalog.endpoint)),
        }
    }

    /// Every served category with its client, for `tern agents`.
    pub fn all(&self) -> Vec<(&TaskCategory, &Served)> {
        self.clients.iter().filter_map(|c| c.served.as_ref().ok()).flat_map(|m| m.iter()).collect()
    }
}

fn client_key(c: &Arc<dyn AgentClient>) -> usize {
    Arc::as_ptr(c) as *const () as usize
}

impl AgentRouter {
    pub fn new(default: Arc<dyn AgentClient>) -> Self {
        Self { default, routes: HashMap::new() }
    }

    /// Sends every task of `task_type` to `client`.
    pub fn with_route(mut self, task_type: impl Into<String>, client: Arc<dyn AgentClient>) -> Self {
        self.routes.insert(task_type.into(), client);
        self
    }

    pub fn client_for(&self, task_type: &str) -> &Arc<dyn AgentClient> {
        self.routes.get(task_type).unwrap_or(&self.default)
    }

    /// The client recorded as an attempt's owner (its `describe()`), so a job is polled and
    /// deleted where it was created even if routing changed since; the current route when
    /// no configured client has that description any more.
    pub fn owner(&self, task_type: &str, endpoint: &str) -> &Arc<dyn AgentClient> {
        let current = self.client_for(task_type);
        if current.describe() == endpoint {
            return current;
        }
        std::iter::once(&self.default).chain(self.routes.values()).find(|c| c.describe() == endpoint).unwrap_or_else(
            || {
                tracing::warn!(task_type, endpoint, "the agent recorded with the attempt is no longer configured");
                current
            },
        )
    }

    /// Calls `ListAgents` once on each distinct client. A client that fails is recorded
    /// with its error rather than failing discovery, so the compiler can name exactly
    /// the nodes it affects.
    pub async fn discover(&self) -> ServedTypes {
        let mut distinct: Vec<&Arc<dyn AgentClient>> = vec![&self.default];
        let mut routes = HashMap::new();
        let mut routed: Vec<(&String, &Arc<dyn AgentClient>)> = self.routes.iter().collect();
        routed.sort_by_key(|(t, _)| *t);
        for (t, c) in routed {
            let idx = match distinct.iter().position(|d| client_key(d) == client_key(c)) {
                Some(i) => i,
                None => {
                    distinct.push(c);
                    distinct.len() - 1
                }
            };
            routes.insert(t.clone(), idx);
        }
        let asks = distinct.iter().map(|c| async move {
            let endpoint = c.describe();
            let served = c.list_agents().await.map(|agents| {
                let mut map = BTreeMap::new();
                for a in agents {
                    let mode = if a.is_sync { ExecutionMode::Sync } else { ExecutionMode::Async };
                    #[allow(deprecated)]
                    let mut cats: Vec<TaskCategory> = a
                        .supported_task_categories
                        .iter()
                        .map(|c| TaskCategory::new(c.name.clone(), c.version))
                        .collect();
                    // Older servers only fill the deprecated `supported_task_types` (version 0).
                    #[allow(deprecated)]
                    if cats.is_empty() {
                        cats = a.supported_task_types.iter().map(|t| TaskCategory::new(t.clone(), 0)).collect();
                    }
                    for cat in cats {
                        map.entry(cat).or_insert_with(|| Served {
                            agent: a.name.clone(),
                            mode,
                            endpoint: endpoint.clone(),
                        });
                    }
                }
                map
            });
            ClientCatalog { endpoint, served }
        });
        let clients = futures::future::join_all(asks).await;
        ServedTypes { clients, routes, default: 0 }
    }
}
