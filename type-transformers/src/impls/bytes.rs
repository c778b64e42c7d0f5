//! Raw bytes: [`Bytes`] (and `::bytes::Bytes`) as Flyte's `BINARY` simple type, the literal
//! `scalar.binary {value, tag: ""}`.
//!
//! flytekit has no literal form of its own for a top-level Python `bytes`: it pickles the
//! value to a `PythonPickle` blob. Inside a dataclass, though, `bytes` is a msgpack `bin`,
//! and that is what a [`Bytes`] field of a derived struct writes. `Vec<u8>` is a list of
//! integers (`List[int]`), like any `Vec<T>`.
use tern_agent_api::core;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::core::SimpleType as S;

use super::fallback;
use crate::error::TransformError;
use crate::literals::{as_scalar, scalar};
use crate::msgpack::MSGPACK_TAG;
use crate::transformer::FlyteType;
use crate::types::simple;

/// Raw bytes (Python `bytes` inside a dataclass).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

fn binary(value: &[u8]) -> core::Literal {
    scalar(ScalarValue::Binary(core::Binary { value: value.to_vec(), tag: String::new() }))
}

fn read(literal: &core::Literal) -> Option<&[u8]> {
    match as_scalar(literal) {
        Some(ScalarValue::Binary(b)) if b.tag != MSGPACK_TAG => Some(&b.value),
        _ => None,
    }
}

impl FlyteType for Bytes {
    fn literal_type() -> core::LiteralType {
        simple(S::Binary)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(binary(&self.0))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match read(literal) {
            Some(b) => Ok(Bytes(b.to_vec())),
            None => fallback(literal),
        }
    }
}

impl FlyteType for ::bytes::Bytes {
    fn literal_type() -> core::LiteralType {
        simple(S::Binary)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        Ok(binary(self))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match read(literal) {
            Some(b) => Ok(::bytes::Bytes::copy_from_slice(b)),
            None => fallback(literal),
        }
    }
}
