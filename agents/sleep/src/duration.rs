//! Reads the `duration` input: a Flyte duration, or an integer or float number of seconds.
use std::time::Duration;

use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::prelude::AgentError;

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
    let seconds_text;
    let duration = match primitive(literal) {
        Some(P::Duration(d)) => {
            seconds_text = format!("{}.{:09} s", d.seconds, d.nanos.unsigned_abs());
            if d.seconds < 0 || d.nanos < 0 {
                None
            } else {
                Some(Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs()))
            }
        }
        Some(P::Integer(i)) => {
            seconds_text = format!("{i} s");
            u64::try_from(*i).ok().map(Duration::from_secs)
        }
        Some(P::FloatValue(f)) => {
            seconds_text = format!("{f} s");
            Duration::try_from_secs_f64(*f).ok()
        }
        _ => {
            return Err(bad(format!(
                "input {INPUT:?} must be a duration or a number of seconds, got {}",
                literal_kind(literal)
            )))
        }
    };
    duration.ok_or_else(|| bad(format!("input {INPUT:?} must be a non-negative, finite time, got {seconds_text}")))
}

/// The primitive inside a literal, looking through a union (e.g. `Optional[timedelta]`).
fn primitive(literal: &core::Literal) -> Option<&P> {
    let LitValue::Scalar(scalar) = literal.value.as_ref()? else { return None };
    match scalar.value.as_ref()? {
        ScalarValue::Primitive(p) => p.value.as_ref(),
        ScalarValue::Union(u) => primitive(u.value.as_deref()?),
        _ => None,
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
