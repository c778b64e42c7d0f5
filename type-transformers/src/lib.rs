//! placeholder
pub mod compat;
pub mod parse;
pub mod types;
pub mod msgpack;
pub mod render;
