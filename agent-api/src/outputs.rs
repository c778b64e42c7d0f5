//! Checks that outputs leaving an agent match the task's declared interface.
use crate::error::{codes, AgentError};
use crate::proto::flyteidl::core;
use core::literal::Value as LitValue;
use core::literal_type::Type as LitType;
use core::scalar::Value as ScalarValue;

/// Every declared output is present, nothing undeclared is returned, and each literal
/// has the shape its declared type calls for.
pub fn check_outputs(interface: Option<&core::TypedInterface>, outputs: &core::LiteralMap) -> Result<(), AgentError> {
    let declared = interface.and_then(|i| i.outputs.as_ref()).map(|v| &v.variables);
    let empty = Default::default();
    let declared = declared.unwrap_or(&empty);
    let mismatch = |m: String| AgentError::internal(codes::OUTPUT_MISMATCH, m);
    for name in outputs.literals.keys() {
        if !declared.contains_key(name) {
            let mut names: Vec<_> = declared.keys().cloned().collect();
            names.sort();
            return Err(mismatch(format!("output {name:?} is not declared by the task interface (declared: {names:?})")));
        }
    }
    let mut names: Vec<_> = declared.keys().collect();
    names.sort();
    for name in names {
        let var = &declared[name];
        let lit = outputs
            .literals
            .get(name)
            .ok_or_else(|| mismatch(format!("declared output {name:?} is missing")))?;
        if let Some(t) = var.r#type.as_ref() {
            if !literal_has_shape(lit, t) {
                return Err(mismatch(format!(
                    "output {name:?} does not match its declared type: expected {}, got {}",
                    describe_type(t),
                    describe_literal(lit)
                )));
            }
        }
    }
    Ok(())
}

/// A structural check; the full Flyte type rules live in type-transformers.
pub fn literal_has_shape(lit: &core::Literal, ty: &core::LiteralType) -> bool {
    let Some(t) = ty.r#type.as_ref() else { return true };
    let Some(v) = lit.value.as_ref() else { return false };
    if matches!(v, LitValue::OffloadedMetadata(_)) {
        return true;
    }
    match (t, v) {
        (LitType::Simple(s), LitValue::Scalar(sc)) => simple_matches(*s, sc.value.as_ref()),
        (LitType::CollectionType(inner), LitValue::Collection(c)) => {
            c.literals.iter().all(|l| literal_has_shape(l, inner))
        }
        (LitType::MapValueType(inner), LitValue::Map(m)) => m.literals.values().all(|l| literal_has_shape(l, inner)),
        (LitType::Blob(_), LitValue::Scalar(sc)) => matches!(sc.value, Some(ScalarValue::Blob(_))),
        (LitType::StructuredDatasetType(_), LitValue::Scalar(sc)) => {
            matches!(sc.value, Some(ScalarValue::StructuredDataset(_)))
        }
        (LitType::Schema(_), LitValue::Scalar(sc)) => matches!(sc.value, Some(ScalarValue::Schema(_))),
        (LitType::EnumType(e), LitValue::Scalar(sc)) => match &sc.value {
            Some(ScalarValue::Primitive(core::Primitive { value: Some(core::primitive::Value::StringValue(s)) })) => {
                e.values.contains(s)
            }
            _ => false,
        },
        (LitType::UnionType(u), LitValue::Scalar(sc)) => match &sc.value {
            Some(ScalarValue::Union(un)) => un.value.as_ref().is_some_and(|inner| {
                u.variants.iter().any(|variant| literal_has_shape(inner, variant))
            }),
            _ => u.variants.iter().any(|variant| literal_has_shape(lit, variant)),
        },
        _ => false,
    }
}

fn simple_matches(simple: i32, value: Option<&ScalarValue>) -> bool {
    use core::primitive::Value as P;
    use core::SimpleType as S;
    let Ok(simple) = S::try_from(simple) else { return false };
    match (simple, value) {
        (S::None, Some(ScalarValue::NoneType(_))) => true,
        (S::Struct, Some(ScalarValue::Generic(_) | ScalarValue::Binary(_))) => true,
        (S::Binary, Some(ScalarValue::Binary(_))) => true,
        (S::Error, Some(ScalarValue::Error(_))) => true,
        (s, Some(ScalarValue::Primitive(core::Primitive { value: Some(p) }))) => matches!(
            (s, p),
            (S::Integer, P::Integer(_))
                | (S::Float, P::FloatValue(_))
                | (S::String, P::StringValue(_))
                | (S::Boolean, P::Boolean(_))
                | (S::Datetime, P::Datetime(_))
                | (S::Duration, P::Duration(_))
        ),
        _ => false,
    }
}

/// Short human name of what a literal holds, in [`describe_type`]'s words, for messages.
pub fn describe_literal(lit: &core::Literal) -> String {
    use core::primitive::Value as P;
    match lit.value.as_ref() {
        None => "nothing".into(),
        Some(LitValue::OffloadedMetadata(_)) => "an offloaded literal".into(),
        Some(LitValue::Collection(c)) => match c.literals.first() {
            Some(first) => format!("list<{}>", describe_literal(first)),
            None => "an empty list".into(),
        },
        Some(LitValue::Map(m)) => match m.literals.values().next() {
            Some(first) => format!("map<{}>", describe_literal(first)),
            None => "an empty map".into(),
        },
        Some(LitValue::Scalar(sc)) => match sc.value.as_ref() {
            None => "an empty scalar".into(),
            Some(ScalarValue::Primitive(p)) => match p.value.as_ref() {
                None => "an empty primitive".into(),
                Some(P::Integer(_)) => "integer".into(),
                Some(P::FloatValue(_)) => "float".into(),
                Some(P::StringValue(_)) => "string".into(),
                Some(P::Boolean(_)) => "boolean".into(),
                Some(P::Datetime(_)) => "datetime".into(),
                Some(P::Duration(_)) => "duration".into(),
            },
            Some(ScalarValue::Blob(b)) => {
                let multipart = b.metadata.as_ref().and_then(|m| m.r#type.as_ref()).is_some_and(|t| {
                    t.dimensionality == core::blob_type::BlobDimensionality::Multipart as i32
                });
                if multipart { "directory" } else { "file" }.into()
            }
            Some(ScalarValue::Binary(_)) => "binary".into(),
            Some(ScalarValue::Schema(_)) => "schema".into(),
            Some(ScalarValue::NoneType(_)) => "none".into(),
            Some(ScalarValue::Error(_)) => "error".into(),
            Some(ScalarValue::Generic(_)) => "struct".into(),
            Some(ScalarValue::StructuredDataset(_)) => "dataframe".into(),
            Some(ScalarValue::Union(u)) => match u.value.as_deref() {
                Some(inner) => format!("union value {}", describe_literal(inner)),
                None => "an empty union value".into(),
            },
        },
    }
}

/// Short human name of a literal type, for messages.
pub fn describe_type(ty: &core::LiteralType) -> String {
    match ty.r#type.as_ref() {
        None => "unknown".into(),
        Some(LitType::Simple(s)) => core::SimpleType::try_from(*s)
            .map(|s| s.as_str_name().to_ascii_lowercase())
            .unwrap_or_else(|_| format!("simple({s})")),
        Some(LitType::CollectionType(t)) => format!("list<{}>", describe_type(t)),
        Some(LitType::MapValueType(t)) => format!("map<{}>", describe_type(t)),
        Some(LitType::Blob(b)) => {
            if b.dimensionality == core::blob_type::BlobDimensionality::Multipart as i32 {
                "directory".into()
            } else {
                "file".into()
            }
        }
        Some(LitType::StructuredDatasetType(_)) => "dataframe".into(),
        Some(LitType::Schema(_)) => "schema".into(),
        Some(LitType::EnumType(e)) => format!("enum{:?}", e.values),
        Some(LitType::UnionType(u)) => {
            format!("union<{}>", u.variants.iter().map(describe_type).collect::<Vec<_>>().join(", "))
        }
    }
}
