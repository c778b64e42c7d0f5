//! `chrono::DateTime<Utc>` as a Flyte datetime (protobuf Timestamp), `chrono::Duration` and
//! `std::time::Duration` as a Flyte duration (protobuf Duration), as flytekit writes
//! `datetime` and `timedelta`. Rust keeps nanoseconds; Python reads microseconds.
use tern_agent_api::core;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::SimpleType as S;

use super::fallback;
use crate::error::TransformError;
use crate::literals::{as_primitive, primitive};
use crate::pytime::{check_duration, timestamp_to_chrono};
use crate::transformer::FlyteType;
use crate::types::simple;

impl FlyteType for chrono::DateTime<chrono::Utc> {
    fn literal_type() -> core::LiteralType {
        simple(S::Datetime)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        // chrono represents a leap second as nanos >= 1e9; a Timestamp cannot.
        let nanos = self.timestamp_subsec_nanos().min(999_999_999) as i32;
        Ok(primitive(Prim::Datetime(prost_types::Timestamp { seconds: self.timestamp(), nanos })))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match as_primitive(literal) {
            Some(Prim::Datetime(t)) => timestamp_to_chrono(t).map_err(|why| TransformError::invalid("datetime", why)),
            _ => fallback(literal),
        }
    }
}

fn duration_literal(seconds: i64, nanos: i32) -> core::Literal {
    primitive(Prim::Duration(prost_types::Duration { seconds, nanos }))
}

impl FlyteType for chrono::Duration {
    fn literal_type() -> core::LiteralType {
        simple(S::Duration)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        // num_seconds truncates toward zero and subsec_nanos has the sign of the whole,
        // which is the protobuf Duration form.
        Ok(duration_literal(self.num_seconds(), self.subsec_nanos()))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match as_primitive(literal) {
            Some(Prim::Duration(d)) => {
                check_duration(d).map_err(|why| TransformError::invalid("duration", why))?;
                chrono::Duration::try_seconds(d.seconds)
                    .and_then(|s| s.checked_add(&chrono::Duration::nanoseconds(i64::from(d.nanos))))
                    .ok_or_else(|| {
                        TransformError::invalid("duration", format!("{}s is out of chrono's range", d.seconds))
                    })
            }
            _ => fallback(literal),
        }
    }
}

impl FlyteType for std::time::Duration {
    fn literal_type() -> core::LiteralType {
        simple(S::Duration)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        let seconds = i64::try_from(self.as_secs()).map_err(|_| TransformError::IntegerOutOfRange {
            value: self.as_secs().to_string(),
            target: "duration seconds (int64)",
        })?;
        Ok(duration_literal(seconds, self.subsec_nanos() as i32))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match as_primitive(literal) {
            Some(Prim::Duration(d)) => {
                check_duration(d).map_err(|why| TransformError::invalid("duration", why))?;
                if d.seconds < 0 || d.nanos < 0 {
                    return Err(TransformError::invalid(
                        "duration (std::time::Duration)",
                        format!("{}s {}ns is negative", d.seconds, d.nanos),
                    ));
                }
                Ok(std::time::Duration::new(d.seconds as u64, d.nanos as u32))
            }
            _ => fallback(literal),
        }
    }
}
