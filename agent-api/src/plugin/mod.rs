//! Agents as plugins: a `cdylib` built against this crate (feature `plugin`) that the
//! gateway loads at start (`[plugins] dir` in `tern.toml`). See `docs/plugins.md`.
//!
//! - [`abi`]: the C ABI — one exported symbol returning a versioned declaration, and
//!   `#[repr(C)]` function tables whose arguments are bytes.
//! - [`wire`]: what those bytes are — flyteidl's protobuf messages, a few small ones of our
//!   own, JSON for settings.
//! - [`reply`]: answering exactly once across the boundary (both sides use it).
//! - `export` (feature `plugin`): the plugin side, behind [`export_agent!`](crate::export_agent).
//!
//! The host side (loading, checks, forwarding agents, host services) lives in the gateway.
pub mod abi;
pub mod reply;
pub mod wire;

#[cfg(feature = "plugin")]
pub mod export;
#[cfg(feature = "plugin")]
pub mod host_link;
#[cfg(feature = "plugin")]
mod log;
