//! Flyte literal types and values for Tern.
//!
//! - [`types`]: type expressions (`integer`, `list<string>`, `optional<dataframe>`, …) ⇄ `LiteralType`.
//! - [`parse`]: text (`tern run --input k=v`) and JSON/YAML values (defaults, constants) → `Literal`.
//! - [`compat`]: Flyte's assignability rules, used by the engine's compiler.
//! - [`render`]: literals → JSON the way flytekit renders them for humans.
//! - [`structs`]: `google.protobuf.Struct` ⇄ JSON.
//! - [`msgpack`]: JSON ⇄ the msgpack `Binary` literal flytekit writes for dicts and dataclasses.
//!
//! Typed Rust ⇄ literal conversion, byte-compatible with flytekit 1.16:
//! - [`transformer`]: the [`FlyteType`] trait (and `#[derive(FlyteType)]` for structs as
//!   dataclasses and fieldless enums), [`literal_map_get`], [`LiteralMapBuilder`].
//! - `impls`: `FlyteType` for bool, integers (range-checked), floats, `String`, [`Bytes`],
//!   `chrono` datetimes and durations, `Vec`, `HashMap`/`BTreeMap<String, _>`, `Option`,
//!   [`Union2`]…[`Union5`], `serde_json::Value` (Generic Struct) and [`JsonDict`] (flytekit `dict`).
//! - [`dataclass`], [`schema`], [`msgpack_literal`]: the dataclass form (msgpack map, JSON
//!   schema metadata, `dataclass_type` structure) the derive writes.
//! - [`registry`]: conversion by `LiteralType` at run time, with custom converters by tag.
//! - [`offload`], [`infer`]: literal offloading to a data store, and a literal's inferred type.
//! - [`pickle`]: a top-level Python `bytes` (flytekit pickles it to a `PythonPickle` blob).
//! - [`error`]: [`TransformError`] and its stable codes (TERN-T0xx).
pub mod compat;
pub mod msgpack;
pub mod parse;
pub mod render;
pub mod structs;
pub mod types;
// File/Directory blobs, data stores by URI scheme (local, S3) and DataFrames (Arrow ⇄ Parquet).
pub mod blob;
pub mod dataframe;
#[cfg(feature = "s3")]
pub mod s3;
pub mod store;
pub use blob::{FlyteDirectory, FlyteFile};
pub use dataframe::{read_parquet, write_parquet, StructuredDataset};
pub use store::{DataError, DataStores};
// Typed transformers: FlyteType, the derive's runtime, the registry and literal offloading.
extern crate self as tern_type_transformers;
pub mod dataclass;
pub mod error;
mod impls;
pub mod infer;
pub mod literals;
pub mod msgpack_literal;
pub mod offload;
pub mod pytime;
pub mod registry;
pub mod schema;
pub mod transformer;
#[doc(hidden)]
pub use tern_agent_api::core as __core;
pub use error::TransformError;
pub use impls::{Bytes, JsonDict, Union2, Union3, Union4, Union5};
pub use transformer::{literal_map_get, literal_map_insert, FlyteType, LiteralMapBuilder};
pub use impls::flytekit_variant;
pub mod pickle;
