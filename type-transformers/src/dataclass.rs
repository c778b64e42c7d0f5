//! What `#[derive(FlyteType)]` generates code against: structs as flytekit dataclasses and
//! fieldless enums as Python `Enum`s. Usable by hand for types the derive cannot see.
//!
//! A dataclass, as flytekit 1.16 writes it:
//! - `LiteralType`: `simple: STRUCT`, `metadata`: the JSON schema ([`crate::schema`]),
//!   `annotation`: `{"cache-key-metadata": {"serialization-format": "msgpack"}}`,
//!   `structure`: `{tag: "", dataclass_type: {field: LiteralType}}`;
//! - `Literal`: `scalar.binary {value: msgpack map of the fields in declaration order, tag: "msgpack"}`.
//!
//! Reading also accepts the pre-1.14 form: `scalar.generic` (a `google.protobuf.Struct`,
//! where every number is a double; whole numbers read back into integer fields).
//!
//! An enum: `LiteralType.enum_type {values}`, literal `scalar.primitive.string_value`.
use std::collections::BTreeMap;

use tern_agent_api::core;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;

use crate::error::TransformError;
use crate::literals::{self, describe};
use crate::msgpack_literal::{self, describe_msgpack, msgpack_to_literal, write_literal, write_str};
use crate::schema::{dataclass_schema, SchemaField};
use crate::structs::json_to_struct;
use crate::transformer::FlyteType;

/// `TypeAnnotation` key flytekit uses for how a value is serialized for cache keys.
pub const CACHE_KEY_METADATA: &str = "cache-key-metadata";
pub const SERIALIZATION_FORMAT: &str = "serialization-format";

/// The annotation flytekit puts on dataclass and `dict` types.
pub fn msgpack_annotation() -> core::TypeAnnotation {
    let json = serde_json::json!({ CACHE_KEY_METADATA: { SERIALIZATION_FORMAT: crate::msgpack::MSGPACK_TAG } });
    core::TypeAnnotation { annotations: json.as_object().map(json_to_struct) }
}

/// One field of a dataclass type.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: core::LiteralType,
    /// The default value as JSON; fields with one are not `required` in the schema.
    pub default: Option<serde_json::Value>,
}

impl FieldSpec {
    /// A field without a default.
    pub fn required<T: FlyteType>(name: &'static str) -> Self {
        Self { name, ty: T::literal_type(), default: None }
    }

    /// A field whose value may be left out (it then reads as `T::default()`).
    pub fn defaulted<T: FlyteType + Default>(name: &'static str) -> Self {
        Self::defaulted_with(name, T::default)
    }

    /// A field whose value may be left out (it then reads as `default()`).
    pub fn defaulted_with<T: FlyteType>(name: &'static str, default: fn() -> T) -> Self {
        // The schema shows the default the way flytekit renders values; a default with no
        // literal form is shown as null rather than failing the type.
        let default = default().to_literal().map(|l| crate::render::literal_to_json(&l)).unwrap_or_default();
        Self { name, ty: T::literal_type(), default: Some(default) }
    }
}

/// The `LiteralType` of a dataclass named `title` (the Python class name) with these fields.
pub fn dataclass_literal_type(title: &str, fields: Vec<FieldSpec>) -> core::LiteralType {
    let schema_fields: Vec<SchemaField<'_>> =
        fields.iter().map(|f| SchemaField { name: f.name, ty: &f.ty, default: f.default.clone() }).collect();
    let metadata = match dataclass_schema(title, &schema_fields) {
        serde_json::Value::Object(o) => Some(json_to_struct(&o)),
        _ => None,
    };
    let dataclass_type: BTreeMap<String, core::LiteralType> =
        fields.into_iter().map(|f| (f.name.to_owned(), f.ty)).collect();
    core::LiteralType {
        r#type: Some(LitType::Simple(core::SimpleType::Struct as i32)),
        metadata,
        annotation: Some(msgpack_annotation()),
        structure: Some(core::TypeStructure { tag: String::new(), dataclass_type }),
    }
}

/// Writes a struct's fields, in order, as the msgpack map flytekit writes for a dataclass.
#[derive(Debug)]
pub struct StructWriter {
    out: Vec<u8>,
}

impl StructWriter {
    /// A writer for a struct with `fields` fields.
    pub fn new(fields: u32) -> Self {
        let mut out = Vec::with_capacity(16 * fields as usize + 8);
        let _ = rmp::encode::write_map_len(&mut out, fields);
        Self { out }
    }

    pub fn field<T: FlyteType>(&mut self, name: &str, value: &T) -> Result<(), TransformError> {
        let literal = value.to_literal().map_err(|e| e.at_field(name))?;
        write_str(&mut self.out, name)?;
        write_literal(&literal, &mut self.out).map_err(|e| e.at_field(name))
    }

    /// The msgpack `Binary` literal.
    pub fn finish(self) -> core::Literal {
        literals::msgpack_binary(self.out)
    }
}

/// Reads a struct's fields from a dataclass literal (msgpack or the older generic Struct).
#[derive(Debug)]
pub struct StructReader {
    struct_name: &'static str,
    entries: Vec<(rmpv::Value, rmpv::Value)>,
}

impl StructReader {
    pub fn new(literal: &core::Literal, struct_name: &'static str) -> Result<Self, TransformError> {
        let entries = match literals::as_scalar(literal) {
            Some(ScalarValue::Binary(b)) if b.tag == crate::msgpack::MSGPACK_TAG => {
                match msgpack_literal::decode(&b.value, struct_name)? {
                    rmpv::Value::Map(entries) => entries,
                    other => {
                        return Err(TransformError::MalformedMsgpack {
                            rust_type: struct_name.to_owned(),
                            reason: format!("expected a map of fields, found {}", describe_msgpack(&other)),
                        })
                    }
                }
            }
            Some(ScalarValue::Generic(s)) => {
                s.fields.iter().map(|(k, v)| (rmpv::Value::from(k.as_str()), prost_to_rmpv(v))).collect()
            }
            Some(ScalarValue::Union(u)) if u.value.is_some() => {
                let inner = u.value.as_deref().unwrap_or(literal);
                return Self::new(inner, struct_name);
            }
            _ => {
                return Err(TransformError::wrong_kind(
                    format!("struct {struct_name} (a msgpack binary or generic struct)"),
                    describe(literal),
                ))
            }
        };
        Ok(Self { struct_name, entries })
    }

    fn take(&mut self, name: &str) -> Option<rmpv::Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| std::mem::replace(v, rmpv::Value::Nil))
    }

    /// The field `name`; missing is [`TransformError::MissingField`].
    pub fn field<T: FlyteType>(&mut self, name: &str) -> Result<T, TransformError> {
        match self.take(name) {
            Some(value) => decode_field(&value, name),
            None => {
                Err(TransformError::MissingField { struct_name: self.struct_name.to_owned(), field: name.to_owned() })
            }
        }
    }

    /// The field `name`, or `T::default()` when it is missing.
    pub fn field_or_default<T: FlyteType + Default>(&mut self, name: &str) -> Result<T, TransformError> {
        match self.take(name) {
            Some(value) => decode_field(&value, name),
            None => Ok(T::default()),
        }
    }

    /// The field `name`, or `default()` when it is missing.
    pub fn field_or_else<T: FlyteType>(&mut self, name: &str, default: fn() -> T) -> Result<T, TransformError> {
        match self.take(name) {
            Some(value) => decode_field(&value, name),
            None => Ok(default()),
        }
    }

    /// Fails on a field not in `known` (mashumaro, like the default here, ignores them).
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), TransformError> {
        for (k, _) in &self.entries {
            let key = k.as_str().map(str::to_owned).unwrap_or_else(|| describe_msgpack(k));
            if !known.contains(&key.as_str()) {
                return Err(TransformError::UnknownField {
                    struct_name: self.struct_name.to_owned(),
                    field: key,
                    known: known.join(", "),
                });
            }
        }
        Ok(())
    }
}

fn decode_field<T: FlyteType>(value: &rmpv::Value, name: &str) -> Result<T, TransformError> {
    let literal = msgpack_to_literal(value, &T::literal_type()).map_err(|e| in_payload::<T>(e).at_field(name))?;
    T::from_literal(&literal).map_err(|e| e.at_field(name))
}

/// A msgpack value of the wrong shape for `T` is a malformed payload for `T`; other errors
/// (an out-of-range integer, an unknown enum value) keep their own code.
pub(crate) fn in_payload<T>(e: TransformError) -> TransformError {
    match e.innermost() {
        TransformError::WrongKind { .. } | TransformError::NoUnionVariant { .. } => TransformError::MalformedMsgpack {
            rust_type: crate::literals::short_type_name::<T>(),
            reason: e.to_string(),
        },
        _ => e,
    }
}

/// A `google.protobuf.Value` as msgpack (numbers stay doubles).
fn prost_to_rmpv(v: &prost_types::Value) -> rmpv::Value {
    use prost_types::value::Kind;
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => rmpv::Value::Nil,
        Some(Kind::NumberValue(n)) => rmpv::Value::F64(*n),
        Some(Kind::StringValue(s)) => rmpv::Value::from(s.as_str()),
        Some(Kind::BoolValue(b)) => rmpv::Value::Boolean(*b),
        Some(Kind::StructValue(s)) => {
            rmpv::Value::Map(s.fields.iter().map(|(k, v)| (rmpv::Value::from(k.as_str()), prost_to_rmpv(v))).collect())
        }
        Some(Kind::ListValue(l)) => rmpv::Value::Array(l.values.iter().map(prost_to_rmpv).collect()),
    }
}

/// The `LiteralType` of a Python `Enum` with these (string) values.
pub fn enum_literal_type(values: &[&str]) -> core::LiteralType {
    crate::types::enumeration(values.iter().map(|v| (*v).to_owned()).collect())
}

/// The literal of an enum value.
pub fn enum_to_literal(value: &str) -> core::Literal {
    literals::primitive(Prim::StringValue(value.to_owned()))
}

/// Which of `allowed` the literal holds (its index); anything else is an error listing them.
pub fn enum_from_literal(literal: &core::Literal, enum_name: &str, allowed: &[&str]) -> Result<usize, TransformError> {
    let owned;
    let text = match literals::as_scalar(literal) {
        Some(ScalarValue::Primitive(core::Primitive { value: Some(Prim::StringValue(s)) })) => s.as_str(),
        Some(ScalarValue::Binary(b)) if b.tag == crate::msgpack::MSGPACK_TAG => {
            match msgpack_literal::decode(&b.value, enum_name)? {
                rmpv::Value::String(s) if s.as_str().is_some() => {
                    owned = s.into_str().unwrap_or_default();
                    owned.as_str()
                }
                other => {
                    return Err(TransformError::MalformedMsgpack {
                        rust_type: enum_name.to_owned(),
                        reason: format!("expected a string, found {}", describe_msgpack(&other)),
                    })
                }
            }
        }
        _ => return Err(TransformError::wrong_kind(format!("enum {enum_name} (a string)"), describe(literal))),
    };
    allowed.iter().position(|v| *v == text).ok_or_else(|| TransformError::UnknownEnumValue {
        enum_name: enum_name.to_owned(),
        value: text.to_owned(),
        allowed: allowed.iter().map(|v| (*v).to_owned()).collect(),
    })
}
