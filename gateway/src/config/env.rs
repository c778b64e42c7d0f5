//! Environment overrides: every key of `tern.toml` can be set from the environment.
//!
//! The scheme: `TERN_` + the key's path in upper case with sections joined by `__`.
//! `TERN_SERVER__ADDR=0.0.0.0:8000` sets `[server] addr`; `TERN_AGENTS__DUCKDB__THREADS=4`
//! sets `threads` in `[agents.duckdb]`; `TERN_ROUTES__0__TARGET=local` sets `target` of the
//! first `[[routes]]` entry. Values are read as TOML when they are a number, a boolean, an
//! array or an inline table (`4`, `true`, `["a", "b"]`), as text otherwise; quote a text
//! that looks like a number (`TERN_X__Y='"0123"'`). An override wins over the file.
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::GatewayError;

/// A snapshot of the process environment, taken once where the gateway is composed.
pub type Env = Arc<BTreeMap<String, String>>;

/// The process's environment.
pub fn from_process() -> Env {
    Arc::new(std::env::vars().collect())
}

/// An empty environment (tests, defaults).
pub fn empty() -> Env {
    Arc::new(BTreeMap::new())
}

const PREFIX: &str = "TERN_";
const SEPARATOR: &str = "__";

/// One variable that set one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    pub var: String,
    /// The key's path, lower-cased: `["agents", "duckdb", "threads"]`.
    pub path: Vec<String>,
}

impl EnvOverride {
    /// `agents.duckdb.threads`.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// The overrides present in `env`, in variable-name order.
pub fn overrides(env: &BTreeMap<String, String>) -> Vec<(EnvOverride, &str)> {
    env.iter()
        .filter_map(|(var, value)| {
            let rest = var.strip_prefix(PREFIX)?;
            if !rest.contains(SEPARATOR) {
                return None; // TERN_LOG, TERN_BIN, …: not configuration keys
            }
            let path = rest.split(SEPARATOR).map(str::to_ascii_lowercase).collect();
            Some((EnvOverride { var: var.clone(), path }, value.as_str()))
        })
        .collect()
}

/// The TOML value of an override's text.
pub fn parse_value(raw: &str) -> toml::Value {
    let trimmed = raw.trim();
    let structured = trimmed.starts_with('[') || trimmed.starts_with('{') || trimmed.starts_with('"');
    if let Ok(mut table) = toml::from_str::<toml::Table>(&format!("v = {trimmed}")) {
        if let Some(v) = table.remove("v") {
            let scalar = matches!(v, toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_));
            if scalar || structured {
                return v;
            }
        }
    }
    toml::Value::String(raw.to_owned())
}

/// Applies every override in `env` to `root`, creating sections as needed.
pub fn apply(root: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<Vec<EnvOverride>, GatewayError> {
    let mut applied = Vec::new();
    for (over, raw) in overrides(env) {
        set(root, &over, parse_value(raw))?;
        applied.push(over);
    }
    Ok(applied)
}

fn set(root: &mut toml::Table, over: &EnvOverride, value: toml::Value) -> Result<(), GatewayError> {
    let fail = |message: String| GatewayError::EnvOverride { var: over.var.clone(), message };
    if over.path.iter().any(String::is_empty) {
        return Err(fail("an empty key between `__` separators".into()));
    }
    let (last, parents) = over.path.split_last().ok_or_else(|| fail("no key".into()))?;
    let mut node = root;
    for (i, key) in parents.iter().enumerate() {
        let where_ = over.path[..=i].join(".");
        let next = node.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match next {
            toml::Value::Table(t) => t,
            toml::Value::Array(items) => {
                let index_key = over.path.get(i + 1).ok_or_else(|| fail(format!("{where_} is a list")))?;
                let index: usize = index_key
                    .parse()
                    .map_err(|_| fail(format!("{where_} is a list: the next part must be an index, got {index_key:?}")))?;
                let len = items.len();
                match items.get_mut(index) {
                    Some(toml::Value::Table(t)) if i + 2 < over.path.len() => {
                        // Skip the index segment: continue below the table at `index`.
                        return set_rest(t, &over.path[i + 2..], value).map_err(&fail);
                    }
                    Some(slot) if i + 2 == over.path.len() => {
                        *slot = value;
                        return Ok(());
                    }
                    Some(_) => return Err(fail(format!("{where_}[{index}] is not a table"))),
                    None => return Err(fail(format!("{where_} has {len} entries; there is no index {index}"))),
                }
            }
            _ => return Err(fail(format!("{where_} is a value, not a section"))),
        };
    }
    node.insert(last.clone(), value);
    Ok(())
}

fn set_rest(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("no key")?;
    let mut node = table;
    for key in parents {
        node = match node.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{key} is a value, not a section")),
        };
    }
    node.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn values_are_typed_only_when_unambiguous() {
        assert_eq!(parse_value("4"), toml::Value::Integer(4));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("[\"a\", \"b\"]").as_array().map(Vec::len), Some(2));
        assert_eq!(parse_value("0.0.0.0:8000"), toml::Value::String("0.0.0.0:8000".into()));
        assert_eq!(parse_value("2GiB"), toml::Value::String("2GiB".into()));
        assert_eq!(parse_value("2026-01-01"), toml::Value::String("2026-01-01".into()));
        assert_eq!(parse_value("\"0123\""), toml::Value::String("0123".into()));
        assert_eq!(parse_value("env:TOKEN"), toml::Value::String("env:TOKEN".into()));
    }

    #[test]
    fn overrides_set_nested_keys_and_list_entries() {
        let mut root: toml::Table = toml::from_str("[server]\naddr = \"a\"\n[[routes]]\ntarget = \"local\"\n").unwrap();
        let e = env(&[
            ("TERN_SERVER__ADDR", "0.0.0.0:9"),
            ("TERN_AGENTS__DUCKDB__THREADS", "4"),
            ("TERN_ROUTES__0__TARGET", "group:eu"),
            ("TERN_LOG", "debug"),
            ("PATH", "/bin"),
        ]);
        let applied = apply(&mut root, &e).unwrap();
        assert_eq!(applied.len(), 3);
        assert_eq!(root["server"]["addr"].as_str(), Some("0.0.0.0:9"));
        assert_eq!(root["agents"]["duckdb"]["threads"].as_integer(), Some(4));
        assert_eq!(root["routes"][0]["target"].as_str(), Some("group:eu"));
    }

    #[test]
    fn impossible_overrides_name_the_variable() {
        let mut root: toml::Table = toml::from_str("[server]\naddr = \"a\"\n[[routes]]\ntarget = \"x\"\n").unwrap();
        for (var, want) in [
            ("TERN_SERVER__ADDR__PORT", "server.addr is a value"),
            ("TERN_ROUTES__3__TARGET", "no index 3"),
            ("TERN_ROUTES__X__TARGET", "must be an index"),
            ("TERN_AGENTS____THREADS", "empty key"),
        ] {
            let err = apply(&mut root.clone(), &env(&[(var, "1")])).unwrap_err().to_string();
            assert!(err.contains(var) && err.contains(want) && err.contains("TERN-G008"), "{var}: {err}");
        }
        root.clear();
    }
}
