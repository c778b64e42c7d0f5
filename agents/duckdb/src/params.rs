//! Scalar task inputs → named query parameters (`$name`), bound through DuckDB's
//! prepared-statement API, never spliced into the SQL text.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use duckdb::Statement;
use tern_agent_api::prelude::{core, AgentError};
use tern_type_transformers::FlyteType;

use crate::codes::{self, bad_input};
use core::literal::Value as LitValue;
use core::primitive::Value as Prim;
use core::scalar::Value as ScalarValue;

/// What an input can be when the SQL names it as `$name`.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Value(Value),
    /// A dataframe input: a view, not a parameter.
    Dataframe,
    /// Any other literal kind, described for the error message.
    Unsupported(String),
    /// A scalar whose value cannot be represented (e.g. an out-of-range datetime).
    Invalid(String),
}

/// Classifies every input; failures surface only if the SQL uses the input.
pub fn from_inputs(inputs: &core::LiteralMap) -> HashMap<String, Param> {
    inputs.literals.iter().map(|(name, lit)| (name.clone(), from_literal(lit))).collect()
}

fn from_literal(lit: &core::Literal) -> Param {
    let scalar = match &lit.value {
        Some(LitValue::Scalar(s)) => s,
        Some(LitValue::Collection(_)) => return Param::Unsupported("a list".into()),
        Some(LitValue::Map(_)) => return Param::Unsupported("a map".into()),
        Some(LitValue::OffloadedMetadata(_)) => return Param::Unsupported("an offloaded literal".into()),
        None => return Param::Unsupported("an empty literal".into()),
    };
    match &scalar.value {
        Some(ScalarValue::Primitive(p)) => match &p.value {
            Some(Prim::Integer(_)) => typed(lit, |i: i64| Some(Value::BigInt(i)), unreadable),
            Some(Prim::FloatValue(_)) => typed(lit, |f: f64| Some(Value::Double(f)), unreadable),
            Some(Prim::StringValue(_)) => typed(lit, |s: String| Some(Value::Text(s)), unreadable),
            Some(Prim::Boolean(_)) => typed(lit, |b: bool| Some(Value::Boolean(b)), unreadable),
            Some(Prim::Datetime(t)) => typed(
                lit,
                |dt: DateTime<Utc>| Some(Value::Timestamp(TimeUnit::Microsecond, dt.timestamp_micros())),
                || format!("datetime {}s is out of DuckDB's range", t.seconds),
            ),
            Some(Prim::Duration(d)) => typed(
                lit,
                |d: chrono::Duration| d.num_nanoseconds().map(|nanos| Value::Interval { months: 0, days: 0, nanos }),
                || format!("duration {}s is out of range", d.seconds),
            ),
            None => Param::Unsupported("an empty primitive".into()),
        },
        Some(ScalarValue::NoneType(_)) => typed(lit, |()| Some(Value::Null), unreadable),
        Some(ScalarValue::Union(u)) => match u.value.as_deref() {
            Some(inner) => from_literal(inner),
            None => Param::Unsupported("an empty union".into()),
        },
        Some(ScalarValue::StructuredDataset(_)) => Param::Dataframe,
        Some(ScalarValue::Blob(_)) => Param::Unsupported("a file or directory (blob)".into()),
        Some(ScalarValue::Binary(_)) => Param::Unsupported("binary data".into()),
        Some(ScalarValue::Schema(_)) => Param::Unsupported("a schema".into()),
        Some(ScalarValue::Error(_)) => Param::Unsupported("an error".into()),
        Some(ScalarValue::Generic(_)) => Param::Unsupported("a struct".into()),
        None => Param::Unsupported("an empty scalar".into()),
    }
}

/// A scalar decoded as `T` through [`FlyteType`], then made a DuckDB value; a value that
/// does not decode or has no DuckDB value is [`Param::Invalid`] for the reason `invalid` gives.
fn typed<T: FlyteType>(
    lit: &core::Literal,
    to_value: impl FnOnce(T) -> Option<Value>,
    invalid: impl FnOnce() -> String,
) -> Param {
    match T::from_literal(lit).ok().and_then(to_value) {
        Some(v) => Param::Value(v),
        None => Param::Invalid(invalid()),
    }
}

fn unreadable() -> String {
    "the value cannot be read".to_owned()
}

/// Binds every parameter the prepared statement uses, by name.
pub fn bind(stmt: &mut Statement<'_>, params: &HashMap<String, Param>) -> Result<(), AgentError> {
    for idx in 1..=stmt.parameter_count() {
        let name = stmt
            .parameter_name(idx)
            .map_err(|e| codes::sql_error(format!("cannot read parameter {idx}: {}", codes::duckdb_message(&e))))?;
        if name.parse::<u64>().is_ok() {
            return Err(AgentError::user(
                codes::MISSING_PARAMETER,
                format!("positional parameter {name} (`?` or `${name}`) is not supported: name it after an input, e.g. `$my_input`"),
            ));
        }
        let value = match params.get(&name) {
            Some(Param::Value(v)) => v,
            Some(Param::Dataframe) => {
                return Err(bad_input(format!(
                    "input {name:?} is a dataframe: query it as a table (`FROM \"{name}\"`), not as `${name}`"
                )))
            }
            Some(Param::Unsupported(kind)) => {
                return Err(bad_input(format!(
                    "input {name:?} is {kind}; only integer, float, string, boolean, datetime, duration and none inputs can be query parameters"
                )))
            }
            Some(Param::Invalid(why)) => return Err(bad_input(format!("input {name:?}: {why}"))),
            None => {
                let mut known: Vec<&String> = params.keys().collect();
                known.sort();
                return Err(AgentError::user(
                    codes::MISSING_PARAMETER,
                    format!("the SQL uses parameter ${name} but the task has no input named {name:?} (inputs: {known:?})"),
                ));
            }
        };
        stmt.raw_bind_parameter(idx, value)
            .map_err(|e| bad_input(format!("cannot bind input {name:?}: {}", codes::duckdb_message(&e))))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: ScalarValue) -> core::Literal {
        core::Literal { value: Some(LitValue::Scalar(Box::new(core::Scalar { value: Some(v) }))), ..Default::default() }
    }

    fn prim(p: Prim) -> core::Literal {
        scalar(ScalarValue::Primitive(core::Primitive { value: Some(p) }))
    }

    #[test]
    fn scalars_become_values() {
        assert_eq!(from_literal(&prim(Prim::Integer(7))), Param::Value(Value::BigInt(7)));
        assert_eq!(
            from_literal(&prim(Prim::Datetime(prost_types::Timestamp { seconds: 1, nanos: 2_000 }))),
            Param::Value(Value::Timestamp(TimeUnit::Microsecond, 1_000_002))
        );
        assert_eq!(
            from_literal(&prim(Prim::Duration(prost_types::Duration { seconds: 2, nanos: 5 }))),
            Param::Value(Value::Interval { months: 0, days: 0, nanos: 2_000_000_005 })
        );
        assert_eq!(from_literal(&scalar(ScalarValue::NoneType(core::Void {}))), Param::Value(Value::Null));
        let union = scalar(ScalarValue::Union(Box::new(core::Union { value: Some(Box::new(prim(Prim::Boolean(true)))), r#type: None })));
        assert_eq!(from_literal(&union), Param::Value(Value::Boolean(true)));
    }

    #[test]
    fn others_are_classified() {
        assert!(matches!(from_literal(&prim(Prim::Datetime(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }))), Param::Invalid(_)));
        assert_eq!(from_literal(&scalar(ScalarValue::StructuredDataset(Default::default()))), Param::Dataframe);
        assert!(matches!(from_literal(&core::Literal::default()), Param::Unsupported(_)));
    }
}
