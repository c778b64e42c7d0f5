//! `Vec<T>` as a Flyte collection (Python `List[T]`), `HashMap<String, T>` and
//! `BTreeMap<String, T>` as a Flyte map (`Dict[str, T]`), `Box<T>` as `T`.
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;

use super::fallback;
use crate::error::TransformError;
use crate::literals;
use crate::transformer::FlyteType;
use crate::types;

impl<T: FlyteType> FlyteType for Vec<T> {
    fn literal_type() -> core::LiteralType {
        types::list(T::literal_type())
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        let items = self
            .iter()
            .enumerate()
            .map(|(i, v)| v.to_literal().map_err(|e| e.at_index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(literals::collection(items))
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        match literal.value.as_ref() {
            Some(LitValue::Collection(c)) => {
                c.literals.iter().enumerate().map(|(i, l)| T::from_literal(l).map_err(|e| e.at_index(i))).collect()
            }
            _ => fallback(literal),
        }
    }
}

fn entries_to_literal<'a, T: FlyteType + 'a>(
    entries: impl Iterator<Item = (&'a String, &'a T)>,
) -> Result<core::Literal, TransformError> {
    let literals = entries
        .map(|(k, v)| v.to_literal().map(|l| (k.clone(), l)).map_err(|e| e.at_key(k)))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(literals::map(literals))
}

fn entries_from_literal<T: FlyteType, C: FromIterator<(String, T)> + FlyteType>(
    literal: &core::Literal,
) -> Result<C, TransformError> {
    match literal.value.as_ref() {
        Some(LitValue::Map(m)) => m
            .literals
            .iter()
            .map(|(k, l)| T::from_literal(l).map(|v| (k.clone(), v)).map_err(|e| e.at_key(k)))
            .collect(),
        _ => fallback(literal),
    }
}

impl<T: FlyteType, H: BuildHasher + Default> FlyteType for HashMap<String, T, H> {
    fn literal_type() -> core::LiteralType {
        types::map(T::literal_type())
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        entries_to_literal(self.iter())
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        entries_from_literal::<T, Self>(literal)
    }
}

impl<T: FlyteType> FlyteType for BTreeMap<String, T> {
    fn literal_type() -> core::LiteralType {
        types::map(T::literal_type())
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        entries_to_literal(self.iter())
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        entries_from_literal::<T, Self>(literal)
    }
}

/// A boxed value is its value (Flyte types cannot be recursive, so neither can a boxed field).
impl<T: FlyteType> FlyteType for Box<T> {
    fn literal_type() -> core::LiteralType {
        T::literal_type()
    }
    fn to_literal(&self) -> Result<core::Literal, TransformError> {
        (**self).to_literal()
    }
    fn from_literal(literal: &core::Literal) -> Result<Self, TransformError> {
        T::from_literal(literal).map(Box::new)
    }
}
