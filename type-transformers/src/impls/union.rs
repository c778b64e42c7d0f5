//! General unions: [`Union2`]…[`Union5`], enums over the variant types, written as
//! flytekit writes `Union[A, B, ...]`.
//!
//! - Type: `union_type {variants}`, each variant's `structure` replaced by
//!   `{tag: <flytekit transformer name>}` (`int`, `str`, `Typed List`,
//!   `Object-Dataclass-Transformer`, …): flytekit picks the variant of a value by that tag.
//! - Value: `scalar.union {value, type: the chosen (tagged) variant}`.
//! - Reading a union value: the variants whose tag matches the stored type's tag and whose
//!   type the stored type is assignable to are tried; exactly one must accept the value.
//!   A bare (non-union) literal is tried against every variant; again exactly one must
//!   accept it. More than one is [`TransformError::AmbiguousUnion`], as in flytekit.
//!
//! `()` is the `none` variant: `Union3<i64, String, ()>` is `Union[int, str, None]`.
use tern_agent_api::core;
use tern_agent_api::core::scalar::Value as ScalarValue;

use crate::compat::is_assignable;
use crate::error::TransformError;
use crate::literals::{as_scalar, describe, describe_type, union_value};
use crate::transformer::FlyteType;
use crate::types::{flytekit_tag, union};

/// `ty` as a union variant the way flytekit writes it: `structure` replaced by the tag of
/// the flytekit transformer for that type (a type with no flytekit transformer keeps its own).
pub fn flytekit_variant(mut ty: core::LiteralType) -> core::LiteralType {
    if let Some(tag) = flytekit_tag(&ty) {
        ty.structure = Some(core::TypeStructure { tag: tag.to_owned(), ..Default::default() });
    }
    ty
}

fn tag_of(ty: &core::LiteralType) -> Option<&str> {
    ty.structure.as_ref().map(|s| s.tag.as_str()).filter(|t| !t.is_empty())
}

/// One variant of a union being read: its (tagged) type and its decoder.
pub(crate) type Attempt<'a, U> = (core::LiteralType, &'a dyn Fn(&core::Literal) -> Result<U, TransformError>);

/// Decodes `literal` with the one variant that accepts it.
pub(crate) fn decode_union<U>(literal: &core::Literal, attempts: Vec<Attempt<'_, U>>) -> Result<U, TransformError> {
    let (value, stored) = match as_scalar(literal) {
        Some(ScalarValue::Union(u)) => match u.value.as_deref() {
            Some(v) => (v, u.r#type.as_ref()),
            None => return Err(TransformError::wrong_kind("a union value", describe(literal))),
        },
        _ => (literal, None),
    };
    let expected = describe_type(&union(attempts.iter().map(|(t, _)| t.clone()).collect()));
    let mut ok = Vec::new();
    let mut reasons = Vec::new();
    for (ty, decode) in &attempts {
        if let Some(stored) = stored {
            let tag_matches = match (tag_of(stored), tag_of(ty)) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
            if !tag_matches || !is_assignable(stored, ty) {
                continue;
            }
        }
        match decode(value) {
            Ok(v) => ok.push((describe_type(ty), v)),
            Err(e) => reasons.push(format!("{}: {e}", describe_type(ty))),
        }
    }
    match ok.len() {
        1 => Ok(ok.remove(0).1),
        0 => Err(TransformError::NoUnionVariant {
            expected,
            found: describe(value),
            reasons: if reasons.is_empty() {
                format!("the value is tagged {:?}", stored.and_then(tag_of).unwrap_or(""))
            } else {
                reasons.join("; ")
            },
        }),
        _ => Err(TransformError::AmbiguousUnion {
            expected,
            found: describe(value),
            variants: ok.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

macro_rules! union_type {
    ($(#[$doc:meta])* $name:ident { $($v:ident),+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name<$($v),+> {
            $($v($v)),+
        }

        impl<$($v: FlyteType),+> FlyteType for $name<$($v),+> {
            fn literal_type() -> core::LiteralType {
                union(vec![$(flytekit_variant($v::literal_type())),+])
            }
            fn to_literal(&self) -> Result<core::Literal, TransformError> {
                match self {
                    $(Self::$v(x) => Ok(union_value(x.to_literal()?, flytekit_variant($v::literal_type())))),+
                }
            }
            fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
                decode_union(literal, vec![
                    $((flytekit_variant($v::literal_type()),
                       (&|l: &core::Literal| $v::from_literal(l).map(Self::$v))
                         as &dyn Fn(&core::Literal) -> Result<Self, TransformError>)),+
                ])
            }
        }
    };
}

union_type!(
    /// `Union[A, B]`.
    Union2 { A, B }
);
union_type!(
    /// `Union[A, B, C]`.
    Union3 { A, B, C }
);
union_type!(
    /// `Union[A, B, C, D]`.
    Union4 { A, B, C, D }
);
union_type!(
    /// `Union[A, B, C, D, E]`.
    Union5 { A, B, C, D, E }
);
