//! Flyte literal types and values for Tern.
//!
//! - [`types`]: type expressions (`integer`, `list<string>`, `optional<dataframe>`, …) ⇄ `LiteralType`.
//! - [`parse`]: text (`tern run --input k=v`) and JSON/YAML values (defaults, constants) → `Literal`.
//! - [`compat`]: Flyte's assignability rules, used by the engine's compiler.
//! - [`render`]: literals → JSON the way flytekit renders them for humans.
//! - [`structs`]: `google.protobuf.Struct` ⇄ JSON.
//! - [`msgpack`]: JSON ⇄ the msgpack `Binary` literal flytekit writes for dicts and dataclasses.
//!
//! A later stage grows this into typed Rust ⇄ literal transformers byte-compatible with flytekit.
pub mod compat;
pub mod msgpack;
pub mod parse;
pub mod render;
pub mod structs;
pub mod types;
