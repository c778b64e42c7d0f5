//! Gateway start-up errors (each with a stable code, see docs/errors.md).
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("[TERN-G001] cannot read config {path}: {source}")]
    ConfigRead { path: PathBuf, source: std::io::Error },
    #[error("[TERN-G002] invalid config {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },
    #[error("[TERN-G003] unknown agent [agents.{name}] in {origin}; this build has: {available}")]
    UnknownAgent { name: String, origin: String, available: String },
    #[error("[TERN-G004] cannot register agent {name:?}: {message}")]
    Registration { name: String, message: String },
    #[error("[TERN-G005] cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("[TERN-G006] invalid listen address {addr:?}: {message}")]
    BadAddress { addr: String, message: String },
    #[error("[TERN-G007] gRPC server failed: {0}")]
    Transport(String),
    #[error("[TERN-G008] environment variable {var}: {message}")]
    EnvOverride { var: String, message: String },
    #[error(
        "[TERN-G009] agent {name:?} is configured but not enabled: {risk}. To serve it, set `enabled = true` in [agents.{name}]"
    )]
    NotEnabled { name: String, risk: String },
    #[error("[TERN-G010] TLS: {0}")]
    Tls(String),
    #[error("[TERN-G011] authentication: {0}")]
    Auth(String),
    #[error("[TERN-G012] routing: {0}")]
    Routing(String),
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginError),
}
