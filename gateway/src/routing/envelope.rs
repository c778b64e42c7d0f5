//! Owner-tagged `resource_meta`: the gateway wraps the handle an agent returned in a
//! versioned envelope that records who owns the job (this gateway's own agents, or which
//! endpoint of which group) and for which project/domain it was created. GetTask and
//! DeleteTask then reach the owner from the handle alone, after a failover or a restart,
//! from any replica: the gateway keeps no state.
//!
//! `{"v":1,"owner":{"remote":{"group":"eu","endpoint":"https://…","region":"eu-west-1"}},
//!   "scope":{"project":"p","domain":"d"},"meta":{…the owner's handle…},"sig":"…"}`
//! The owner's handle is embedded as is when it is a JSON object (every Tern agent's is),
//! else base64-encoded as `"meta_b64"` (e.g. a flytekit connector's pickled handle).
//! (versioned JSON like every Tern handle; an agent's own handle never starts with
//! `{"v":1,"owner":` because agents' keys are written sorted, so `owner` would come first).
//!
//! With `[server] handle_key` set, the envelope carries an HMAC-SHA256 `sig`; an altered or
//! unsigned handle is refused, so a caller cannot point a handle at another project or
//! endpoint.
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tern_agent_api::prelude::*;

/// Envelopes start with this; anything else is a bare handle of a local agent.
const PREFIX: &[u8] = b"{\"v\":1,\"owner\":";

/// Who owns a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// This gateway's own (compiled-in or plugin) agents.
    Local,
    /// An endpoint of a group.
    Remote { group: String, endpoint: String, region: String },
}

impl Owner {
    pub fn describe(&self) -> String {
        match self {
            Self::Local => "this gateway".into(),
            Self::Remote { group, endpoint, region } => format!("{endpoint} (group {group:?}, region {region:?})"),
        }
    }
}

/// Project and domain the job was created for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The task execution (`project/domain/execution/node/attempt`), for logs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task: String,
}

impl Scope {
    pub fn project(&self) -> Option<&str> {
        (!self.project.is_empty()).then_some(self.project.as_str())
    }

    pub fn domain(&self) -> Option<&str> {
        (!self.domain.is_empty()).then_some(self.domain.as_str())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Wire<'a> {
    v: u32,
    owner: Owner,
    #[serde(default)]
    scope: Scope,
    /// The owner's handle when it is a JSON object, embedded as is.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    meta: Option<&'a serde_json::value::RawValue>,
    /// Otherwise, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sig: Option<String>,
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub owner: Owner,
    pub scope: Scope,
    /// The owner's own handle.
    pub meta: Vec<u8>,
}

/// Signs and checks envelopes (a no-op without a key).
#[derive(Clone, Default)]
pub struct Sealer {
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("signed", &self.key.is_some()).finish()
    }
}

fn bad(message: String) -> AgentError {
    AgentError::invalid_argument(codes::BAD_RESOURCE_META, message)
}

impl Sealer {
    pub fn new(key: Option<Secret>) -> Self {
        Self { key: key.map(|k| k.expose().as_bytes().to_vec()) }
    }

    fn mac(&self, owner: &Owner, scope: &Scope, meta: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        // Canonical: the JSON of owner and scope, then the encoded handle.
        mac.update(serde_json::to_string(owner).unwrap_or_default().as_bytes());
        mac.update(b"\n");
        mac.update(serde_json::to_string(scope).unwrap_or_default().as_bytes());
        mac.update(b"\n");
        mac.update(meta.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// Wraps `meta`.
    pub fn seal(&self, owner: Owner, scope: Scope, meta: &[u8]) -> Vec<u8> {
        let raw: Option<&serde_json::value::RawValue> = meta
            .starts_with(b"{")
            .then(|| serde_json::from_slice::<&serde_json::value::RawValue>(meta).ok())
            .flatten();
        let (meta, meta_b64, signed) = match raw {
            Some(raw) => (Some(raw), None, raw.get().to_owned()),
            None => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(meta);
                (None, Some(b64.clone()), b64)
            }
        };
        let sig = self.mac(&owner, &scope, &signed);
        serde_json::to_vec(&Wire { v: 1, owner, scope, meta, meta_b64, sig }).unwrap_or_default()
    }

    /// `Ok(None)` for a bare handle (not made by a Tern gateway's router).
    pub fn open(&self, bytes: &[u8]) -> Result<Option<Envelope>, AgentError> {
        if !bytes.starts_with(PREFIX) {
            return Ok(None);
        }
        let wire: Wire = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("resource_meta looks like a Tern gateway handle but is not one: {e}")))?;
        let signed = match (&wire.meta, &wire.meta_b64) {
            (Some(raw), None) => raw.get(),
            (None, Some(b64)) => b64.as_str(),
            _ => return Err(bad("resource_meta's envelope must hold exactly one of meta and meta_b64".into())),
        };
        if let Some(expected) = self.mac(&wire.owner, &wire.scope, signed) {
            let given = wire.sig.as_deref().unwrap_or_default();
            use subtle::ConstantTimeEq;
            if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
                return Err(AgentError::permission_denied(
                    crate::security::auth::codes::FORBIDDEN,
                    "resource_meta was not issued by this gateway or was altered (its signature does not match [server] handle_key)",
                ));
            }
        }
        let meta = match (wire.meta, &wire.meta_b64) {
            (Some(raw), _) => raw.get().as_bytes().to_vec(),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| bad(format!("resource_meta's inner handle is not base64: {e}")))?,
            (None, None) => Vec::new(),
        };
        Ok(Some(Envelope { owner: wire.owner, scope: wire.scope, meta }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> Owner {
        Owner::Remote { group: "eu".into(), endpoint: "http://a:1".into(), region: "eu-west-1".into() }
    }

    #[test]
    fn round_trips_and_leaves_bare_handles_alone() {
        let s = Sealer::default();
        let scope = Scope { project: "p".into(), domain: "d".into(), task: "p/d/e/n/0".into() };
        let bytes = s.seal(remote(), scope.clone(), b"{\"v\":1,\"job\":\"x\"}");
        assert!(bytes.starts_with(PREFIX));
        let env = s.open(&bytes).unwrap().unwrap();
        assert_eq!((env.owner, env.scope, env.meta), (remote(), scope, b"{\"v\":1,\"job\":\"x\"}".to_vec()));
        assert_eq!(s.open(b"{\"v\":1,\"job\":\"x\"}").unwrap(), None);
        assert_eq!(s.open(b"\xff\x00").unwrap(), None);
        // A handle that is not a JSON object travels as base64.
        let pickled = s.seal(Owner::Local, Scope::default(), b"\x80\x04\x95pickle");
        assert!(String::from_utf8_lossy(&pickled).contains("meta_b64"));
        assert_eq!(s.open(&pickled).unwrap().unwrap().meta, b"\x80\x04\x95pickle".to_vec());
        let json_but_not_object = s.seal(Owner::Local, Scope::default(), b"[1,2]");
        assert_eq!(s.open(&json_but_not_object).unwrap().unwrap().meta, b"[1,2]".to_vec());
        let e = s.open(b"{\"v\":1,\"owner\":7}").unwrap_err();
        assert_eq!(e.code, codes::BAD_RESOURCE_META);
    }

    #[test]
    fn signed_handles_refuse_alteration() {
        let s = Sealer::new(Some(Secret::new("k".repeat(32))));
        let bytes = s.seal(remote(), Scope { project: "p".into(), ..Default::default() }, b"m");
        assert!(s.open(&bytes).unwrap().is_some());
        let forged = String::from_utf8(bytes.clone()).unwrap().replace("\"project\":\"p\"", "\"project\":\"q\"");
        let e = s.open(forged.as_bytes()).unwrap_err();
        assert_eq!(e.grpc_code(), tonic::Code::PermissionDenied);
        let unsigned = Sealer::default().seal(remote(), Scope::default(), b"m");
        assert!(s.open(&unsigned).is_err(), "an unsigned handle is refused when a key is set");
    }
}
