//! [`FlyteType`] for standard Rust types, one concern per file.
//!
//! Every `from_literal` here also reads a msgpack `Binary` literal holding the value (what
//! Flyte passes when a task input is bound to a dataclass attribute such as `dc.count`;
//! flytekit's transformers accept it too).
use tern_agent_api::core;

use crate::dataclass::in_payload;
use crate::error::TransformError;
use crate::literals::{as_msgpack, describe, describe_type, short_type_name};
use crate::msgpack_literal::{decode, msgpack_to_literal};
use crate::transformer::FlyteType;

mod bytes;
mod collections;
mod json;
mod option;
mod primitives;
mod time;
mod union;

pub use self::bytes::Bytes;
pub use json::JsonDict;
pub use union::{flytekit_variant, Union2, Union3, Union4, Union5};

/// Reads `literal` as `T` when it is a msgpack `Binary` literal; `None` for other literals.
pub(crate) fn from_msgpack_binary<T: FlyteType>(literal: &core::Literal) -> Option<Result<T, TransformError>> {
    let bytes = as_msgpack(literal)?;
    Some((|| {
        let value = decode(bytes, &short_type_name::<T>())?;
        let typed = msgpack_to_literal(&value, &T::literal_type()).map_err(in_payload::<T>)?;
        if as_msgpack(&typed).is_some() {
            // Only struct types stay msgpack; they read msgpack themselves, never through here.
            return Err(wrong_kind::<T>(literal));
        }
        T::from_literal(&typed)
    })())
}

/// `expected <type> (<Rust type>), found <literal>`.
pub(crate) fn wrong_kind<T: FlyteType>(literal: &core::Literal) -> TransformError {
    TransformError::wrong_kind(
        format!("{} ({})", describe_type(&T::literal_type()), short_type_name::<T>()),
        describe(literal),
    )
}

/// The fallback of every `from_literal`: the msgpack form, else a wrong-kind error.
pub(crate) fn fallback<T: FlyteType>(literal: &core::Literal) -> Result<T, TransformError> {
    from_msgpack_binary(literal).unwrap_or_else(|| Err(wrong_kind::<T>(literal)))
}
