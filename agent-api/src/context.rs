//! Everything an agent may touch, handed to it per call. Agents never read global
//! state or the environment directly.
use std::sync::Arc;
use std::time::Instant;

use crate::datastore::{DataStore, LocalDataStore};
use crate::error::AgentError;
use crate::idempotency::IdempotencyKey;
use crate::metrics::AgentMetrics;
use crate::proto::flyteidl::admin;
use crate::secrets::{SecretProvider, StaticSecrets};

/// Long-lived services shared by every call (cheap to clone).
#[derive(Debug, Clone)]
pub struct AgentServices {
    pub data_store: Arc<dyn DataStore>,
    pub secrets: Arc<dyn SecretProvider>,
    pub http: reqwest::Client,
    /// Where the agent's own metrics go (served on the gateway's `/metrics`).
    pub metrics: AgentMetrics,
}

impl AgentServices {
    /// Fails only when the HTTP client cannot be built (`TERN-A015`).
    pub fn new(data_store: Arc<dyn DataStore>, secrets: Arc<dyn SecretProvider>) -> Result<Self, AgentError> {
        let http = crate::http::agent_client(reqwest::Client::builder())?;
        Ok(Self { data_store, secrets, http, metrics: AgentMetrics::default() })
    }

    /// The same services with metrics registered in `metrics`.
    pub fn with_metrics(mut self, metrics: AgentMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Local data store rooted at `root`, no secrets: for tests and examples.
    ///
    /// # Panics
    /// When the HTTP client cannot be built (see [`AgentServices::new`], which returns it as an error).
    pub fn local(root: impl Into<std::path::PathBuf>) -> Self {
        match Self::new(LocalDataStore::shared(root), Arc::new(StaticSecrets::new())) {
            Ok(services) => services,
            Err(e) => panic!("AgentServices::local: {e}"),
        }
    }

    /// The context for one call.
    pub fn task_context(
        &self,
        output_prefix: impl Into<String>,
        execution: Option<Box<admin::TaskExecutionMetadata>>,
        deadline: Option<Instant>,
    ) -> TaskContext {
        let idempotency_key =
            execution.as_ref().and_then(|m| m.task_execution_id.as_ref()).and_then(IdempotencyKey::from_execution);
        TaskContext {
            services: self.clone(),
            output_prefix: output_prefix.into(),
            execution,
            idempotency_key,
            deadline,
        }
    }
}

/// Per-call context.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub services: AgentServices,
    /// Where this attempt's outputs go (`<prefix>/outputs.pb` and any data files).
    pub output_prefix: String,
    /// Who runs this task: execution identity, namespace, labels (absent on get/delete).
    /// Boxed: it is large, and contexts move through every layer of a call.
    pub execution: Option<Box<admin::TaskExecutionMetadata>>,
    /// Stable key for idempotent submission, derived from `task_execution_id`.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The caller's deadline for this call, when it sent one.
    pub deadline: Option<Instant>,
}

impl TaskContext {
    pub fn data_store(&self) -> &Arc<dyn DataStore> {
        &self.services.data_store
    }

    pub fn secrets(&self) -> &Arc<dyn SecretProvider> {
        &self.services.secrets
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.services.http
    }
}
