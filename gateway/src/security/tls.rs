//! Server TLS with rustls: a certificate and key, and optionally a client CA for mTLS.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tern_agent_api::secrets::{SecretProvider, SecretRef};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::error::GatewayError;

/// Whether clients must present a certificate signed by `client_ca`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Required,
    Optional,
}

/// `[server.tls]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// The PEM private key: a secret reference (`file:/etc/tern/tls.key`).
    pub key: SecretRef,
    /// PEM CA that client certificates must chain to (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: `required` (default) or `optional`.
    #[serde(default)]
    pub client_auth: ClientAuth,
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|e| GatewayError::Tls(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Checks that `pem` holds at least one PEM block of `label` (e.g. `CERTIFICATE`).
fn expect_pem(what: &str, path: &Path, pem: &[u8], label: &str) -> Result<(), GatewayError> {
    let text = String::from_utf8_lossy(pem);
    if text.contains(&format!("-----BEGIN {label}")) {
        Ok(())
    } else {
        Err(GatewayError::Tls(format!("the {what} {} is not a PEM {label}", path.display())))
    }
}

impl TlsConfig {
    /// Reads the files (and the key through `secrets`) and builds rustls' server config.
    pub fn server_config(&self, secrets: &dyn SecretProvider) -> Result<ServerTlsConfig, GatewayError> {
        let cert = read("certificate", &self.cert)?;
        expect_pem("certificate", &self.cert, &cert, "CERTIFICATE")?;
        let key = secrets
            .resolve(&self.key)
            .map_err(|e| GatewayError::Tls(format!("cannot read the private key {}: {}", self.key, e.message)))?;
        if !key.expose().contains("PRIVATE KEY-----") {
            return Err(GatewayError::Tls(format!("the private key {} is not a PEM private key", self.key)));
        }
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key.expose()));
        if let Some(ca_path) = &self.client_ca {
            let ca = read("client CA", ca_path)?;
            expect_pem("client CA", ca_path, &ca, "CERTIFICATE")?;
            config = config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(self.client_auth == ClientAuth::Optional);
        }
        Ok(config)
    }
}
