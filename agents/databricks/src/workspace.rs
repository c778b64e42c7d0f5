//! Which workspace a task (or a handle) is sent to, and the URL that reaches it.
//!
//! Precedence for a task: the template's `databricksInstance` when the section allows it
//! (it is the section's `host`, a key of `instances`, or `allow_template_instances` is on),
//! else the section's `host`. A template naming another workspace is refused before
//! anything is sent: the gateway's credentials only ever go to configured workspaces.
use crate::codes;
use crate::config::DatabricksConfig;
use tern_agent_api::prelude::AgentError;

/// A workspace: the name stored in handles, and the base URL requests go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The instance as templates name it (`dbc-1.cloud.databricks.com`, `127.0.0.1:8090`).
    pub instance: String,
    /// `scheme://authority[/path]`, without a trailing slash.
    pub base: String,
}

/// `text` as a base URL: a URL with `http`/`https`, or a bare host (then HTTPS).
pub fn base_url(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    if t.is_empty() {
        return Err("empty".into());
    }
    let (scheme, rest) = match t.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("https".to_owned(), t),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("{t:?} is not an http(s) URL or a host name"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let bad_char = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if authority.is_empty() || authority.ends_with(':') || authority.contains(bad_char) {
        return Err(format!("{t:?} has no usable host"));
    }
    if !t.contains("://") && rest.contains('/') {
        return Err(format!("{t:?}: give a host name, or a full URL with its scheme"));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// The authority (`host[:port]`) of a base URL made by [`base_url`].
pub fn authority(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The instance name as written in a template: without a scheme or trailing slash, lower case.
fn normalize(instance: &str) -> String {
    let t = instance.trim().trim_end_matches('/');
    let t = t.split_once("://").map_or(t, |(_, r)| r);
    t.to_ascii_lowercase()
}

/// Why a name is refused: for a template, `PERMISSION_DENIED`; for a handle, `NOT_FOUND`
/// (this gateway knows no such workspace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    Template,
    Handle,
}

pub fn resolve(config: &DatabricksConfig, instance: Option<&str>, asker: Asker) -> Result<Workspace, AgentError> {
    let host = config.host.as_deref().map(base_url).transpose().map_err(|e| {
        AgentError::invalid_argument(codes::NO_WORKSPACE, format!("[agents.databricks] host: {e}"))
    })?;
    let wanted = instance.map(normalize).filter(|i| !i.is_empty());
    let Some(name) = wanted else {
        return match host {
            Some(base) => Ok(Workspace { instance: authority(&base).to_ascii_lowercase(), base }),
            None => Err(AgentError::new(
                codes::NO_WORKSPACE,
                "no Databricks workspace: the task names no databricksInstance and [agents.databricks] sets no \
                 `host` (or DATABRICKS_HOST)",
                tern_agent_api::error::ErrorOrigin::User,
                tern_agent_api::error::Retry::Permanent,
                tern_agent_api::error::ErrorClass::FailedPrecondition,
            )),
        };
    };
    if let Some((_, url)) = config.instances.iter().find(|(k, _)| normalize(k) == name) {
        let base = base_url(url).map_err(|e| AgentError::invalid_argument(codes::NO_WORKSPACE, format!("instances: {e}")))?;
        return Ok(Workspace { instance: name, base });
    }
    if let Some(base) = host.filter(|b| authority(b).eq_ignore_ascii_case(&name)) {
        return Ok(Workspace { instance: name, base });
    }
    let valid_name = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if config.allow_template_instances && valid_name {
        return Ok(Workspace { base: format!("https://{name}"), instance: name });
    }
    let shown: String = name.chars().take(200).collect();
    Err(match asker {
        Asker::Template => AgentError::permission_denied(
            codes::INSTANCE_NOT_ALLOWED,
            format!(
                "databricksInstance {shown:?} is not a workspace this gateway may reach: it is not [agents.databricks] \
                 `host` nor a key of `instances`, and allow_template_instances is off; nothing was sent"
            ),
        ),
        Asker::Handle => AgentError::not_found(
            codes::INSTANCE_NOT_ALLOWED,
            format!("the handle names workspace {shown:?}, which this gateway is not configured to reach"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_agent_api::error::ErrorClass;

    fn config() -> DatabricksConfig {
        DatabricksConfig {
            host: Some("https://dbc-main.cloud.databricks.com/".into()),
            instances: [("DBC-Other.cloud.databricks.com".to_owned(), "http://127.0.0.1:8090".to_owned())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("dbc-1.cloud.databricks.com").unwrap(), "https://dbc-1.cloud.databricks.com");
        assert_eq!(base_url("http://127.0.0.1:8090/").unwrap(), "http://127.0.0.1:8090");
        for bad in ["", "ftp://x", "http://", "https://user@host", "host/path", "a b"] {
            assert!(base_url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(authority("http://127.0.0.1:8090/x"), "127.0.0.1:8090");
    }

    #[test]
    fn template_instance_precedence() {
        let c = config();
        let w = resolve(&c, None, Asker::Template).unwrap();
        assert_eq!(w, Workspace { instance: "dbc-main.cloud.databricks.com".into(), base: "https://dbc-main.cloud.databricks.com".into() });
        let w = resolve(&c, Some("dbc-other.cloud.databricks.com"), Asker::Template).unwrap();
        assert_eq!(w.base, "http://127.0.0.1:8090", "instances map the name to its endpoint");
        let w = resolve(&c, Some("https://DBC-MAIN.cloud.databricks.com/"), Asker::Template).unwrap();
        assert_eq!(w.base, "https://dbc-main.cloud.databricks.com", "the host itself is always allowed");
        let e = resolve(&c, Some("evil.example.com"), Asker::Template).unwrap_err();
        assert_eq!((e.code.as_ref(), e.class), (codes::INSTANCE_NOT_ALLOWED, ErrorClass::PermissionDenied));
        let e = resolve(&c, Some("evil.example.com"), Asker::Handle).unwrap_err();
        assert_eq!(e.class, ErrorClass::NotFound);
        let open = DatabricksConfig { allow_template_instances: true, ..config() };
        assert_eq!(resolve(&open, Some("evil.example.com"), Asker::Template).unwrap().base, "https://evil.example.com");
        assert!(resolve(&open, Some("evil.example.com/../x"), Asker::Template).is_err());
        let none = DatabricksConfig::default();
        assert_eq!(resolve(&none, None, Asker::Template).unwrap_err().code, codes::NO_WORKSPACE);
        assert_eq!(resolve(&none, Some(""), Asker::Template).unwrap_err().code, codes::NO_WORKSPACE);
    }
}
