//! Small builders and accessors for `Literal`s, and the one-line description of a literal
//! that error messages use (`integer 300`, `string "abc"`, `a collection of 3`).
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;

use crate::msgpack::MSGPACK_TAG;
use crate::types::type_expr;

/// A literal holding one scalar.
pub fn scalar(value: ScalarValue) -> core::Literal {
    core::Literal { value: Some(LitValue::Scalar(Box::new(core::Scalar { value: Some(value) }))), ..Default::default() }
}

/// A literal holding one primitive.
pub fn primitive(value: Prim) -> core::Literal {
    scalar(ScalarValue::Primitive(core::Primitive { value: Some(value) }))
}

/// The `none` literal (`Scalar.none_type`).
pub fn none() -> core::Literal {
    scalar(ScalarValue::NoneType(core::Void {}))
}

/// A msgpack `Binary` literal (`tag = "msgpack"`), as flytekit writes dataclasses and dicts.
pub fn msgpack_binary(bytes: Vec<u8>) -> core::Literal {
    scalar(ScalarValue::Binary(core::Binary { value: bytes, tag: MSGPACK_TAG.to_owned() }))
}

/// A union value: `Scalar.union{value, type}` where `type` is the chosen variant's type.
pub fn union_value(value: core::Literal, variant: core::LiteralType) -> core::Literal {
    scalar(ScalarValue::Union(Box::new(core::Union { value: Some(Box::new(value)), r#type: Some(variant) })))
}

pub fn collection(literals: Vec<core::Literal>) -> core::Literal {
    core::Literal { value: Some(LitValue::Collection(core::LiteralCollection { literals })), ..Default::default() }
}

pub fn map(literals: std::collections::BTreeMap<String, core::Literal>) -> core::Literal {
    core::Literal { value: Some(LitValue::Map(core::LiteralMap { literals })), ..Default::default() }
}

/// The scalar value of a literal, if it is a scalar.
pub fn as_scalar(literal: &core::Literal) -> Option<&ScalarValue> {
    match literal.value.as_ref() {
        Some(LitValue::Scalar(s)) => s.value.as_ref(),
        _ => None,
    }
}

/// The primitive value of a literal, if it is a primitive.
pub fn as_primitive(literal: &core::Literal) -> Option<&Prim> {
    match as_scalar(literal) {
        Some(ScalarValue::Primitive(p)) => p.value.as_ref(),
        _ => None,
    }
}

/// The payload of a msgpack `Binary` literal.
pub fn as_msgpack(literal: &core::Literal) -> Option<&[u8]> {
    match as_scalar(literal) {
        Some(ScalarValue::Binary(b)) if b.tag == MSGPACK_TAG => Some(&b.value),
        _ => None,
    }
}

/// Whether the literal is `none`.
pub fn is_none(literal: &core::Literal) -> bool {
    matches!(as_scalar(literal), Some(ScalarValue::NoneType(_)))
}

/// Whether `ty` is the `none` type.
pub fn is_none_type(ty: &core::LiteralType) -> bool {
    matches!(ty.r#type, Some(LitType::Simple(s)) if s == core::SimpleType::None as i32)
}

/// Whether `ty` is a dataclass type as flytekit writes it: `STRUCT` with a JSON schema in
/// `metadata` or the field types in `structure.dataclass_type`.
pub fn is_dataclass_type(ty: &core::LiteralType) -> bool {
    matches!(ty.r#type, Some(LitType::Simple(s)) if s == core::SimpleType::Struct as i32)
        && (ty.metadata.is_some() || ty.structure.as_ref().is_some_and(|s| !s.dataclass_type.is_empty()))
}

/// A type for messages: its type expression, or `struct Name` for a dataclass with a title.
pub fn describe_type(ty: &core::LiteralType) -> String {
    if let Some(title) = dataclass_title(ty) {
        return format!("struct {title}");
    }
    type_expr(ty)
}

/// The `title` of a dataclass type's JSON schema (its Python class name).
pub fn dataclass_title(ty: &core::LiteralType) -> Option<&str> {
    match ty.metadata.as_ref()?.fields.get("title")?.kind.as_ref()? {
        prost_types::value::Kind::StringValue(s) => Some(s),
        _ => None,
    }
}

/// `T`'s Rust name without module paths: `Vec<Option<i64>>`, `HashMap<String, Point>`.
pub fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (i, c) in full.char_indices() {
        if c == ':' {
            segment_start = i + 1;
            continue;
        }
        if !(c.is_alphanumeric() || c == '_') {
            out.push_str(&full[segment_start..i]);
            out.push(c);
            segment_start = i + c.len_utf8();
        }
    }
    out.push_str(&full[segment_start..]);
    out
}

fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

/// What a literal holds, in a few words with the value for scalars: `integer 300`,
/// `string "abc"`, `a msgpack binary (12 bytes)`, `a collection of 3 literals`.
pub fn describe(literal: &core::Literal) -> String {
    match literal.value.as_ref() {
        None => "an empty literal".into(),
        Some(LitValue::Collection(c)) => format!("a collection of {} literals", c.literals.len()),
        Some(LitValue::Map(m)) => format!("a map of {} literals", m.literals.len()),
        Some(LitValue::OffloadedMetadata(o)) => {
            format!("an offloaded literal at {} (load it first: offload::load)", o.uri)
        }
        Some(LitValue::Scalar(s)) => match s.value.as_ref() {
            None => "an empty scalar".into(),
            Some(ScalarValue::Primitive(p)) => match p.value.as_ref() {
                None => "an empty primitive".into(),
                Some(Prim::Integer(i)) => format!("integer {i}"),
                Some(Prim::FloatValue(f)) => format!("float {f}"),
                Some(Prim::StringValue(s)) => format!("string {}", shorten(s)),
                Some(Prim::Boolean(b)) => format!("boolean {b}"),
                Some(Prim::Datetime(t)) => format!("datetime {}", crate::render::python_isoformat(t)),
                Some(Prim::Duration(d)) => format!("duration {}s", crate::render::total_seconds(d)),
            },
            Some(ScalarValue::Blob(b)) => format!("a blob at {}", b.uri),
            Some(ScalarValue::Binary(b)) if b.tag == MSGPACK_TAG => {
                format!("a msgpack binary ({} bytes)", b.value.len())
            }
            Some(ScalarValue::Binary(b)) => format!("a binary tagged {:?} ({} bytes)", b.tag, b.value.len()),
            Some(ScalarValue::Schema(s)) => format!("a schema at {}", s.uri),
            Some(ScalarValue::NoneType(_)) => "none".into(),
            Some(ScalarValue::Error(e)) => format!("an error from node {:?}: {}", e.failed_node_id, e.message),
            Some(ScalarValue::Generic(_)) => "a generic struct".into(),
            Some(ScalarValue::StructuredDataset(d)) => format!("a structured dataset at {}", d.uri),
            Some(ScalarValue::Union(u)) => match u.value.as_deref() {
                Some(v) => format!("a union value holding {}", describe(v)),
                None => "an empty union value".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_kind_and_value() {
        assert_eq!(describe(&primitive(Prim::Integer(300))), "integer 300");
        assert_eq!(describe(&primitive(Prim::StringValue("x".repeat(50)))), format!("string {:?}…", "x".repeat(40)));
        assert_eq!(describe(&none()), "none");
        assert_eq!(describe(&msgpack_binary(vec![0x80])), "a msgpack binary (1 bytes)");
        assert_eq!(describe(&collection(vec![none(), none()])), "a collection of 2 literals");
        assert_eq!(
            describe(&union_value(none(), crate::types::simple(core::SimpleType::None))),
            "a union value holding none"
        );
        assert_eq!(describe(&core::Literal::default()), "an empty literal");
    }

    #[test]
    fn short_type_names() {
        assert_eq!(short_type_name::<Vec<Option<i64>>>(), "Vec<Option<i64>>");
        assert_eq!(short_type_name::<std::collections::HashMap<String, u8>>(), "HashMap<String, u8>");
    }
}
