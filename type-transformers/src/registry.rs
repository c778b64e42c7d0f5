//! Conversion by `LiteralType` at run time: JSON (CLI inputs, YAML defaults, rendered
//! outputs) ⇄ literals, when no Rust type is known at compile time.
//!
//! [`TypeRegistry::default`] knows every built-in type: it renders with
//! [`crate::render`] and parses with [`crate::parse`], and writes dataclass types
//! (`STRUCT` with a `dataclass_type` structure or a JSON-schema `metadata`) and msgpack
//! `dict` types as the msgpack `Binary` literal flytekit 1.16 expects, with each field
//! converted by its declared type.
//!
//! Custom converters extend it, keyed by what flytekit puts in the type:
//! - [`TypeRegistry::register_tag`]: `LiteralType.structure.tag` (a custom transformer's name,
//!   as flytekit tags union variants, e.g. `"my.Point"`);
//! - [`TypeRegistry::register_dataclass`]: a dataclass's schema `title` (its Python class name);
//! - [`TypeRegistry::register_blob_format`]: a blob type's `format` (`"csv"`, `"onnx"`, …).
//!
//! A custom converter applies wherever its type appears, including inside lists, maps,
//! unions and dataclass fields.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::{json, Value};
//! use tern_type_transformers::registry::{LiteralConverter, TypeRegistry};
//! use tern_type_transformers::{FlyteType, TransformError, __core as core};
//!
//! /// A third party's `my.Point`, written as the string "x,y".
//! struct PointAsText;
//! impl LiteralConverter for PointAsText {
//!     fn to_json(&self, lit: &core::Literal, _: &core::LiteralType, _: &TypeRegistry) -> Result<Value, TransformError> {
//!         let text = String::from_literal(lit)?;
//!         let (x, y) = text.split_once(',').ok_or_else(|| TransformError::Unsupported(text.clone()))?;
//!         Ok(json!({"x": x.parse::<f64>().unwrap_or(0.0), "y": y.parse::<f64>().unwrap_or(0.0)}))
//!     }
//!     fn from_json(&self, v: &Value, _: &core::LiteralType, _: &TypeRegistry) -> Result<core::Literal, TransformError> {
//!         format!("{},{}", v["x"], v["y"]).to_literal()
//!     }
//! }
//!
//! let mut registry = TypeRegistry::default();
//! registry.register_tag("my.Point", Arc::new(PointAsText));
//! let point_type = core::LiteralType {
//!     structure: Some(core::TypeStructure { tag: "my.Point".into(), ..Default::default() }),
//!     ..String::literal_type()
//! };
//! let list_type = tern_type_transformers::types::list(point_type);
//! let lit = registry.from_json(&json!([{"x": 1.5, "y": 2.0}]), &list_type)?;
//! assert_eq!(registry.to_json(&lit, &list_type)?, json!([{"x": 1.5, "y": 2.0}]));
//! # Ok::<(), TransformError>(())
//! ```
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::scalar::Value as ScalarValue;

use crate::error::TransformError;
use crate::literals::{self, dataclass_title, describe, describe_type, is_dataclass_type, is_none_type};
use crate::msgpack_literal::{write_literal, write_str};
use crate::parse::literal_from_json;
use crate::render::literal_to_json;

/// Converts literals of one (custom) type to and from JSON. `registry` converts nested
/// values of other types.
#[allow(clippy::wrong_self_convention)]
pub trait LiteralConverter: Send + Sync {
    fn to_json(
        &self,
        literal: &core::Literal,
        ty: &core::LiteralType,
        registry: &TypeRegistry,
    ) -> Result<Value, TransformError>;
    fn from_json(
        &self,
        value: &Value,
        ty: &core::LiteralType,
        registry: &TypeRegistry,
    ) -> Result<core::Literal, TransformError>;
}

/// Built-in conversions plus registered custom converters.
#[derive(Default, Clone)]
pub struct TypeRegistry {
    by_tag: HashMap<String, Arc<dyn LiteralConverter>>,
    by_title: HashMap<String, Arc<dyn LiteralConverter>>,
    by_blob_format: HashMap<String, Arc<dyn LiteralConverter>>,
}

impl fmt::Debug for TypeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |m: &HashMap<String, Arc<dyn LiteralConverter>>| {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        };
        f.debug_struct("TypeRegistry")
            .field("tags", &keys(&self.by_tag))
            .field("dataclasses", &keys(&self.by_title))
            .field("blob_formats", &keys(&self.by_blob_format))
            .finish()
    }
}

impl TypeRegistry {
    /// Only the built-in conversions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `converter` for types whose `structure.tag` is `tag`.
    pub fn register_tag(&mut self, tag: &str, converter: Arc<dyn LiteralConverter>) -> &mut Self {
        self.by_tag.insert(tag.to_owned(), converter);
        self
    }

    /// Uses `converter` for dataclass types whose schema `title` is `title`.
    pub fn register_dataclass(&mut self, title: &str, converter: Arc<dyn LiteralConverter>) -> &mut Self {
        self.by_title.insert(title.to_owned(), converter);
        self
    }

    /// Uses `converter` for blob types of `format` (compared without case).
    pub fn register_blob_format(&mut self, format: &str, converter: Arc<dyn LiteralConverter>) -> &mut Self {
        self.by_blob_format.insert(format.to_ascii_lowercase(), converter);
        self
    }

    /// The custom converter for `ty`, if one is registered.
    pub fn converter_for(&self, ty: &core::LiteralType) -> Option<&Arc<dyn LiteralConverter>> {
        if let Some(tag) = ty.structure.as_ref().map(|s| s.tag.as_str()).filter(|t| !t.is_empty()) {
            if let Some(c) = self.by_tag.get(tag) {
                return Some(c);
            }
        }
        if let Some(c) = dataclass_title(ty).and_then(|t| self.by_title.get(t)) {
            return Some(c);
        }
        match ty.r#type.as_ref() {
            Some(LitType::Blob(b)) => self.by_blob_format.get(&b.format.to_ascii_lowercase()),
            _ => None,
        }
    }

    /// Whether anything inside `ty` needs more than [`crate::parse`] / [`crate::render`].
    fn needs_own_walk(&self, ty: &core::LiteralType) -> bool {
        if self.converter_for(ty).is_some() || is_dataclass_type(ty) || is_msgpack_dict(ty) {
            return true;
        }
        match ty.r#type.as_ref() {
            Some(LitType::CollectionType(inner) | LitType::MapValueType(inner)) => self.needs_own_walk(inner),
            Some(LitType::UnionType(u)) => u.variants.iter().any(|v| self.needs_own_walk(v)),
            _ => false,
        }
    }

    /// The JSON form of `literal`, a value of type `ty` (as flytekit renders it).
    pub fn to_json(&self, literal: &core::Literal, ty: &core::LiteralType) -> Result<Value, TransformError> {
        if let Some(c) = self.converter_for(ty) {
            return c.to_json(literal, ty, self);
        }
        match (ty.r#type.as_ref(), literal.value.as_ref()) {
            (Some(LitType::CollectionType(inner)), Some(LitValue::Collection(c))) => c
                .literals
                .iter()
                .enumerate()
                .map(|(i, l)| self.to_json(l, inner).map_err(|e| e.at_index(i)))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            (Some(LitType::MapValueType(inner)), Some(LitValue::Map(m))) => m
                .literals
                .iter()
                .map(|(k, l)| self.to_json(l, inner).map(|v| (k.clone(), v)).map_err(|e| e.at_key(k)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            (Some(LitType::CollectionType(_) | LitType::MapValueType(_)), Some(LitValue::Scalar(_))) => {
                // A list or map a dataclass attribute resolved to (msgpack): rendered as is.
                Ok(literal_to_json(literal))
            }
            (Some(LitType::CollectionType(_) | LitType::MapValueType(_)), _) => {
                Err(TransformError::wrong_kind(describe_type(ty), describe(literal)))
            }
            (Some(LitType::UnionType(u)), _) => {
                let (value, stored) = match literals::as_scalar(literal) {
                    Some(ScalarValue::Union(un)) => match un.value.as_deref() {
                        Some(v) => (v, un.r#type.as_ref()),
                        // A union without its value: rendered as is. Recursing with the same
                        // literal and its stored (union) type never ended (found by fuzzing).
                        None => return Ok(literal_to_json(literal)),
                    },
                    _ => (literal, None),
                };
                // The stored variant type carries the custom tag, if any.
                let variant = stored.or_else(|| u.variants.iter().find(|v| self.converter_for(v).is_some()));
                match variant {
                    Some(v) => self.to_json(value, v),
                    None => Ok(literal_to_json(value)),
                }
            }
            _ => Ok(literal_to_json(literal)),
        }
    }

    /// The literal of type `ty` for a JSON value (CLI input, YAML default, constant).
    #[allow(clippy::wrong_self_convention)]
    pub fn from_json(&self, value: &Value, ty: &core::LiteralType) -> Result<core::Literal, TransformError> {
        if let Some(c) = self.converter_for(ty) {
            return c.from_json(value, ty, self);
        }
        if !self.needs_own_walk(ty) {
            return Ok(literal_from_json(value, ty)?);
        }
        if is_dataclass_type(ty) {
            return self.dataclass_from_json(value, ty);
        }
        if is_msgpack_dict(ty) {
            return match value {
                Value::Object(_) => Ok(crate::msgpack::json_to_msgpack_literal(value)),
                other => Err(TransformError::wrong_kind(describe_type(ty), format!("JSON {other}"))),
            };
        }
        match (ty.r#type.as_ref(), value) {
            (Some(LitType::CollectionType(inner)), Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.from_json(v, inner).map_err(|e| e.at_index(i)))
                .collect::<Result<Vec<_>, _>>()
                .map(literals::collection),
            (Some(LitType::MapValueType(inner)), Value::Object(o)) => o
                .iter()
                .map(|(k, v)| self.from_json(v, inner).map(|l| (k.clone(), l)).map_err(|e| e.at_key(k)))
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(literals::map),
            (Some(LitType::UnionType(u)), _) => {
                let mut reasons = Vec::new();
                for variant in &u.variants {
                    if is_none_type(variant) != value.is_null() {
                        continue;
                    }
                    match self.from_json(value, variant) {
                        Ok(lit) => return Ok(literals::union_value(lit, variant.clone())),
                        Err(e) => reasons.push(format!("{}: {e}", describe_type(variant))),
                    }
                }
                Err(TransformError::NoUnionVariant {
                    expected: describe_type(ty),
                    found: format!("JSON {value}"),
                    reasons: reasons.join("; "),
                })
            }
            _ => Err(TransformError::wrong_kind(describe_type(ty), format!("JSON {value}"))),
        }
    }

    /// A JSON object as the msgpack literal of a dataclass, each field converted by its
    /// declared type (required fields first, in the schema's order; then the others).
    fn dataclass_from_json(&self, value: &Value, ty: &core::LiteralType) -> Result<core::Literal, TransformError> {
        let title = dataclass_title(ty).unwrap_or("dataclass");
        let Value::Object(obj) = value else {
            return Err(TransformError::wrong_kind(describe_type(ty), format!("JSON {value}")));
        };
        let fields = ty.structure.as_ref().map(|s| &s.dataclass_type);
        let Some(fields) = fields.filter(|f| !f.is_empty()) else {
            // Only a schema: the object as is (integers stay integers).
            return Ok(crate::msgpack::json_to_msgpack_literal(value));
        };
        let required = required_fields(ty);
        for name in &required {
            if !obj.contains_key(name) {
                return Err(TransformError::MissingField { struct_name: title.to_owned(), field: name.clone() });
            }
        }
        if let Some(unknown) = obj.keys().find(|k| !fields.contains_key(*k)) {
            return Err(TransformError::UnknownField {
                struct_name: title.to_owned(),
                field: unknown.clone(),
                known: fields.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        let mut order: Vec<&String> = required.iter().collect();
        order.extend(obj.keys().filter(|k| !required.contains(k)));
        let mut out = Vec::new();
        let _ = rmp::encode::write_map_len(&mut out, order.len() as u32);
        for name in order {
            let (Some(field_value), Some(field_type)) = (obj.get(name), fields.get(name)) else { continue };
            let literal = self.from_json(field_value, field_type).map_err(|e| e.at_field(name))?;
            write_str(&mut out, name)?;
            write_literal(&literal, &mut out).map_err(|e| e.at_field(name))?;
        }
        Ok(literals::msgpack_binary(out))
    }
}

/// The `required` list of a dataclass type's JSON schema.
fn required_fields(ty: &core::LiteralType) -> Vec<String> {
    use prost_types::value::Kind;
    let Some(Kind::ListValue(list)) =
        ty.metadata.as_ref().and_then(|m| m.fields.get("required")).and_then(|v| v.kind.as_ref())
    else {
        return Vec::new();
    };
    list.values
        .iter()
        .filter_map(|v| match v.kind.as_ref() {
            Some(Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// `STRUCT` annotated as msgpack-serialized: flytekit's `dict`.
fn is_msgpack_dict(ty: &core::LiteralType) -> bool {
    use prost_types::value::Kind;
    let is_struct = matches!(ty.r#type, Some(LitType::Simple(s)) if s == core::SimpleType::Struct as i32);
    let format = ty
        .annotation
        .as_ref()
        .and_then(|a| a.annotations.as_ref())
        .and_then(|a| a.fields.get(crate::dataclass::CACHE_KEY_METADATA))
        .and_then(|v| match v.kind.as_ref() {
            Some(Kind::StructValue(s)) => s.fields.get(crate::dataclass::SERIALIZATION_FORMAT),
            _ => None,
        })
        .and_then(|v| match v.kind.as_ref() {
            Some(Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        });
    is_struct && format == Some(crate::msgpack::MSGPACK_TAG)
}

#[cfg(test)]
mod union_without_value {
    use super::*;

    /// Found by the `literal` fuzz target: a union literal with no value whose stored type is
    /// a union made `to_json` call itself with the same arguments forever.
    #[test]
    fn a_union_without_its_value_is_rendered_not_recursed_into() {
        let ty = crate::types::union(vec![crate::types::simple(core::SimpleType::Integer)]);
        let literal = crate::literals::scalar(ScalarValue::Union(Box::new(core::Union {
            value: None,
            r#type: Some(ty.clone()),
        })));
        let json = TypeRegistry::new().to_json(&literal, &ty).unwrap();
        assert_eq!(json, literal_to_json(&literal));
    }
}
