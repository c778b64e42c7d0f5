//! `bool`, integers, floats, `String` and `()` as Flyte primitives (and `none`).
//!
//! Flyte's integer is int64: every Rust integer type converts into it with a range check
//! (`u64::MAX` is an error, not a wrap), and reads back with a range check of the target
//! type. A float reads from an integer literal too, as flytekit's float transformer does.
use tern_agent_api::core;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::SimpleType as S;

use super::{fallback, wrong_kind};
use crate::error::TransformError;
use crate::literals::{as_primitive, is_none, none, primitive};
use crate::transformer::FlyteType;
use crate::types::simple;

impl FlyteType for bool {
    fn literal_type() -> core::LiteralType {
        simple(S::Boolean)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(primitive(Prim::Boolean(*self)))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match as_primitive(literal) {
            Some(Prim::Boolean(b)) => Ok(*b),
            _ => fallback(literal),
        }
    }
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl FlyteType for $t {
            fn literal_type() -> core::LiteralType {
                simple(S::Integer)
            }
            #[allow(clippy::useless_conversion)]
            fn to_literal(&self) -> Result<core::Literal, TransformError> {
                i64::try_from(*self).map(|v| primitive(Prim::Integer(v))).map_err(|_| {
                    TransformError::IntegerOutOfRange { value: self.to_string(), target: "Flyte's integer (int64)" }
                })
            }
            #[allow(clippy::useless_conversion)]
            fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
                match as_primitive(literal) {
                    Some(Prim::Integer(i)) => <$t>::try_from(*i).map_err(|_| TransformError::IntegerOutOfRange {
                        value: i.to_string(),
                        target: stringify!($t),
                    }),
                    _ => fallback(literal),
                }
            }
        }
    )*};
}

integer!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl FlyteType for f64 {
    fn literal_type() -> core::LiteralType {
        simple(S::Float)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(primitive(Prim::FloatValue(*self)))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match as_primitive(literal) {
            Some(Prim::FloatValue(f)) => Ok(*f),
            Some(Prim::Integer(i)) => Ok(*i as f64),
            _ => fallback(literal),
        }
    }
}

impl FlyteType for f32 {
    fn literal_type() -> core::LiteralType {
        simple(S::Float)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(primitive(Prim::FloatValue(f64::from(*self))))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        let f = match as_primitive(literal) {
            Some(Prim::FloatValue(f)) => *f,
            Some(Prim::Integer(i)) => *i as f64,
            _ => return fallback(literal),
        };
        if f.is_finite() && f.abs() > f64::from(f32::MAX) {
            return Err(TransformError::invalid("float (f32)", format!("{f} overflows f32")));
        }
        Ok(f as f32)
    }
}

impl FlyteType for String {
    fn literal_type() -> core::LiteralType {
        simple(S::String)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(primitive(Prim::StringValue(self.clone())))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match as_primitive(literal) {
            Some(Prim::StringValue(s)) => Ok(s.clone()),
            _ => fallback(literal),
        }
    }
}

/// `()` is Python's `None`: the `none` type (a union variant, a task with no value).
impl FlyteType for () {
    fn literal_type() -> core::LiteralType {
        simple(S::None)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(none())
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        if is_none(literal) {
            return Ok(());
        }
        match crate::literals::as_msgpack(literal) {
            Some([0xc0]) => Ok(()),
            _ => Err(wrong_kind::<Self>(literal)),
        }
    }
}
