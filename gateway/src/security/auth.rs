//! Bearer-token authentication (`authorization: Bearer <token>`), each token optionally
//! limited to task types, projects and domains.
//!
//! Tokens are configured by reference (`env:`/`file:`) and resolved once at start. Only
//! their SHA-256 digests are kept; a presented token is hashed and compared with every
//! digest in constant time, so neither timing nor length reveals anything. Health checks
//! are never behind authentication (load balancers and kubelets probe them).
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tern_agent_api::prelude::*;
use tern_agent_api::secrets::SecretProvider;
use tonic::{Request, Status};

use crate::error::GatewayError;

/// Stable codes of authentication and authorization refusals.
pub mod codes {
    /// No token, or a token that matches none configured (`UNAUTHENTICATED`).
    pub const UNAUTHENTICATED: &str = "TERN-G030";
    /// The token does not cover this task type, project or domain (`PERMISSION_DENIED`).
    pub const FORBIDDEN: &str = "TERN-G031";
}

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: shown in logs and metrics (never the token).
    pub name: String,
    /// `env:NAME` or `file:PATH`.
    pub token: SecretRef,
    /// Task types it may use (absent: all).
    pub task_types: Option<Vec<String>>,
    /// Projects it may act for (absent: all).
    pub projects: Option<Vec<String>>,
    /// Domains it may act for (absent: all).
    pub domains: Option<Vec<String>>,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// With at least one token, every agent call must carry one of them.
    pub tokens: Vec<TokenConfig>,
}

/// An authenticated caller and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub task_types: Option<Vec<String>>,
    pub projects: Option<Vec<String>>,
    pub domains: Option<Vec<String>>,
}

fn listed(limit: &Option<Vec<String>>, value: &str) -> bool {
    limit.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
}

impl Principal {
    pub fn allows_task_type(&self, task_type: &str) -> bool {
        listed(&self.task_types, task_type)
    }

    /// Whether this caller may act on `task_type` for `project`/`domain` (`None`: the
    /// request names none, which only unlimited tokens accept).
    pub fn check(&self, task_type: &str, project: Option<&str>, domain: Option<&str>) -> Result<(), AgentError> {
        let deny = |what: String| {
            AgentError::permission_denied(codes::FORBIDDEN, format!("token {:?} may not {what}", self.name))
        };
        if !self.allows_task_type(task_type) {
            return Err(deny(format!("use task type {task_type:?} (it is limited to {:?})", self.task_types.as_deref().unwrap_or_default())));
        }
        for (kind, limit, value) in [("project", &self.projects, project), ("domain", &self.domains, domain)] {
            let Some(allowed) = limit else { continue };
            match value {
                Some(v) if allowed.iter().any(|a| a == v) => {}
                Some(v) => return Err(deny(format!("act for {kind} {v:?} (it is limited to {allowed:?})"))),
                None => {
                    return Err(deny(format!(
                        "act without a {kind}: it is limited to {allowed:?}, and the request names none"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// Checks bearer tokens; a tonic interceptor that puts the [`Principal`] in the request's
/// extensions.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Arc<Vec<([u8; 32], Principal)>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(_, p)| p.name.as_str()).collect();
        f.debug_struct("Authenticator").field("tokens", &names).finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Authenticator {
    /// `None` when no token is configured (authentication off).
    pub fn from_config(config: &AuthConfig, secrets: &dyn SecretProvider) -> Result<Option<Self>, GatewayError> {
        if config.tokens.is_empty() {
            return Ok(None);
        }
        let mut tokens = Vec::new();
        for t in &config.tokens {
            let bad = |m: String| GatewayError::Auth(format!("[[auth.tokens]] {:?}: {m}", t.name));
            if t.name.trim().is_empty() {
                return Err(GatewayError::Auth("[[auth.tokens]]: every token needs a name".into()));
            }
            let value = secrets.resolve(&t.token).map_err(|e| bad(e.message))?;
            let value = value.expose().trim();
            if value.len() < 16 {
                return Err(bad(format!("the token from {} is shorter than 16 characters", t.token)));
            }
            let d = digest(value.as_bytes());
            if let Some((_, other)) = tokens.iter().find(|(o, p): &&([u8; 32], Principal)| *o == d || p.name == t.name) {
                return Err(bad(format!("same name or token value as {:?}", other.name)));
            }
            tokens.push((
                d,
                Principal {
                    name: t.name.clone(),
                    task_types: t.task_types.clone(),
                    projects: t.projects.clone(),
                    domains: t.domains.clone(),
                },
            ));
        }
        Ok(Some(Self { tokens: Arc::new(tokens) }))
    }

    /// The caller behind `authorization: Bearer <token>`.
    pub fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal, Status> {
        let refuse = |m: &str| {
            let mut s = Status::unauthenticated(format!("[{}] {m}", codes::UNAUTHENTICATED));
            s.metadata_mut().insert("tern-error-code", tonic::metadata::MetadataValue::from_static(codes::UNAUTHENTICATED));
            s
        };
        let header = metadata
            .get("authorization")
            .ok_or_else(|| refuse("this gateway requires a bearer token: send `authorization: Bearer <token>`"))?;
        let text = header.to_str().map_err(|_| refuse("the authorization header is not text"))?;
        let presented = match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(refuse("the authorization header must be `Bearer <token>`")),
        };
        let d = digest(presented.as_bytes());
        // Compare with every token, without stopping at a match.
        let mut found: Option<&Principal> = None;
        for (known, principal) in self.tokens.iter() {
            if bool::from(known.ct_eq(&d)) {
                found = Some(principal);
            }
        }
        found.cloned().ok_or_else(|| refuse("invalid bearer token"))
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.authenticate(request.metadata())?;
        tracing::debug!(caller = %principal.name, "authenticated");
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::secrets::StaticSecrets;

    fn authenticator() -> Authenticator {
        let env = Arc::new(
            [("A_TOKEN".to_owned(), "a-very-long-token-1".to_owned()), ("B_TOKEN".to_owned(), "b-very-long-token-2".to_owned())]
                .into_iter()
                .collect(),
        );
        let secrets = StaticSecrets::new().with_env(env);
        let config: AuthConfig = toml::from_str(
            "[[tokens]]\nname = \"propeller\"\ntoken = \"env:A_TOKEN\"\n\
             [[tokens]]\nname = \"ml\"\ntoken = \"env:B_TOKEN\"\ntask_types = [\"duckdb\"]\nprojects = [\"ml\"]\n",
        )
        .unwrap();
        Authenticator::from_config(&config, &secrets).unwrap().unwrap()
    }

    fn md(value: Option<&str>) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().unwrap());
        }
        m
    }

    #[test]
    fn tokens_authenticate_and_wrong_or_missing_ones_are_refused() {
        let a = authenticator();
        assert_eq!(a.authenticate(&md(Some("Bearer a-very-long-token-1"))).unwrap().name, "propeller");
        assert_eq!(a.authenticate(&md(Some("bearer b-very-long-token-2"))).unwrap().name, "ml");
        for bad in [None, Some("Bearer nope"), Some("Basic a-very-long-token-1"), Some("a-very-long-token-1"), Some("Bearer a-very-long-token-")] {
            let s = a.authenticate(&md(bad)).unwrap_err();
            assert_eq!(s.code(), tonic::Code::Unauthenticated, "{bad:?}");
            assert!(s.message().contains(codes::UNAUTHENTICATED));
            assert!(!s.message().contains("a-very-long-token"), "the token is echoed: {}", s.message());
        }
    }

    #[test]
    fn limits_apply_by_task_type_project_and_domain() {
        let a = authenticator();
        let ml = a.authenticate(&md(Some("Bearer b-very-long-token-2"))).unwrap();
        assert!(ml.check("duckdb", Some("ml"), Some("production")).is_ok());
        let e = ml.check("shell", Some("ml"), None).unwrap_err();
        assert_eq!(e.grpc_code(), tonic::Code::PermissionDenied);
        assert!(e.message.contains("\"shell\"") && e.message.contains("\"ml\""), "{e}");
        assert!(ml.check("duckdb", Some("finance"), None).unwrap_err().message.contains("finance"));
        assert!(ml.check("duckdb", None, None).unwrap_err().message.contains("names none"));
        let all = a.authenticate(&md(Some("Bearer a-very-long-token-1"))).unwrap();
        assert!(all.check("shell", None, None).is_ok());
    }

    #[test]
    fn bad_token_settings_stop_the_start() {
        let env = Arc::new([("SHORT".to_owned(), "abc".to_owned()), ("T".to_owned(), "x".repeat(20))].into_iter().collect());
        let secrets = StaticSecrets::new().with_env(env);
        for (text, want) in [
            ("[[tokens]]\nname = \"a\"\ntoken = \"env:SHORT\"\n", "shorter than 16"),
            ("[[tokens]]\nname = \"a\"\ntoken = \"env:MISSING\"\n", "MISSING"),
            ("[[tokens]]\nname = \"a\"\ntoken = \"env:T\"\n[[tokens]]\nname = \"b\"\ntoken = \"env:T\"\n", "same name or token"),
        ] {
            let config: AuthConfig = toml::from_str(text).unwrap();
            let err = Authenticator::from_config(&config, &secrets).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains(&"x".repeat(20)));
        }
    }
}
