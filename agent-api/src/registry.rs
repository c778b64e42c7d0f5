//! Agents keyed by `(task_type, version)`, plus their `admin.Agent` metadata by name.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::agent::{AsyncAgent, SyncAgent};
use crate::category::TaskCategory;
use crate::error::{codes, AgentError};
use crate::proto::flyteidl::admin;

/// One registered agent.
#[derive(Clone)]
pub enum AgentHandle {
    Async(Arc<dyn AsyncAgent>),
    Sync(Arc<dyn SyncAgent>),
}

impl AgentHandle {
    pub fn name(&self) -> &str {
        match self {
            Self::Async(a) => a.name(),
            Self::Sync(a) => a.name(),
        }
    }

    pub fn is_sync(&self) -> bool {
        matches!(self, Self::Sync(_))
    }

    /// The agent's declared backend states, if any.
    pub fn backend_states(&self) -> Option<&crate::states::StateTable> {
        match self {
            Self::Async(a) => a.backend_states(),
            Self::Sync(a) => a.backend_states(),
        }
    }

    fn categories(&self) -> Vec<TaskCategory> {
        match self {
            Self::Async(a) => a.task_categories(),
            Self::Sync(a) => a.task_categories(),
        }
    }
}

#[derive(Default, Clone)]
pub struct AgentRegistry {
    by_category: HashMap<TaskCategory, AgentHandle>,
    metadata: BTreeMap<String, admin::Agent>,
}

impl AgentRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register_async(&mut self, agent: Arc<dyn AsyncAgent>) -> Result<(), AgentError> {
        self.register(AgentHandle::Async(agent))
    }

    pub fn register_sync(&mut self, agent: Arc<dyn SyncAgent>) -> Result<(), AgentError> {
        self.register(AgentHandle::Sync(agent))
    }

    /// Registers an agent; a second agent for the same category is refused (never
    /// silently replaced), naming both.
    pub fn register(&mut self, handle: AgentHandle) -> Result<(), AgentError> {
        let categories = handle.categories();
        if categories.is_empty() {
            return Err(AgentError::invalid_argument(
                codes::DUPLICATE_AGENT,
                format!("agent {:?} declares no task categories", handle.name()),
            ));
        }
        for c in &categories {
            if let Some(existing) = self.by_category.get(c) {
                return Err(AgentError::invalid_argument(
                    codes::DUPLICATE_AGENT,
                    format!(
                        "task category {c} is already served by agent {:?}; cannot also register {:?} for it: give one of them \
                         other task types (the `task_types` key of their [agents.*] section), or route the type to another \
                         gateway ([[routes]])",
                        existing.name(),
                        handle.name()
                    ),
                ));
            }
        }
        let entry = self.metadata.entry(handle.name().to_owned()).or_insert_with(|| admin::Agent {
            name: handle.name().to_owned(),
            is_sync: handle.is_sync(),
            ..Default::default()
        });
        for c in &categories {
            #[allow(deprecated)]
            if !entry.supported_task_types.contains(&c.name) {
                entry.supported_task_types.push(c.name.clone());
            }
            entry.supported_task_categories.push(c.to_proto());
            self.by_category.insert(c.clone(), handle.clone());
        }
        Ok(())
    }

    /// The agent for a category, or `NOT_FOUND` naming the category and what is served.
    pub fn lookup(&self, category: &TaskCategory) -> Result<&AgentHandle, AgentError> {
        self.by_category.get(category).ok_or_else(|| {
            let mut served: Vec<String> = self.by_category.keys().map(ToString::to_string).collect();
            served.sort();
            AgentError::not_found(
                codes::AGENT_NOT_FOUND,
                format!("no agent serves task type {category}; this server serves: {}", served.join(", ")),
            )
        })
    }

    pub fn agents(&self) -> Vec<admin::Agent> {
        self.metadata.values().cloned().collect()
    }

    pub fn agent(&self, name: &str) -> Result<admin::Agent, AgentError> {
        self.metadata.get(name).cloned().ok_or_else(|| {
            AgentError::not_found(
                codes::AGENT_NOT_FOUND,
                format!("no agent named {name:?}; known agents: {:?}", self.metadata.keys().collect::<Vec<_>>()),
            )
        })
    }

    pub fn categories(&self) -> impl Iterator<Item = &TaskCategory> {
        self.by_category.keys()
    }
}
