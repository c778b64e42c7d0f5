//! `#[derive(FlyteType)]` for `tern-type-transformers` (use it through
//! `tern_type_transformers::FlyteType`, which re-exports it).
//!
//! - A struct with named fields becomes a flytekit dataclass: a msgpack `Binary` literal of
//!   its fields in declaration order, with the `LiteralType` flytekit writes (JSON schema
//!   metadata, `dataclass_type` structure). Every field type must implement `FlyteType`.
//! - A fieldless enum becomes a Python `Enum` of strings: `EnumType {values}`, literal
//!   `string_value`.
//!
//! Attributes (`#[flyte(...)]`):
//!
//! | where | attribute | effect |
//! |---|---|---|
//! | struct / enum | `name = "PyName"` | the schema `title` / name in messages (default: the Rust name) |
//! | struct / enum | `rename_all = "..."` | `lowercase`, `UPPERCASE`, `snake_case`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `camelCase`, `PascalCase` |
//! | struct | `deny_unknown_fields` | reading fails on a field the struct does not declare (default: ignored, as mashumaro does) |
//! | struct / enum | `crate = "path"` | where `tern_type_transformers` is (default `::tern_type_transformers`) |
//! | field / variant | `rename = "x"` | the field name / enum value on the wire |
//! | field | `default` | may be missing when reading (then `Default::default()`); not `required` in the schema |
//! | field | `default = "path::to::fn"` | the same, with the default from that function (Python `x: int = 3`) |
mod attrs;
mod case;
mod enums;
mod structs;

use proc_macro::TokenStream;
use syn::{parse_macro_input, Data, DeriveInput};

#[proc_macro_derive(FlyteType, attributes(flyte))]
pub fn derive_flyte_type(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let result = match &input.data {
        Data::Struct(data) => structs::expand(&input, data),
        Data::Enum(data) => enums::expand(&input, data),
        Data::Union(_) => Err(syn::Error::new_spanned(&input.ident, "FlyteType cannot be derived for unions")),
    };
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}
