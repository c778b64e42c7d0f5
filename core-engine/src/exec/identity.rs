//! The `task_execution_id` of a node attempt: the idempotency intent. It is stored as
//! JSON before CreateTask and reused verbatim on recovery, so the agent derives the same
//! idempotency key even if the workflow text was re-serialized in between.
use serde::{Deserialize, Serialize};
use tern_agent_api::core;

use crate::compile::{DOMAIN, PROJECT};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskExecutionIntent {
    pub task_project: String,
    pub task_domain: String,
    pub task_name: String,
    pub task_version: String,
    pub node_id: String,
    pub execution_project: String,
    pub execution_domain: String,
    pub execution_name: String,
    pub retry_attempt: u32,
}

impl TaskExecutionIntent {
    pub fn new(task_id: Option<&core::Identifier>, execution_id: &str, node_id: &str, attempt: u32) -> Self {
        let t = task_id.cloned().unwrap_or_default();
        Self {
            task_project: t.project,
            task_domain: t.domain,
            task_name: t.name,
            task_version: t.version,
            node_id: node_id.to_owned(),
            execution_project: PROJECT.into(),
            execution_domain: DOMAIN.into(),
            execution_name: execution_id.to_owned(),
            retry_attempt: attempt,
        }
    }

    pub fn to_proto(&self) -> core::TaskExecutionIdentifier {
        core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier {
                resource_type: core::ResourceType::Task as i32,
                project: self.task_project.clone(),
                domain: self.task_domain.clone(),
                name: self.task_name.clone(),
                version: self.task_version.clone(),
                org: String::new(),
            }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: self.node_id.clone(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: self.execution_project.clone(),
                    domain: self.execution_domain.clone(),
                    name: self.execution_name.clone(),
                    org: String::new(),
                }),
            }),
            retry_attempt: self.retry_attempt,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
