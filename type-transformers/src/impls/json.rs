//! JSON values: `serde_json::Value` as a Generic Struct literal, and [`JsonDict`] as
//! flytekit 1.16 writes a Python `dict`.
//!
//! - `serde_json::Value`: type `simple: STRUCT`; value `scalar.generic`, a
//!   `google.protobuf.Struct` (so the value must be a JSON object, and its numbers are
//!   doubles: `{"n": 1}` reads back as `{"n": 1.0}`). This is the pre-1.14 flytekit form;
//!   flytekit still reads it for `dict` inputs.
//! - [`JsonDict`]: type `simple: STRUCT` with the annotation
//!   `{"cache-key-metadata": {"serialization-format": "msgpack"}}`; value `scalar.binary`
//!   `{value: msgpack of the object, tag: "msgpack"}`, which keeps integers integers.
//!
//! Both read both forms.
use serde_json::{Map, Value};
use tern_agent_api::core;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::core::SimpleType as S;

use super::wrong_kind;
use crate::dataclass::msgpack_annotation;
use crate::error::TransformError;
use crate::literals::{as_msgpack, as_scalar, msgpack_binary, scalar};
use crate::msgpack::{json_to_msgpack, msgpack_to_json};
use crate::structs::{json_to_struct, struct_to_json};
use crate::transformer::FlyteType;
use crate::types::simple;

fn read_json(literal: &core::Literal, rust_type: &str) -> Option<Result<Value, TransformError>> {
    if let Some(bytes) = as_msgpack(literal) {
        return Some(
            msgpack_to_json(bytes).map_err(|e| TransformError::MalformedMsgpack {
                rust_type: rust_type.to_owned(),
                reason: e.to_string(),
            }),
        );
    }
    match as_scalar(literal) {
        Some(ScalarValue::Generic(s)) => Some(Ok(Value::Object(struct_to_json(s)))),
        _ => None,
    }
}

impl FlyteType for Value {
    fn literal_type() -> core::LiteralType {
        simple(S::Struct)
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        match self {
            Value::Object(o) => Ok(scalar(ScalarValue::Generic(json_to_struct(o)))),
            other => Err(TransformError::invalid(
                "struct (serde_json::Value)",
                format!("a generic Struct holds a JSON object, not {other}"),
            )),
        }
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        read_json(literal, "serde_json::Value").unwrap_or_else(|| Err(wrong_kind::<Self>(literal)))
    }
}

/// A JSON object written as flytekit writes a Python `dict` (msgpack `Binary`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonDict(pub Map<String, Value>);

impl FlyteType for JsonDict {
    fn literal_type() -> core::LiteralType {
        core::LiteralType { annotation: Some(msgpack_annotation()), ..simple(S::Struct) }
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        // Writes the object directly, without cloning it into a Value.
        let mut out = Vec::new();
        let _ = rmp::encode::write_map_len(&mut out, self.0.len() as u32);
        for (k, v) in &self.0 {
            crate::msgpack_literal::write_str(&mut out, k)?;
            out.extend_from_slice(&json_to_msgpack(v));
        }
        Ok(msgpack_binary(out))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match read_json(literal, "JsonDict") {
            Some(Ok(Value::Object(o))) => Ok(JsonDict(o)),
            Some(Ok(other)) => Err(TransformError::MalformedMsgpack {
                rust_type: "JsonDict".into(),
                reason: format!("expected a map, found {other}"),
            }),
            Some(Err(e)) => Err(e),
            None => Err(wrong_kind::<Self>(literal)),
        }
    }
}
