//! Making the gateway safe to expose: TLS (optionally mutual), bearer-token authentication
//! with per-token limits, and the TLS and token material of outgoing connections.
pub mod auth;
pub mod client;
pub mod tls;

pub use auth::{Authenticator, Principal};
