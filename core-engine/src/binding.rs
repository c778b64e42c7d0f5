//! Binding syntax: a value that is exactly `${inputs.NAME}` or `${NODE.OUTPUT}` is a
//! reference; any other value is a constant of the declared type. A string that contains
//! `${` anywhere else is refused, so a typo never silently becomes a constant string.
use std::fmt;

use crate::error::codes;

/// What a binding refers to, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reference {
    WorkflowInput { name: String },
    NodeOutput { node: String, output: String },
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WorkflowInput { name } => write!(f, "${{inputs.{name}}}"),
            Self::NodeOutput { node, output } => write!(f, "${{{node}.{output}}}"),
        }
    }
}

/// A binding as written: a reference or a constant (kept as YAML until its type is known).
#[derive(Debug, Clone, PartialEq)]
pub enum BindingExpr {
    Reference(Reference),
    Constant(serde_yaml::Value),
}

/// Classifies a YAML binding value. `Err` is `(code, message)` for a malformed reference.
pub fn parse_binding(value: &serde_yaml::Value) -> Result<BindingExpr, (&'static str, String)> {
    let serde_yaml::Value::String(s) = value else {
        return Ok(BindingExpr::Constant(value.clone()));
    };
    let trimmed = s.trim();
    let Some(inner) = trimmed.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
        if s.contains("${") {
            return Err((
                codes::BAD_REFERENCE,
                format!("{s:?} mixes a reference with other text; a binding is either exactly ${{inputs.x}} / ${{node.output}} or a constant"),
            ));
        }
        return Ok(BindingExpr::Constant(value.clone()));
    };
    let inner = inner.trim();
    let bad =
        || (codes::BAD_REFERENCE, format!("malformed reference {s:?}: expected ${{inputs.NAME}} or ${{NODE.OUTPUT}}"));
    let (head, tail) = inner.split_once('.').ok_or_else(bad)?;
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok(head) || !ok(tail) {
        return Err(bad());
    }
    Ok(BindingExpr::Reference(if head == "inputs" {
        Reference::WorkflowInput { name: tail.to_owned() }
    } else {
        Reference::NodeOutput { node: head.to_owned(), output: tail.to_owned() }
    }))
}

/// YAML → JSON for the type-transformers' JSON reader. YAML mapping keys that are not
/// strings are rendered as text (JSON keys must be strings).
pub fn yaml_to_json(v: &serde_yaml::Value) -> serde_json::Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => serde_json::Value::Null,
        Y::Bool(b) => (*b).into(),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Y::String(s) => s.clone().into(),
        Y::Sequence(items) => items.iter().map(yaml_to_json).collect::<Vec<_>>().into(),
        Y::Mapping(m) => {
            let obj = m
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap_or_default().trim_end().to_owned(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect::<serde_json::Map<_, _>>();
            serde_json::Value::Object(obj)
        }
        Y::Tagged(t) => yaml_to_json(&t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> serde_yaml::Value {
        serde_yaml::Value::String(text.into())
    }

    #[test]
    fn references_and_constants() {
        assert_eq!(
            parse_binding(&s("${inputs.x}")).unwrap(),
            BindingExpr::Reference(Reference::WorkflowInput { name: "x".into() })
        );
        assert_eq!(
            parse_binding(&s(" ${ first.out-1 } ")).unwrap(),
            BindingExpr::Reference(Reference::NodeOutput { node: "first".into(), output: "out-1".into() })
        );
        assert_eq!(parse_binding(&s("plain")).unwrap(), BindingExpr::Constant(s("plain")));
        assert!(matches!(parse_binding(&serde_yaml::Value::Number(3.into())).unwrap(), BindingExpr::Constant(_)));
        for bad in ["${x}", "${a.b.c}", "${.x}", "hi ${inputs.x}", "${inputs.}"] {
            let (code, msg) = parse_binding(&s(bad)).unwrap_err();
            assert_eq!(code, codes::BAD_REFERENCE);
            assert!(msg.contains(bad.trim()), "{msg}");
        }
    }

    #[test]
    fn yaml_numbers_keep_their_kind() {
        let v: serde_yaml::Value = serde_yaml::from_str("{a: 1, b: 1.5, c: [true, null]}").unwrap();
        assert_eq!(yaml_to_json(&v), serde_json::json!({"a": 1, "b": 1.5, "c": [true, null]}));
    }
}
