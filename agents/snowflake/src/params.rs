//! Task inputs → typed Snowflake bind variables.
//!
//! flytekit's connector hands the inputs to `cursor.execute_async(statement, params)` as a dict,
//! so the Python connector's default `pyformat` style applies: `%(name)s` in the SQL is an input,
//! `%%` is a literal `%`, and with no inputs at all the statement is sent as written (no `%`
//! processing). The Python connector pastes escaped values into the text; Tern sends them as
//! Snowflake bind variables instead (`:1`, `:2`, … with typed `bindings`), so a value is always
//! data, never SQL. Flyte's Go-template form `{{ .inputs.name }}` (the older Go plugin's) is read
//! the same way. A value can therefore not be an identifier: write `IDENTIFIER(%(table)s)`.
//!
//! | input | Snowflake binding |
//! |---|---|
//! | integer | `FIXED` |
//! | float | `REAL` |
//! | string | `TEXT` |
//! | boolean | `BOOLEAN` |
//! | datetime | `TIMESTAMP_TZ` (UTC) |
//! | none / empty optional | `ANY` NULL |
//! | list of the above | one bind per element: `IN %(ids)s` becomes `IN (:1, :2, :3)` |
//!
//! Anything else (durations, files, dataframes, structs, maps) cannot be a parameter: `TERN-F002`.
use std::collections::BTreeMap;

use serde::Serialize;
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::prelude::AgentError;

use crate::codes;

/// One bind variable of a query request: `{"type": "FIXED", "value": "42"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binding {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: Option<String>,
}

/// The statement to send and its bind variables (keyed `"1"`, `"2"`, … as `:1`, `:2`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoundQuery {
    pub statement: String,
    pub bindings: BTreeMap<String, Binding>,
}

/// Rewrites `statement`'s input placeholders into numbered bind variables.
pub fn bind(statement: &str, inputs: &core::LiteralMap) -> Result<BoundQuery, AgentError> {
    if inputs.literals.is_empty() {
        // flytekit passes `params=None`: no `%` processing at all.
        if let Some(name) = first_go_placeholder(statement) {
            return Err(codes::bad_input(format!("the SQL uses {{{{ .inputs.{name} }}}} but the task has no inputs")));
        }
        return Ok(BoundQuery { statement: statement.to_owned(), bindings: BTreeMap::new() });
    }
    let mut out = String::with_capacity(statement.len() + 16);
    let mut binder = Binder { inputs, bindings: BTreeMap::new(), numbers: BTreeMap::new() };
    let bytes = statement.as_bytes();
    let mut i = 0;
    while i < statement.len() {
        let rest = &statement[i..];
        if rest.starts_with("%%") {
            out.push('%');
            i += 2;
        } else if rest.starts_with("%(") {
            let Some(close) = rest.find(')') else {
                return Err(codes::bad_input(format!("unterminated parameter {:?}: write %(name)s", truncate(rest))));
            };
            let name = &rest[2..close];
            if rest.as_bytes().get(close + 1) != Some(&b's') {
                return Err(codes::bad_input(format!(
                    "parameter %({name}){}: only %(name)s is supported (values are bound by Snowflake, not formatted)",
                    rest[close + 1..].chars().next().map(String::from).unwrap_or_default()
                )));
            }
            out.push_str(&binder.placeholder(name)?);
            i += close + 2;
        } else if let Some((name, len)) = go_placeholder(rest) {
            out.push_str(&binder.placeholder(name)?);
            i += len;
        } else {
            let ch = rest.chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
        }
        debug_assert!(i <= bytes.len());
    }
    Ok(BoundQuery { statement: out, bindings: binder.bindings })
}

struct Binder<'a> {
    inputs: &'a core::LiteralMap,
    bindings: BTreeMap<String, Binding>,
    /// Input name → its placeholder text (an input used twice is bound once).
    numbers: BTreeMap<String, String>,
}

impl Binder<'_> {
    fn placeholder(&mut self, name: &str) -> Result<String, AgentError> {
        if let Some(text) = self.numbers.get(name) {
            return Ok(text.clone());
        }
        let Some(literal) = self.inputs.literals.get(name) else {
            let known: Vec<&str> = self.inputs.literals.keys().map(String::as_str).collect();
            return Err(codes::bad_input(format!(
                "the SQL uses parameter {name:?} but the task has no input of that name (inputs: {})",
                known.join(", ")
            )));
        };
        let text = match unwrap_union(literal) {
            Some(LitValue::Collection(c)) => {
                if c.literals.is_empty() {
                    return Err(codes::bad_input(format!("input {name:?} is an empty list: `IN ()` is not SQL")));
                }
                let mut parts = Vec::with_capacity(c.literals.len());
                for (i, item) in c.literals.iter().enumerate() {
                    let binding = scalar_binding(unwrap_union(item)).map_err(|why| {
                        codes::bad_input(format!("input {name:?}, element {i}: {why}"))
                    })?;
                    parts.push(self.push(binding));
                }
                format!("({})", parts.join(", "))
            }
            value => {
                let binding = scalar_binding(value).map_err(|why| codes::bad_input(format!("input {name:?}: {why}")))?;
                self.push(binding)
            }
        };
        self.numbers.insert(name.to_owned(), text.clone());
        Ok(text)
    }

    fn push(&mut self, binding: Binding) -> String {
        let n = self.bindings.len() + 1;
        self.bindings.insert(n.to_string(), binding);
        format!(":{n}")
    }
}

/// A union's value is the literal it wraps (flytekit's `Optional[int]` inputs); `None`: no value.
fn unwrap_union(literal: &core::Literal) -> Option<&LitValue> {
    let mut value = literal.value.as_ref()?;
    for _ in 0..16 {
        match value {
            LitValue::Scalar(s) => match &s.value {
                Some(ScalarValue::Union(u)) => value = u.value.as_ref().and_then(|l| l.value.as_ref())?,
                _ => return Some(value),
            },
            _ => return Some(value),
        }
    }
    Some(value)
}

fn scalar_binding(value: Option<&LitValue>) -> Result<Binding, String> {
    let bind = |kind, value: String| Ok(Binding { kind, value: Some(value) });
    let Some(value) = value else { return Ok(Binding { kind: "ANY", value: None }) };
    let LitValue::Scalar(scalar) = value else {
        return Err(match value {
            LitValue::Map(_) => "a map cannot be a query parameter".into(),
            LitValue::Collection(_) => "a nested list cannot be a query parameter".into(),
            LitValue::OffloadedMetadata(_) => "an offloaded literal cannot be a query parameter".into(),
            _ => "this literal cannot be a query parameter".into(),
        });
    };
    match &scalar.value {
        None | Some(ScalarValue::NoneType(_)) => Ok(Binding { kind: "ANY", value: None }),
        Some(ScalarValue::Primitive(p)) => match &p.value {
            Some(Prim::Integer(n)) => bind("FIXED", n.to_string()),
            Some(Prim::FloatValue(f)) => bind(
                "REAL",
                if f.is_nan() {
                    "NaN".into()
                } else if f.is_infinite() {
                    if *f > 0.0 { "inf".into() } else { "-inf".into() }
                } else {
                    format!("{f:?}")
                },
            ),
            Some(Prim::StringValue(s)) => bind("TEXT", s.clone()),
            Some(Prim::Boolean(b)) => bind("BOOLEAN", b.to_string()),
            Some(Prim::Datetime(ts)) => {
                let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
                // TIMESTAMP_TZ: "<epoch nanoseconds> <UTC offset in minutes + 1440>".
                bind("TIMESTAMP_TZ", format!("{nanos} 1440"))
            }
            Some(Prim::Duration(_)) => {
                Err("a duration cannot be a Snowflake parameter: pass a number of seconds (an integer or float input)".into())
            }
            None => Ok(Binding { kind: "ANY", value: None }),
        },
        Some(ScalarValue::Blob(_)) => Err("a file or directory cannot be a query parameter".into()),
        Some(ScalarValue::StructuredDataset(_)) | Some(ScalarValue::Schema(_)) => {
            Err("a dataframe cannot be a query parameter (load it into a Snowflake table first)".into())
        }
        Some(ScalarValue::Generic(_)) | Some(ScalarValue::Binary(_)) => {
            Err("a struct or dataclass cannot be a query parameter".into())
        }
        Some(ScalarValue::Error(_)) => Err("an error literal cannot be a query parameter".into()),
        Some(ScalarValue::Union(_)) => Err("nested unions cannot be a query parameter".into()),
    }
}

/// `{{ .inputs.name }}` (Flyte's Go-template form, any spacing, any case of `inputs`) at the
/// start of `text`: the name and the length of the placeholder.
fn go_placeholder(text: &str) -> Option<(&str, usize)> {
    let inner = text.strip_prefix("{{")?;
    let end = inner.find("}}")?;
    let body = inner[..end].trim();
    let dot = body.strip_prefix('.')?;
    let (scope, name) = dot.split_once('.')?;
    if !scope.eq_ignore_ascii_case("inputs") || name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((name, 2 + end + 2))
}

fn first_go_placeholder(text: &str) -> Option<&str> {
    text.char_indices().find_map(|(i, _)| go_placeholder(&text[i..]).map(|(n, _)| n))
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::{FlyteType, LiteralMapBuilder};

    fn inputs() -> core::LiteralMap {
        LiteralMapBuilder::new()
            .with("n", &42i64)
            .unwrap()
            .with("name", &"O'Brien; DROP TABLE t".to_owned())
            .unwrap()
            .with("f", &1.5f64)
            .unwrap()
            .with("ok", &true)
            .unwrap()
            .with("ids", &vec![1i64, 2, 3])
            .unwrap()
            .with("maybe", &Option::<i64>::None)
            .unwrap()
            .with("some", &Some(7i64))
            .unwrap()
            .build()
    }

    fn b(kind: &'static str, value: &str) -> Binding {
        Binding { kind, value: Some(value.into()) }
    }

    #[test]
    fn pyformat_parameters_become_typed_bind_variables() {
        let q = bind(
            "SELECT * FROM t WHERE n = %(n)s AND name = %(name)s AND f > %(f)s AND ok = %(ok)s AND n <> %(n)s AND s LIKE 'a%%'",
            &inputs(),
        )
        .unwrap();
        assert_eq!(q.statement, "SELECT * FROM t WHERE n = :1 AND name = :2 AND f > :3 AND ok = :4 AND n <> :1 AND s LIKE 'a%'");
        assert_eq!(q.bindings["1"], b("FIXED", "42"));
        assert_eq!(q.bindings["2"], b("TEXT", "O'Brien; DROP TABLE t"));
        assert_eq!(q.bindings["3"], b("REAL", "1.5"));
        assert_eq!(q.bindings["4"], b("BOOLEAN", "true"));
        assert_eq!(q.bindings.len(), 4);
    }

    #[test]
    fn lists_optionals_and_go_templates() {
        let q = bind("SELECT 1 WHERE id IN %(ids)s AND x IS %(maybe)s AND y = {{ .inputs.some }} AND z = {{.Inputs.n}}", &inputs()).unwrap();
        assert_eq!(q.statement, "SELECT 1 WHERE id IN (:1, :2, :3) AND x IS :4 AND y = :5 AND z = :6");
        assert_eq!(q.bindings["4"], Binding { kind: "ANY", value: None });
        assert_eq!(q.bindings["5"], b("FIXED", "7"));
    }

    #[test]
    fn datetimes_are_utc_instants() {
        let when = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00.5Z").unwrap().with_timezone(&chrono::Utc);
        let m = LiteralMapBuilder::new().with("t", &when).unwrap().build();
        let q = bind("SELECT %(t)s", &m).unwrap();
        assert_eq!(q.bindings["1"], b("TIMESTAMP_TZ", "1704067200500000000 1440"));
    }

    #[test]
    fn without_inputs_the_statement_is_sent_as_written() {
        let q = bind("SELECT '%(x)s', 'a%%b', 100 % 7", &core::LiteralMap::default()).unwrap();
        assert_eq!(q.statement, "SELECT '%(x)s', 'a%%b', 100 % 7");
        assert!(q.bindings.is_empty());
        assert!(bind("SELECT {{ .inputs.x }}", &core::LiteralMap::default()).unwrap_err().message.contains("no inputs"));
    }

    #[test]
    fn refusals() {
        let m = inputs();
        for (sql, needle) in [
            ("SELECT %(nope)s", "\"nope\""),
            ("SELECT %(n)d", "only %(name)s"),
            ("SELECT %(n", "unterminated"),
        ] {
            let e = bind(sql, &m).unwrap_err();
            assert_eq!(e.code, codes::BAD_INPUT);
            assert!(e.message.contains(needle), "{sql}: {e}");
        }
        let d = LiteralMapBuilder::new().with("d", &std::time::Duration::from_secs(3)).unwrap().build();
        assert!(bind("SELECT %(d)s", &d).unwrap_err().message.contains("duration"));
        let empty = LiteralMapBuilder::new().with("l", &Vec::<i64>::new()).unwrap().build();
        assert!(bind("SELECT 1 WHERE a IN %(l)s", &empty).unwrap_err().message.contains("empty list"));
        let _ = i64::literal_type();
    }
}
