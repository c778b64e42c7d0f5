//! `[plugins]`: agent libraries the gateway loads at start (`docs/plugins.md`).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Every shared library (`*.so`; `*.dylib` on macOS) in this directory is loaded at
    /// start, in name order. Unset: no plugins.
    pub dir: Option<PathBuf>,
    /// A library that cannot be loaded (not a Tern plugin, another ABI version, a name
    /// already taken): `"fail"` stops the start (default), `"skip"` leaves it out, says
    /// so at start-up and serves the rest.
    pub on_error: OnPluginError,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPluginError {
    #[default]
    Fail,
    Skip,
}
