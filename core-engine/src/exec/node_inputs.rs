//! A node's inputs, held encoded while the node runs.
//!
//! A `LiteralMap` is a `BTreeMap`, whose first leaf reserves eleven ~280-byte slots: 3 KiB
//! for a node with one integer input, held for as long as its job runs. Encoded, the same
//! inputs are a few bytes; they are decoded only to build a request (once per create, or on
//! a retry) and to compute a cache key.
use bytes::Bytes;
use prost::Message;
use tern_agent_api::core;
use tern_agent_api::error::AgentError;

use crate::codes;

pub(crate) struct NodeInputs(Bytes);

impl NodeInputs {
    pub fn new(inputs: &core::LiteralMap) -> Self {
        Self(Bytes::from(inputs.encode_to_vec()))
    }

    /// The `LiteralMap` protobuf (what propeller writes as `inputs.pb`).
    pub fn encoded(&self) -> Bytes {
        self.0.clone()
    }

    pub fn decode(&self) -> Result<core::LiteralMap, AgentError> {
        core::LiteralMap::decode(self.0.clone()).map_err(|e| {
            AgentError::internal(codes::NODE_INTERNAL, format!("the node's inputs cannot be read back: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_read_back_equal() {
        let mut m = core::LiteralMap::default();
        m.literals.insert("x".into(), core::Literal::default());
        let held = NodeInputs::new(&m);
        assert_eq!(held.decode().unwrap(), m);
        assert_eq!(held.encoded(), Bytes::from(m.encode_to_vec()));
    }
}
