//! Secrets reach agents only through a provider; their values never print.
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::{codes, AgentError};

/// A secret value. `Debug`/`Display` are redacted so it cannot leak into logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear text, for handing to a backend client. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// Looks a secret up by key; a missing secret is a permanent user error naming the key.
    fn get(&self, key: &str) -> Result<Secret, AgentError>;
}

/// Secrets from a fixed map (tests, embedded use) and, optionally, from files in a
/// directory (`<dir>/<key>`, the Kubernetes secret-mount layout flytekit also reads).
#[derive(Default, Clone)]
pub struct StaticSecrets {
    values: HashMap<String, Secret>,
    dir: Option<PathBuf>,
}

impl fmt::Debug for StaticSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSecrets")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field("dir", &self.dir)
            .finish()
    }
}

impl StaticSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.values.insert(key.into(), Secret::new(value));
        self
    }

    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Collects every environment variable named `<prefix><KEY>` as secret `key`
    /// (lower-cased). Called once by the process that composes the gateway.
    pub fn from_env_prefix(prefix: &str) -> Self {
        let values = std::env::vars()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|key| (key.to_ascii_lowercase(), Secret::new(v))))
            .collect();
        Self { values, dir: None }
    }
}

impl SecretProvider for StaticSecrets {
    fn get(&self, key: &str) -> Result<Secret, AgentError> {
        if let Some(v) = self.values.get(key).or_else(|| self.values.get(&key.to_ascii_lowercase())) {
            return Ok(v.clone());
        }
        if let Some(dir) = &self.dir {
            if !key.contains('/') && !key.contains("..") {
                if let Ok(v) = std::fs::read_to_string(dir.join(key)) {
                    return Ok(Secret::new(v.trim_end_matches('\n')));
                }
            }
        }
        Err(AgentError::user(codes::SECRET_MISSING, format!("secret {key:?} is not configured for this agent")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_missing_ones_named() {
        let s = StaticSecrets::new().with("token", "hunter2");
        let v = s.get("token").unwrap();
        assert_eq!(v.expose(), "hunter2");
        assert!(!format!("{v:?} {v} {s:?}").contains("hunter2"));
        let e = s.get("nope").unwrap_err();
        assert!(e.message.contains("\"nope\""));
    }
}
