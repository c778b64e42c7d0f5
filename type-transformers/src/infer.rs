//! The `LiteralType` of a literal, inferred from the literal alone — the rules of
//! flytepropeller's `validators.LiteralTypeForLiteral`, which Flyte uses for the
//! `inferred_type` of literals it offloads:
//!
//! - a primitive: its simple type; `none`: NONE; an error: ERROR; a Generic Struct: STRUCT;
//! - a binary: STRUCT when tagged `msgpack` (dict / dataclass), BINARY otherwise;
//! - a blob / structured dataset / schema: the type in its metadata;
//! - a union value: a union whose only variant is the stored type;
//! - a collection / map: of the distinct element types — none at all is NONE, one is that
//!   type, several are a union of them (sorted; unions of collections flattened);
//!   empty collections count only when nothing else is there;
//! - an offloaded literal: its `inferred_type`.
//!
//! A literal with no value infers as a `LiteralType` with no type.
use prost::Message;
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::core::SimpleType as S;

use crate::msgpack::MSGPACK_TAG;
use crate::types::simple;

/// The type flytepropeller infers for `literal`.
pub fn infer_type(literal: &core::Literal) -> core::LiteralType {
    match literal.value.as_ref() {
        Some(LitValue::Scalar(s)) => s.value.as_ref().map(scalar_type).unwrap_or_default(),
        Some(LitValue::Collection(c)) => crate::types::list(common_type(c.literals.iter())),
        Some(LitValue::Map(m)) => crate::types::map(common_type(m.literals.values())),
        Some(LitValue::OffloadedMetadata(o)) => o.inferred_type.clone().unwrap_or_default(),
        None => core::LiteralType::default(),
    }
}

fn of(t: LitType) -> core::LiteralType {
    core::LiteralType { r#type: Some(t), ..Default::default() }
}

fn scalar_type(value: &ScalarValue) -> core::LiteralType {
    match value {
        ScalarValue::Primitive(p) => simple(match p.value.as_ref() {
            Some(Prim::Integer(_)) => S::Integer,
            Some(Prim::FloatValue(_)) => S::Float,
            Some(Prim::StringValue(_)) => S::String,
            Some(Prim::Boolean(_)) => S::Boolean,
            Some(Prim::Datetime(_)) => S::Datetime,
            Some(Prim::Duration(_)) => S::Duration,
            None => S::None,
        }),
        ScalarValue::Blob(b) => match b.metadata.as_ref().and_then(|m| m.r#type.clone()) {
            Some(t) => of(LitType::Blob(t)),
            None => core::LiteralType::default(),
        },
        ScalarValue::Binary(b) if b.tag == MSGPACK_TAG => simple(S::Struct),
        ScalarValue::Binary(_) => simple(S::Binary),
        ScalarValue::Schema(s) => of(LitType::Schema(s.r#type.clone().unwrap_or_default())),
        ScalarValue::StructuredDataset(sd) => of(LitType::StructuredDatasetType(
            sd.metadata.as_ref().and_then(|m| m.structured_dataset_type.clone()).unwrap_or_default(),
        )),
        ScalarValue::NoneType(_) => simple(S::None),
        ScalarValue::Error(_) => simple(S::Error),
        ScalarValue::Generic(_) => simple(S::Struct),
        ScalarValue::Union(u) => {
            of(LitType::UnionType(core::UnionType { variants: vec![u.r#type.clone().unwrap_or_default()] }))
        }
    }
}

fn common_type<'a>(literals: impl Iterator<Item = &'a core::Literal>) -> core::LiteralType {
    let mut distinct: Vec<core::LiteralType> = Vec::new();
    let mut empty_collection = None;
    for literal in literals {
        let ty = infer_type(literal);
        if matches!(&literal.value, Some(LitValue::Collection(c)) if c.literals.is_empty()) {
            empty_collection = Some(ty);
            continue;
        }
        if !distinct.contains(&ty) {
            distinct.push(ty);
        }
    }
    if distinct.is_empty() {
        if let Some(ty) = empty_collection {
            distinct.push(ty);
        }
    }
    match distinct.len() {
        0 => simple(S::None),
        1 => distinct.remove(0),
        _ => {
            // Sorted for a stable result (propeller sorts by the types' text form; we sort by
            // their encoding, so the order of several variants may differ from propeller's).
            distinct.sort_by_cached_key(|t| t.encode_to_vec());
            multi_type_union(distinct)
        }
    }
}

fn multi_type_union(types: Vec<core::LiteralType>) -> core::LiteralType {
    let mut variants = Vec::new();
    let mut nested = false;
    for t in types {
        match t.r#type {
            Some(LitType::CollectionType(inner)) if matches!(inner.r#type, Some(LitType::UnionType(_))) => {
                nested = true;
                if let Some(LitType::UnionType(u)) = inner.r#type {
                    variants.extend(u.variants);
                }
            }
            _ => variants.push(t),
        }
    }
    let union = of(LitType::UnionType(core::UnionType { variants }));
    if nested {
        crate::types::list(union)
    } else {
        union
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::literals::{collection, map, msgpack_binary, none, primitive};
    use crate::types::parse_type_expr;

    fn ty(t: &str) -> core::LiteralType {
        parse_type_expr(t).unwrap()
    }

    #[test]
    fn infers_like_flytepropeller() {
        assert_eq!(infer_type(&primitive(Prim::Integer(1))), ty("integer"));
        assert_eq!(infer_type(&msgpack_binary(vec![0x80])), ty("struct"));
        let ints = collection(vec![primitive(Prim::Integer(1)), primitive(Prim::Integer(2))]);
        assert_eq!(infer_type(&ints), ty("list<integer>"));
        assert_eq!(infer_type(&collection(vec![])), ty("list<none>"));
        let m = map([("a".to_owned(), ints.clone()), ("b".to_owned(), collection(vec![]))].into_iter().collect());
        assert_eq!(infer_type(&m), ty("map<list<integer>>"));
        let mixed = collection(vec![primitive(Prim::Integer(1)), none()]);
        let LitType::CollectionType(inner) = infer_type(&mixed).r#type.unwrap() else { panic!() };
        let Some(LitType::UnionType(u)) = inner.r#type else { panic!() };
        assert_eq!(u.variants.len(), 2);
        assert_eq!(infer_type(&core::Literal::default()), core::LiteralType::default());
    }
}
