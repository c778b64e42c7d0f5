//! Stable idempotency keys derived from `task_execution_id`.
//!
//! Propeller may call `CreateTask` more than once for the same attempt (a crash before
//! it records the handle, a deadline after the job was submitted). Every agent derives
//! its backend job id or token from this key so a second create finds the first job.
use sha2::{Digest, Sha256};

use crate::proto::flyteidl::core;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` when the caller sent no execution identity (e.g. an ad-hoc call).
    pub fn from_execution(id: &core::TaskExecutionIdentifier) -> Option<Self> {
        let node = id.node_execution_id.as_ref()?;
        let exec = node.execution_id.as_ref();
        let task = id.task_id.as_ref();
        let parts = [
            exec.map(|e| e.org.as_str()).unwrap_or_default(),
            exec.map(|e| e.project.as_str()).unwrap_or_default(),
            exec.map(|e| e.domain.as_str()).unwrap_or_default(),
            exec.map(|e| e.name.as_str()).unwrap_or_default(),
            node.node_id.as_str(),
            task.map(|t| t.project.as_str()).unwrap_or_default(),
            task.map(|t| t.domain.as_str()).unwrap_or_default(),
            task.map(|t| t.name.as_str()).unwrap_or_default(),
            task.map(|t| t.version.as_str()).unwrap_or_default(),
        ];
        let mut hasher = Sha256::new();
        for p in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            hasher.update((p.len() as u64).to_be_bytes());
            hasher.update(p.as_bytes());
        }
        hasher.update(id.retry_attempt.to_be_bytes());
        Some(Self(hex::encode(&hasher.finalize()[..16])))
    }

    /// Wraps a key computed elsewhere (e.g. restored from a stored handle).
    pub fn from_string(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// 32 lowercase hex characters: safe as a job name, id or token almost anywhere.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(node: &str, attempt: u32) -> core::TaskExecutionIdentifier {
        core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "t".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: "p".into(),
                    domain: "d".into(),
                    name: "e1".into(),
                    org: String::new(),
                }),
            }),
            retry_attempt: attempt,
        }
    }

    #[test]
    fn same_attempt_same_key_other_attempt_other_key() {
        let a = IdempotencyKey::from_execution(&id("n0", 0)).unwrap();
        assert_eq!(a, IdempotencyKey::from_execution(&id("n0", 0)).unwrap());
        assert_ne!(a, IdempotencyKey::from_execution(&id("n0", 1)).unwrap());
        assert_ne!(a, IdempotencyKey::from_execution(&id("n1", 0)).unwrap());
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn no_node_id_no_key() {
        assert!(IdempotencyKey::from_execution(&core::TaskExecutionIdentifier::default()).is_none());
    }
}
