//! Literal offloading: a literal too large to travel inline is written to the data store
//! and replaced by `Literal{offloaded_metadata {uri, size_bytes, inferred_type}}`; readers
//! load it back transparently.
//!
//! What Flyte does, and this module does the same way:
//! - the stored object is the `Literal` protobuf itself (flytekit's entrypoint writes
//!   `Literal.SerializeToString()`; propeller `WriteProtobuf`);
//! - a literal is offloaded when its encoded size is **at least** the threshold (flytekit:
//!   `lit.ByteSize() >= min_offloaded_size`, default 10 MiB via `_F_L_MIN_SIZE_MB`);
//!   `size_bytes` is that encoded size;
//! - an output `name` of a task goes to `{output_prefix}/{name}_offloaded_metadata.pb`
//!   ([`offloaded_uri`], [`offload_map`]);
//! - the offloaded literal keeps the original's `hash`, or gets one computed from the
//!   content when it had none (flytekit and propeller each hash a JSON rendering with
//!   their own library, and do not agree with each other; ours is base64 of the SHA-256
//!   of the deterministic protobuf encoding: stable for equal values, which is what cache
//!   keys need);
//! - `inferred_type` is the declared type when the caller has one (flytekit uses the task
//!   interface's type), else [`crate::infer::infer_type`] (propeller's rule).
//!
//! Loading reads the object, checks its size against `size_bytes`, decodes it, and loads
//! any offloaded literal inside it too (in collections, maps and union values).
use std::future::Future;
use std::pin::Pin;

use base64::Engine as _;
use prost::Message;
use sha2::{Digest, Sha256};
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::datastore::{join_uri, DataStore};

use crate::error::TransformError;
use crate::infer::infer_type;

/// When to offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadPolicy {
    /// Literals whose encoded size is at least this many bytes are offloaded.
    pub min_bytes: u64,
}

impl OffloadPolicy {
    /// flytekit's default threshold (`_F_L_MIN_SIZE_MB` = 10).
    pub const DEFAULT_MIN_BYTES: u64 = 10 * 1024 * 1024;

    pub fn new(min_bytes: u64) -> Self {
        Self { min_bytes }
    }
}

impl Default for OffloadPolicy {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MIN_BYTES)
    }
}

/// Offloaded literals inside offloaded literals are followed at most this deep.
const MAX_DEPTH: usize = 32;

/// Where flytekit puts the offloaded output `name` of a task whose outputs go to `output_prefix`.
pub fn offloaded_uri(output_prefix: &str, name: &str) -> String {
    join_uri(output_prefix, &format!("{name}_offloaded_metadata.pb"))
}

/// Offloads `literal` to `uri` when it is large enough under `policy`, with the inferred
/// type [`infer_type`] gives; a smaller literal is returned unchanged.
pub async fn offload(
    literal: core::Literal,
    store: &dyn DataStore,
    uri: &str,
    policy: &OffloadPolicy,
) -> Result<core::Literal, TransformError> {
    offload_with_type(literal, None, store, uri, policy).await
}

/// [`offload`] with the declared type of the value (a task interface's type) as the
/// inferred type, as flytekit does; `None` infers it from the literal.
pub async fn offload_with_type(
    literal: core::Literal,
    declared: Option<&core::LiteralType>,
    store: &dyn DataStore,
    uri: &str,
    policy: &OffloadPolicy,
) -> Result<core::Literal, TransformError> {
    if matches!(literal.value, Some(LitValue::OffloadedMetadata(_))) {
        return Ok(literal);
    }
    let size = literal.encoded_len() as u64;
    if size < policy.min_bytes {
        return Ok(literal);
    }
    let bytes = literal.encode_to_vec();
    let hash = if literal.hash.is_empty() {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes))
    } else {
        literal.hash.clone()
    };
    let inferred_type = Some(declared.cloned().unwrap_or_else(|| infer_type(&literal)));
    store.write(uri, bytes.into()).await?;
    Ok(core::Literal {
        value: Some(LitValue::OffloadedMetadata(core::LiteralOffloadedMetadata {
            uri: uri.to_owned(),
            size_bytes: size,
            inferred_type,
        })),
        hash,
        metadata: literal.metadata,
    })
}

/// Offloads each large entry of a task's outputs to `{output_prefix}/{name}_offloaded_metadata.pb`.
/// `declared` (the task interface's outputs) gives the inferred types, when known.
pub async fn offload_map(
    map: core::LiteralMap,
    store: &dyn DataStore,
    output_prefix: &str,
    policy: &OffloadPolicy,
    declared: Option<&core::VariableMap>,
) -> Result<core::LiteralMap, TransformError> {
    let mut out = core::LiteralMap::default();
    for (name, literal) in map.literals {
        let ty = declared.and_then(|d| d.variables.get(&name)).and_then(|v| v.r#type.as_ref());
        let uri = offloaded_uri(output_prefix, &name);
        let literal = offload_with_type(literal, ty, store, &uri, policy).await.map_err(|e| e.at_field(&name))?;
        out.literals.insert(name, literal);
    }
    Ok(out)
}

/// `literal` with every offloaded literal in it (itself, or inside collections, maps and
/// union values) loaded from the store.
pub async fn load(literal: core::Literal, store: &dyn DataStore) -> Result<core::Literal, TransformError> {
    load_at(literal, store, 0).await
}

/// [`load`] for each entry of a map (task inputs).
pub async fn load_map(map: core::LiteralMap, store: &dyn DataStore) -> Result<core::LiteralMap, TransformError> {
    let mut out = core::LiteralMap::default();
    for (name, literal) in map.literals {
        let literal = load(literal, store).await.map_err(|e| e.at_field(&name))?;
        out.literals.insert(name, literal);
    }
    Ok(out)
}

/// Whether `literal` holds an offloaded literal anywhere (nothing to load otherwise).
pub fn contains_offloaded(literal: &core::Literal) -> bool {
    match literal.value.as_ref() {
        Some(LitValue::OffloadedMetadata(_)) => true,
        Some(LitValue::Collection(c)) => c.literals.iter().any(contains_offloaded),
        Some(LitValue::Map(m)) => m.literals.values().any(contains_offloaded),
        Some(LitValue::Scalar(s)) => match s.value.as_ref() {
            Some(ScalarValue::Union(u)) => u.value.as_deref().is_some_and(contains_offloaded),
            _ => false,
        },
        None => false,
    }
}

type LoadFuture<'a> = Pin<Box<dyn Future<Output = Result<core::Literal, TransformError>> + Send + 'a>>;

fn load_at(mut literal: core::Literal, store: &dyn DataStore, depth: usize) -> LoadFuture<'_> {
    Box::pin(async move {
        if !contains_offloaded(&literal) {
            return Ok(literal);
        }
        match literal.value.take() {
            Some(LitValue::OffloadedMetadata(meta)) => {
                if depth >= MAX_DEPTH {
                    return Err(TransformError::Offload {
                        uri: meta.uri,
                        reason: format!("offloaded literals nest deeper than {MAX_DEPTH} (a cycle?)"),
                    });
                }
                let stored = read_offloaded(&meta, store).await?;
                load_at(stored, store, depth + 1).await
            }
            Some(LitValue::Collection(mut c)) => {
                let mut items = Vec::with_capacity(c.literals.len());
                for (i, item) in std::mem::take(&mut c.literals).into_iter().enumerate() {
                    items.push(load_at(item, store, depth).await.map_err(|e| e.at_index(i))?);
                }
                literal.value = Some(LitValue::Collection(core::LiteralCollection { literals: items }));
                Ok(literal)
            }
            Some(LitValue::Map(m)) => {
                let mut out = core::LiteralMap::default();
                for (k, v) in m.literals {
                    let v = load_at(v, store, depth).await.map_err(|e| e.at_key(&k))?;
                    out.literals.insert(k, v);
                }
                literal.value = Some(LitValue::Map(out));
                Ok(literal)
            }
            Some(LitValue::Scalar(mut s)) => {
                if let Some(ScalarValue::Union(u)) = s.value.as_mut() {
                    if let Some(inner) = u.value.take() {
                        u.value = Some(Box::new(load_at(*inner, store, depth).await?));
                    }
                }
                literal.value = Some(LitValue::Scalar(s));
                Ok(literal)
            }
            None => Ok(literal),
        }
    })
}

async fn read_offloaded(
    meta: &core::LiteralOffloadedMetadata,
    store: &dyn DataStore,
) -> Result<core::Literal, TransformError> {
    if meta.uri.is_empty() {
        return Err(TransformError::Offload { uri: String::new(), reason: "the offloaded literal has no uri".into() });
    }
    let bytes = store.read(&meta.uri).await?;
    if meta.size_bytes != 0 && meta.size_bytes != bytes.len() as u64 {
        return Err(TransformError::Offload {
            uri: meta.uri.clone(),
            reason: format!(
                "the object is {} bytes but the literal says {} (truncated?)",
                bytes.len(),
                meta.size_bytes
            ),
        });
    }
    core::Literal::decode(bytes)
        .map_err(|e| TransformError::Offload { uri: meta.uri.clone(), reason: format!("not a Literal protobuf: {e}") })
}
