//! Versioned JSON `resource_meta`: the opaque handle an async agent returns from
//! `create` and receives back on `get`/`delete`.
//!
//! It is stored by the caller (FlytePropeller's CRD, Tern's SQLite), so it must stay
//! small and must never hold a secret: store a secret *reference* instead.
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{codes, AgentError};

/// Current encoding version, written as `"v"` in every handle.
pub const RESOURCE_META_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMeta(Vec<u8>);

impl ResourceMeta {
    /// Encodes `value` (which must serialize to a JSON object) as `{"v":1, ...}`.
    pub fn encode<T: Serialize>(value: &T) -> Result<Self, AgentError> {
        let mut json = serde_json::to_value(value)
            .map_err(|e| AgentError::internal(codes::INTERNAL, format!("cannot encode resource_meta: {e}")))?;
        let obj = json.as_object_mut().ok_or_else(|| {
            AgentError::internal(codes::INTERNAL, "resource_meta must serialize to a JSON object")
        })?;
        obj.insert("v".into(), RESOURCE_META_VERSION.into());
        Ok(Self(serde_json::to_vec(&json).unwrap_or_default()))
    }

    /// Decodes a handle produced by [`ResourceMeta::encode`]; anything else is the
    /// caller's mistake and yields `INVALID_ARGUMENT`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, AgentError> {
        let bad = |why: String| AgentError::invalid_argument(codes::BAD_RESOURCE_META, why);
        let json: serde_json::Value = serde_json::from_slice(&self.0)
            .map_err(|e| bad(format!("resource_meta is not JSON ({e}); it must come from this agent's CreateTask")))?;
        match json.get("v").and_then(|v| v.as_u64()) {
            Some(RESOURCE_META_VERSION) => {}
            Some(v) => return Err(bad(format!("resource_meta version {v} is not supported (expected {RESOURCE_META_VERSION})"))),
            None => return Err(bad("resource_meta has no version field \"v\"".into())),
        }
        serde_json::from_value(json).map_err(|e| bad(format!("resource_meta has unexpected fields: {e}")))
    }

    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Job {
        job_id: String,
    }

    #[test]
    fn encodes_version_and_round_trips() {
        let meta = ResourceMeta::encode(&Job { job_id: "j-1".into() }).unwrap();
        let text = std::str::from_utf8(meta.as_bytes()).unwrap();
        assert!(text.contains("\"v\":1"), "{text}");
        assert_eq!(meta.decode::<Job>().unwrap(), Job { job_id: "j-1".into() });
    }

    #[test]
    fn rejects_garbage_and_wrong_versions() {
        for bytes in [&b"\xff\x00"[..], b"{\"job_id\":\"x\"}", b"{\"v\":7,\"job_id\":\"x\"}", b"{\"v\":1}"] {
            let err = ResourceMeta::from_bytes(bytes.to_vec()).decode::<Job>().unwrap_err();
            assert_eq!(err.code, codes::BAD_RESOURCE_META);
            assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
        }
    }
}
