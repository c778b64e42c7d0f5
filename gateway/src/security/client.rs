//! TLS and token material for outgoing connections (`tern run --gateway`, route groups).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tern_agent_api::grpc_client::{ClientOptions, ClientTimeouts, ClientTls};
use tern_agent_api::secrets::{SecretProvider, SecretRef};

use crate::error::GatewayError;

/// How this process connects to another agent server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// PEM CA to trust for `https://` endpoints, besides the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate, for servers that require mTLS.
    pub cert: Option<PathBuf>,
    /// Its private key (a secret reference).
    pub key: Option<SecretRef>,
    /// Bearer token sent on every call (a secret reference).
    pub token: Option<SecretRef>,
    /// Server name to verify instead of the endpoint's host.
    pub tls_domain: Option<String>,
}

impl ClientConfig {
    /// Reads the files and secrets into client options.
    pub fn options(&self, secrets: &dyn SecretProvider, timeouts: ClientTimeouts) -> Result<ClientOptions, GatewayError> {
        let read = |what: &str, p: &PathBuf| {
            std::fs::read(p).map_err(|e| GatewayError::Tls(format!("cannot read the {what} {}: {e}", p.display())))
        };
        let resolve = |what: &str, r: &SecretRef| {
            secrets.resolve(r).map_err(|e| GatewayError::Tls(format!("cannot read the {what} {r}: {}", e.message)))
        };
        let ca_pem = self.ca_cert.as_ref().map(|p| read("CA certificate", p)).transpose()?;
        let identity = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((read("client certificate", c)?, resolve("client key", k)?)),
            (None, None) => None,
            _ => return Err(GatewayError::Tls("a client certificate needs both `cert` and `key`".into())),
        };
        let token = self.token.as_ref().map(|t| resolve("token", t)).transpose()?;
        Ok(ClientOptions {
            timeouts,
            tls: ClientTls { ca_pem, identity, domain: self.tls_domain.clone() },
            token,
            max_message_bytes: None,
        })
    }
}
