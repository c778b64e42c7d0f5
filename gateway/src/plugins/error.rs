//! Why a plugin library is refused (codes in `docs/errors.md`).
use std::path::PathBuf;

use tern_agent_api::plugin::abi::ABI_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("[TERN-G020] cannot read the plugin directory {}: {source}", dir.display())]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("[TERN-G021] cannot load plugin {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error(
        "[TERN-G022] {} is not a Tern plugin: it does not export the symbol `tern_plugin_declaration` \
         (build it with tern-agent-api's feature `plugin` and `tern_agent_api::export_agent!`): {message}",
        path.display()
    )]
    MissingSymbol { path: PathBuf, message: String },
    #[error(
        "[TERN-G023] plugin {} speaks plugin ABI version {found}; this gateway speaks version {expected}: \
         rebuild the plugin against a tern-agent-api of ABI version {expected}",
        path.display(),
        expected = ABI_VERSION
    )]
    AbiVersion { path: PathBuf, found: u32 },
    #[error("[TERN-G023] plugin {} has a malformed declaration: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("[TERN-G025] plugin {} declares agent {name:?}, which is already {other}; agent names must be unique", path.display())]
    Duplicate { path: PathBuf, name: String, other: String },
    #[error(
        "[TERN-G027] {} is writable by every user of this host (mode {mode:o}): anyone could make the gateway run \
         their code; remove the write permission for others (chmod o-w)",
        path.display()
    )]
    WorldWritable { path: PathBuf, mode: u32 },
}

impl PluginError {
    /// The library the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Dir { dir, .. } => dir,
            Self::Load { path, .. }
            | Self::MissingSymbol { path, .. }
            | Self::AbiVersion { path, .. }
            | Self::Malformed { path, .. }
            | Self::Duplicate { path, .. }
            | Self::WorldWritable { path, .. } => path,
        }
    }
}
