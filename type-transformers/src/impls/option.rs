//! `Option<T>` as flytekit writes `Optional[T]`: the type is `union [T, none]` with the
//! variants tagged by flytekit transformer name (`"int"`, `"none"`, …), and a value is
//! `scalar.union {value, type: the variant it holds}`.
//!
//! Reading accepts the union form, a bare `none` literal (as `None`), a bare literal of
//! `T`, and the msgpack forms (nil is `None`).
use tern_agent_api::core;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::core::SimpleType as S;

use super::union::flytekit_variant;
use crate::error::TransformError;
use crate::literals::{as_msgpack, as_scalar, describe, is_none, none, union_value};
use crate::transformer::FlyteType;
use crate::types::{simple, union};

fn none_variant() -> core::LiteralType {
    flytekit_variant(simple(S::None))
}

impl<T: FlyteType> FlyteType for Option<T> {
    fn literal_type() -> core::LiteralType {
        union(vec![flytekit_variant(T::literal_type()), none_variant()])
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(match self {
            None => union_value(none(), none_variant()),
            Some(v) => union_value(v.to_literal()?, flytekit_variant(T::literal_type())),
        })
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        let inner = match as_scalar(literal) {
            Some(ScalarValue::Union(u)) => match u.value.as_deref() {
                Some(v) => v,
                None => return Err(TransformError::wrong_kind("optional value", describe(literal))),
            },
            _ => literal,
        };
        if is_none(inner) || as_msgpack(inner) == Some(&[0xc0]) {
            return Ok(None);
        }
        T::from_literal(inner).map(Some)
    }
}
