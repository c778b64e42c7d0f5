//! `(task_type, version)`: the key agents are registered and routed by.
use std::fmt;

use crate::proto::flyteidl::admin;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskCategory {
    pub name: String,
    pub version: i32,
}

impl TaskCategory {
    pub fn new(name: impl Into<String>, version: i32) -> Self {
        Self { name: name.into(), version }
    }

    /// Category of a request that names it either in `task_category` or, like older
    /// propellers, only in the deprecated `task_type` string (then version 0).
    pub fn from_request(category: Option<&admin::TaskCategory>, deprecated_task_type: &str) -> Self {
        match category {
            Some(c) if !c.name.is_empty() => Self::new(c.name.clone(), c.version),
            _ => Self::new(deprecated_task_type, 0),
        }
    }

    pub fn to_proto(&self) -> admin::TaskCategory {
        admin::TaskCategory { name: self.name.clone(), version: self.version }
    }
}

impl fmt::Display for TaskCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (version {})", self.name, self.version)
    }
}
