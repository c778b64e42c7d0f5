//! Secrets reach agents only through a provider; their values never print.
//!
//! Configuration never holds a secret value: it holds a [`SecretRef`] (`env:NAME` or
//! `file:PATH`) that the provider resolves when the secret is needed, so a rotated file
//! is picked up without a restart and `tern config show` can print the config as is.
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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

/// Where a secret's value is: a reference, never the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// `env:NAME`: the environment variable `NAME` of the process that resolves it.
    Env(String),
    /// `file:PATH`: the file's content, without trailing newlines (Kubernetes secret mounts).
    File(PathBuf),
}

impl SecretRef {
    /// The reference as written in config (`env:NAME`, `file:PATH`); not secret.
    pub fn reference(&self) -> String {
        match self {
            Self::Env(name) => format!("env:{name}"),
            Self::File(path) => format!("file:{}", path.display()),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({})", self.reference())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference())
    }
}

/// Why a text is not a secret reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a secret reference `env:NAME` or `file:PATH`, got {shown}: secret values are never written in configuration"
)]
pub struct BadSecretRef {
    /// What was given, shortened so a pasted secret is not echoed whole.
    shown: String,
}

impl FromStr for SecretRef {
    type Err = BadSecretRef;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = s.strip_prefix("env:") {
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                return Ok(Self::Env(name.to_owned()));
            }
        } else if let Some(path) = s.strip_prefix("file:") {
            if !path.is_empty() {
                return Ok(Self::File(PathBuf::from(path)));
            }
        }
        // Never echo what may be a pasted secret: its first characters at most.
        let shown = match s.char_indices().nth(4) {
            Some((i, _)) => format!("{:?}… ({} characters)", &s[..i], s.chars().count()),
            None if s.is_empty() => "an empty text".to_owned(),
            None => "a short text".to_owned(),
        };
        Err(BadSecretRef { shown })
    }
}

impl serde::Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.reference())
    }
}

impl<'de> serde::Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Reads the value a reference points to. Only secret providers call this: agents ask
/// their provider ([`SecretProvider::resolve`]), never the environment.
pub fn read_reference(reference: &SecretRef) -> Result<Secret, AgentError> {
    match reference {
        SecretRef::Env(name) => std::env::var(name).map(Secret::new).map_err(|_| {
            AgentError::user(
                codes::SECRET_MISSING,
                format!("secret {reference} is not available: environment variable {name} is not set"),
            )
        }),
        SecretRef::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Secret::new(text.trim_end_matches(['\n', '\r']))),
            Err(e) => Err(AgentError::user(
                codes::SECRET_MISSING,
                format!("secret {reference} is not available: {}", e.kind()),
            )),
        },
    }
}

pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// Looks a secret up by key; a missing secret is a permanent user error naming the key.
    fn get(&self, key: &str) -> Result<Secret, AgentError>;

    /// Resolves a reference from configuration, at the moment it is needed.
    fn resolve(&self, reference: &SecretRef) -> Result<Secret, AgentError> {
        read_reference(reference)
    }
}

/// Secrets from a fixed map (tests, embedded use) and, optionally, from files in a
/// directory (`<dir>/<key>`, the Kubernetes secret-mount layout flytekit also reads).
#[derive(Default, Clone)]
pub struct StaticSecrets {
    values: HashMap<String, Secret>,
    dir: Option<PathBuf>,
    /// The environment `env:` references resolve against (default: the process's).
    env: Option<std::sync::Arc<std::collections::BTreeMap<String, String>>>,
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
        Self::from_env_map(&std::env::vars().collect(), prefix)
    }

    /// [`from_env_prefix`](Self::from_env_prefix) over a snapshot of the environment.
    pub fn from_env_map(env: &std::collections::BTreeMap<String, String>, prefix: &str) -> Self {
        let values = env
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|key| (key.to_ascii_lowercase(), Secret::new(v.clone()))))
            .collect();
        Self { values, dir: None, env: None }
    }

    /// Resolves `env:NAME` references in `env` (the snapshot the gateway was configured
    /// from) instead of the live process environment.
    pub fn with_env(mut self, env: std::sync::Arc<std::collections::BTreeMap<String, String>>) -> Self {
        self.env = Some(env);
        self
    }
}

impl SecretProvider for StaticSecrets {
    fn resolve(&self, reference: &SecretRef) -> Result<Secret, AgentError> {
        match (reference, &self.env) {
            (SecretRef::Env(name), Some(env)) => env.get(name).map(|v| Secret::new(v.clone())).ok_or_else(|| {
                AgentError::user(
                    codes::SECRET_MISSING,
                    format!("secret {reference} is not available: environment variable {name} is not set"),
                )
            }),
            _ => read_reference(reference),
        }
    }

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

    #[test]
    fn references_parse_and_never_echo_a_value() {
        assert_eq!("env:DB_TOKEN".parse::<SecretRef>().unwrap(), SecretRef::Env("DB_TOKEN".into()));
        assert_eq!("file:/etc/secrets/x".parse::<SecretRef>().unwrap(), SecretRef::File("/etc/secrets/x".into()));
        for bad in ["dapi0123456789abcdef", "env:", "env:A-B", "file:", ""] {
            let err = bad.parse::<SecretRef>().unwrap_err().to_string();
            assert!(err.contains("env:NAME"), "{err}");
            if bad.len() > 8 {
                assert!(!err.contains(bad), "the rejected text is echoed: {err}");
            }
        }
    }

    #[test]
    fn file_references_resolve_without_trailing_newline_and_missing_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let r = SecretRef::File(path.clone());
        assert_eq!(StaticSecrets::new().resolve(&r).unwrap().expose(), "s3cr3t");
        let missing = SecretRef::File(dir.path().join("nope"));
        let e = StaticSecrets::new().resolve(&missing).unwrap_err();
        assert_eq!(e.code, codes::SECRET_MISSING);
        assert!(e.message.contains("nope"), "{e}");
        let e = read_reference(&SecretRef::Env("TERN_TEST_SURELY_UNSET_VAR".into())).unwrap_err();
        assert!(e.message.contains("TERN_TEST_SURELY_UNSET_VAR"), "{e}");
    }
}
