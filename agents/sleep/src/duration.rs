//! Reads the `duration` input: a Flyte duration, or an integer or float number of seconds,
//! decoded through [`FlyteType`] (a union such as `Optional[timedelta]` is looked through).
use std::time::Duration;

use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::prelude::AgentError;
use tern_type_transformers::{FlyteType, TransformError};

use crate::codes;

pub const INPUT: &str = "duration";

fn bad(message: String) -> AgentError {
    AgentError::invalid_argument(codes::BAD_DURATION, message)
}

/// The sleep's length from the task's inputs.
pub fn sleep_duration(inputs: &core::LiteralMap) -> Result<Duration, AgentError> {
    let literal = inputs
        .literals
        .get(INPUT)
        .ok_or_else(|| bad(format!("input {INPUT:?} is required (a duration, or a number of seconds)")))?;
    let value = unwrap_unions(literal);
    let negative = |seconds_text: String| {
        bad(format!("input {INPUT:?} must be a non-negative, finite time, got {seconds_text}"))
    };
    match chrono::Duration::from_literal(value) {
        Ok(d) => {
            let text = format!("{}.{:09} s", d.num_seconds(), d.subsec_nanos().unsigned_abs());
            return d.to_std().map_err(|_| negative(text));
        }
        Err(e) if matches!(e.innermost(), TransformError::InvalidValue { .. }) => {
            return Err(bad(format!("input {INPUT:?}: {e}")))
        }
        Err(_) => {}
    }
    if let Ok(i) = i64::from_literal(value) {
        return u64::try_from(i).map(Duration::from_secs).map_err(|_| negative(format!("{i} s")));
    }
    if let Ok(f) = f64::from_literal(value) {
        return Duration::try_from_secs_f64(f).map_err(|_| negative(format!("{f} s")));
    }
    Err(bad(format!("input {INPUT:?} must be a duration or a number of seconds, got {}", literal_kind(literal))))
}

/// The value inside (possibly nested) union literals, e.g. of an `Optional[timedelta]`.
fn unwrap_unions(literal: &core::Literal) -> &core::Literal {
    match literal.value.as_ref() {
        Some(LitValue::Scalar(s)) => match s.value.as_ref() {
            Some(ScalarValue::Union(u)) => u.value.as_deref().map_or(literal, unwrap_unions),
            _ => literal,
        },
        _ => literal,
    }
}

/// A short name of what a literal holds, for messages.
fn literal_kind(literal: &core::Literal) -> &'static str {
    match literal.value.as_ref() {
        None => "an empty literal",
        Some(LitValue::Collection(_)) => "a list",
        Some(LitValue::Map(_)) => "a map",
        Some(LitValue::OffloadedMetadata(_)) => "an offloaded literal",
        Some(LitValue::Scalar(s)) => match s.value.as_ref() {
            None => "an empty scalar",
            Some(ScalarValue::Primitive(p)) => match p.value.as_ref() {
                None => "an empty primitive",
                Some(P::Integer(_)) => "an integer",
                Some(P::FloatValue(_)) => "a float",
                Some(P::StringValue(_)) => "a string",
                Some(P::Boolean(_)) => "a boolean",
                Some(P::Datetime(_)) => "a datetime",
                Some(P::Duration(_)) => "a duration",
            },
            Some(ScalarValue::Blob(_)) => "a file",
            Some(ScalarValue::Binary(_)) => "binary data",
            Some(ScalarValue::Schema(_)) => "a schema",
            Some(ScalarValue::NoneType(_)) => "None",
            Some(ScalarValue::Error(_)) => "an error",
            Some(ScalarValue::Generic(_)) => "a struct",
            Some(ScalarValue::StructuredDataset(_)) => "a dataframe",
            Some(ScalarValue::Union(_)) => "a union",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: Option<P>) -> core::LiteralMap {
        let mut m = core::LiteralMap::default();
        if let Some(v) = v {
            let lit = core::Literal {
                value: Some(LitValue::Scalar(Box::new(core::Scalar {
                    value: Some(ScalarValue::Primitive(core::Primitive { value: Some(v) })),
                }))),
                ..Default::default()
            };
            m.literals.insert(INPUT.into(), lit);
        }
        m
    }

    #[test]
    fn accepts_durations_and_seconds() {
        let d = prost_types::Duration { seconds: 1, nanos: 500_000_000 };
        assert_eq!(sleep_duration(&with(Some(P::Duration(d)))).unwrap(), Duration::from_millis(1500));
        assert_eq!(sleep_duration(&with(Some(P::Integer(2)))).unwrap(), Duration::from_secs(2));
        assert_eq!(sleep_duration(&with(Some(P::FloatValue(0.25)))).unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_missing_negative_and_wrong_kinds_naming_them() {
        let msg = |v| sleep_duration(&with(v)).unwrap_err().message;
        assert!(msg(None).contains("\"duration\" is required"));
        assert!(msg(Some(P::Integer(-1))).contains("-1 s"));
        assert!(msg(Some(P::FloatValue(f64::NAN))).contains("NaN s"));
        let d = prost_types::Duration { seconds: -3, nanos: 0 };
        assert!(msg(Some(P::Duration(d))).contains("non-negative"));
        let m = msg(Some(P::StringValue("5".into())));
        assert!(m.contains("\"duration\"") && m.contains("a string"), "{m}");
    }
}
