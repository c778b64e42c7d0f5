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
    /// Encodes `value` (which must serialize to a JSON object) as `{...,"v":1}`: its fields,
    /// then the version (one pass, no intermediate `serde_json::Value`).
    pub fn encode<T: Serialize>(value: &T) -> Result<Self, AgentError> {
        let mut bytes = serde_json::to_vec(value)
            .map_err(|e| AgentError::internal(codes::INTERNAL, format!("cannot encode resource_meta: {e}")))?;
        if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
            return Err(AgentError::internal(codes::INTERNAL, "resource_meta must serialize to a JSON object"));
        }
        bytes.pop();
        if bytes.len() > 1 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(format!("\"v\":{RESOURCE_META_VERSION}}}").as_bytes());
        Ok(Self(bytes))
    }

    /// Decodes a handle produced by [`ResourceMeta::encode`]; anything else is the
    /// caller's mistake and yields `INVALID_ARGUMENT`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, AgentError> {
        /// Only the version; every other field is skipped without being built (this runs
        /// on every poll, so no intermediate `serde_json::Value`).
        #[derive(serde::Deserialize)]
        struct Version {
            v: Option<serde_json::Value>,
        }
        let bad = |why: String| AgentError::invalid_argument(codes::BAD_RESOURCE_META, why);
        if self.0.trim_ascii_start().first() != Some(&b'{') {
            return Err(bad(format!(
                "resource_meta is not a JSON object ({} bytes); it must come from this agent's CreateTask",
                self.0.len()
            )));
        }
        let version: Version = serde_json::from_slice(&self.0)
            .map_err(|e| bad(format!("resource_meta is not a JSON object ({e}); it must come from this agent's CreateTask")))?;
        match version.v.as_ref().map(|v| v.as_u64()) {
            Some(Some(RESOURCE_META_VERSION)) => {}
            Some(Some(v)) => return Err(bad(format!("resource_meta version {v} is not supported (expected {RESOURCE_META_VERSION})"))),
            Some(None) => return Err(bad("resource_meta's version field \"v\" is not a number".into())),
            None => return Err(bad("resource_meta has no version field \"v\"".into())),
        }
        serde_json::from_slice(&self.0).map_err(|e| bad(format!("resource_meta has unexpected fields: {e}")))
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
    fn empty_objects_and_non_objects() {
        #[derive(serde::Serialize)]
        struct Empty {}
        assert_eq!(ResourceMeta::encode(&Empty {}).unwrap().as_bytes(), b"{\"v\":1}");
        assert!(ResourceMeta::encode(&vec![1, 2]).is_err());
        assert!(ResourceMeta::encode(&"text").is_err());
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
