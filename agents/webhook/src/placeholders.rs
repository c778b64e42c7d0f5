//! `{inputs.a.b}` placeholder expansion, exactly as flytekit's `format_dict`:
//!
//! - every string inside the value (object values, list items; never object keys) is
//!   scanned for `{...}` (the regex `\{([^}]+)\}`, left to right);
//! - a placeholder whose name contains a dot is a key path looked up in the scope
//!   (`{"inputs": {...}}`); an unknown key is an error;
//! - a string that is exactly one placeholder becomes the value itself, keeping its type
//!   (`"{inputs.n}"` → `3`); otherwise `str(value)` is spliced into the text;
//! - placeholders without a dot (`{name}`) are left as they are.
use serde_json::Value;

use crate::python::python_str;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("placeholder {{{placeholder}}}: could not find the key {key:?}{available}")]
pub struct UnknownPlaceholder {
    pub placeholder: String,
    pub key: String,
    /// `" (available: a, b)"`, or empty when the parent was not an object.
    available: String,
}

/// Expands every placeholder in `value` against `scope`.
pub fn expand(value: &Value, scope: &Value) -> Result<Value, UnknownPlaceholder> {
    match value {
        Value::String(s) => expand_string(s, scope),
        Value::Array(items) => Ok(Value::Array(items.iter().map(|v| expand(v, scope)).collect::<Result<_, _>>()?)),
        Value::Object(map) => Ok(Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), expand(v, scope)?))).collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

fn expand_string(original: &str, scope: &Value) -> Result<Value, UnknownPlaceholder> {
    if !(original.contains('{') && original.contains('}')) {
        return Ok(Value::String(original.to_owned()));
    }
    let mut text = original.to_owned();
    for name in placeholder_names(original) {
        if !name.contains('.') {
            continue;
        }
        let value = lookup(scope, name)?;
        let token = format!("{{{name}}}");
        // flytekit compares against the text as rewritten so far.
        if text == token {
            return Ok(value.clone());
        }
        text = text.replace(&token, &python_str(value));
    }
    Ok(Value::String(text))
}

/// The names inside `{...}`, as `re.findall(r"\{([^}]+)\}", text)` returns them.
fn placeholder_names(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            None => break,
            // `{}` does not match `[^}]+`; the scan resumes right after this `{`.
            Some(0) => rest = after,
            Some(close) => {
                names.push(&after[..close]);
                rest = &after[close + 1..];
            }
        }
    }
    names
}

fn lookup<'a>(scope: &'a Value, path: &str) -> Result<&'a Value, UnknownPlaceholder> {
    let mut current = scope;
    for key in path.split('.') {
        let next = current.as_object().and_then(|m| m.get(key));
        current = next.ok_or_else(|| UnknownPlaceholder {
            placeholder: path.to_owned(),
            key: key.to_owned(),
            available: match current.as_object() {
                Some(m) => format!(" (available: {})", m.keys().cloned().collect::<Vec<_>>().join(", ")),
                None => format!(" (its parent is not a mapping but {})", kind(current)),
            },
        })?;
    }
    Ok(current)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Value {
        json!({"inputs": {"s": "world", "n": 3, "f": 1.0, "b": true, "none": null,
                          "l": [1, "x"], "d": {"k": "v"}}})
    }

    #[test]
    fn whole_placeholder_keeps_type_and_splices_use_python_str() {
        let custom = json!({
            "count": "{inputs.n}",
            "flag": "{inputs.b}",
            "list": "{inputs.l}",
            "text": "n={inputs.n} f={inputs.f} b={inputs.b} none={inputs.none} l={inputs.l} d={inputs.d}",
            "nested": {"items": ["{inputs.s}", "static", 5.0, true]},
            "deep": "{inputs.d.k}",
        });
        assert_eq!(
            expand(&custom, &scope()).unwrap(),
            json!({
                "count": 3,
                "flag": true,
                "list": [1, "x"],
                "text": "n=3 f=1.0 b=True none=None l=[1, 'x'] d={'k': 'v'}",
                "nested": {"items": ["world", "static", 5.0, true]},
                "deep": "v",
            })
        );
    }

    #[test]
    fn dotless_and_malformed_braces_are_left_alone() {
        let v = json!(["{name}", "{}", "a {b", "x}", "{name} and {inputs.s}", "{inputs.s}{inputs.s}"]);
        assert_eq!(
            expand(&v, &scope()).unwrap(),
            json!(["{name}", "{}", "a {b", "x}", "{name} and world", "worldworld"])
        );
    }

    #[test]
    fn unknown_key_paths_are_errors_naming_them() {
        let err = expand(&json!({"v": "{inputs.nope}"}), &scope()).unwrap_err();
        assert_eq!(err.placeholder, "inputs.nope");
        assert_eq!(err.key, "nope");
        assert!(err.to_string().contains("{inputs.nope}") && err.to_string().contains("available: b, d"), "{err}");
        let err = expand(&json!("x {inputs.s.deeper}"), &scope()).unwrap_err();
        assert_eq!(err.key, "deeper");
        assert!(err.to_string().contains("a string"), "{err}");
        // `{{inputs.s}}` matches the name `{inputs.s`, which does not exist (as in flytekit).
        assert!(expand(&json!("{{inputs.s}}"), &scope()).is_err());
    }
}
