//! `tern config show`: the effective configuration, after the environment and every
//! default, with anything secret redacted. Secrets themselves are references
//! (`env:NAME`, `file:PATH`) and print as such; credentials embedded in URLs do not.
use serde::Serialize;

use super::GatewayConfig;
use crate::error::GatewayError;
use crate::registry::{Decision, Mode, Planned};

/// The effective configuration as one TOML table.
pub fn effective(config: &GatewayConfig, planned: &[Planned]) -> Result<toml::Table, GatewayError> {
    let mut root = toml::Table::try_from(config).map_err(|e| GatewayError::ConfigInvalid {
        path: config.origin.describe().into(),
        message: format!("cannot render: {e}"),
    })?;
    let mut agents = toml::Table::new();
    for p in planned {
        let mut section = toml::Table::new();
        section.insert("enabled".into(), toml::Value::Boolean(p.decision == Decision::Serve));
        if let Some(n) = p.max_concurrency {
            section.insert("max_concurrency".into(), toml::Value::Integer(n as i64));
        }
        if let Ok(toml::Value::Table(common)) = toml::Value::try_from(&p.common) {
            for key in ["on_full", "queue_timeout"] {
                if let Some(v) = common.get(key) {
                    section.insert(key.into(), v.clone());
                }
            }
        }
        section.extend(p.prepared.effective.clone());
        agents.insert(p.entry.name.clone(), toml::Value::Table(section));
    }
    root.insert("agents".into(), toml::Value::Table(agents));
    redact(&mut root);
    Ok(root)
}

/// TOML text with a header saying where it came from and what is not served.
pub fn render_toml(config: &GatewayConfig, planned: &[Planned], mode: Mode) -> Result<String, GatewayError> {
    let table = effective(config, planned)?;
    let mut out = format!(
        "# effective configuration for `{}`: {}\n",
        match mode {
            Mode::Serve => "tern serve",
            Mode::Embedded => "tern run",
        },
        config.origin.describe()
    );
    for p in planned {
        if let Decision::Off(reason) = &p.decision {
            out.push_str(&format!("# not served: {} ({reason})\n", p.entry.name));
        }
    }
    out.push('\n');
    out.push_str(&toml::to_string_pretty(&table).unwrap_or_default());
    Ok(out)
}

/// The same as JSON.
pub fn render_json(config: &GatewayConfig, planned: &[Planned]) -> Result<serde_json::Value, GatewayError> {
    let table = effective(config, planned)?;
    Ok(toml_to_json(&toml::Value::Table(table)))
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Into::into).unwrap_or(serde_json::Value::Null),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(toml_to_json).collect::<Vec<_>>().into(),
        toml::Value::Table(t) => t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect::<serde_json::Map<_, _>>().into(),
    }
}

/// Replaces passwords in URLs (`https://user:pw@host`) everywhere in the tree.
pub fn redact(table: &mut toml::Table) {
    for (_, v) in table.iter_mut() {
        redact_value(v);
    }
}

fn redact_value(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) => {
            if let Some(clean) = redact_url(s) {
                *s = clean;
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact_value),
        toml::Value::Table(t) => redact(t),
        _ => {}
    }
}

/// `Some(redacted)` when `text` is a URL carrying a password: in its userinfo
/// (`https://user:pw@host`, or a bare token `https://tok@host`) or as a `password=` query
/// parameter (`postgres://host/db?password=pw`, which libpq and sqlx accept).
pub fn redact_url(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let userinfo_redacted = authority.rsplit_once('@').map(|(userinfo, host)| match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***@{host}"),
        // A bare userinfo is often a token.
        None => format!("***@{host}"),
    });
    let tail_redacted = redact_password_param(tail);
    if userinfo_redacted.is_none() && tail_redacted.is_none() {
        return None;
    }
    Some(format!(
        "{scheme}://{}{}",
        userinfo_redacted.unwrap_or_else(|| authority.to_owned()),
        tail_redacted.unwrap_or_else(|| tail.to_owned())
    ))
}

/// `tail` (path, query, fragment) with the value of every `password=` parameter replaced.
fn redact_password_param(tail: &str) -> Option<String> {
    let (path, query) = tail.split_once('?')?;
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut found = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                found = true;
                format!("{k}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    found.then(|| format!("{path}?{}{}", pairs.join("&"), fragment.map(|f| format!("#{f}")).unwrap_or_default()))
}

/// Serializes any config part for display (used by the CLI for single sections).
pub fn to_toml<T: Serialize>(value: &T) -> String {
    toml::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_only() {
        assert_eq!(redact_url("postgres://tern:hunter2@db:5432/x").as_deref(), Some("postgres://tern:***@db:5432/x"));
        assert_eq!(redact_url("https://ghp_token@h/p").as_deref(), Some("https://***@h/p"));
        assert_eq!(redact_url("http://h:1/p@x"), None, "an @ in the path is not userinfo");
        assert_eq!(redact_url("env:TOKEN"), None);
        assert_eq!(
            redact_url("postgresql://db/tern?sslmode=require&password=hunter2").as_deref(),
            Some("postgresql://db/tern?sslmode=require&password=***")
        );
        assert_eq!(redact_url("postgres://tern@db?password=x#f").as_deref(), Some("postgres://***@db?password=***#f"));
        assert_eq!(redact_url("postgres://db/tern?sslmode=require"), None);
    }
}
