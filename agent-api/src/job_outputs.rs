//! The task's declared outputs, kept with the job from CreateTask to GetTask, so the
//! dispatcher can check a finished job's outputs against them: GetTask carries no template,
//! and propeller deserves the same guarantee as `tern run` (whose engine has the template).
//!
//! They ride in the handle the caller stores. An agent's JSON-object handle `{…}` becomes
//! `{"tern_outputs":"<hex of a VariableMap>",…}`: the agent's own bytes follow unchanged and
//! are handed back to it byte for byte, so handles stay JSON (what callers and the
//! conformance kit expect). Only the shape of each type is kept (no descriptions, no
//! metadata such as dataclass schemas), which is all [`check_outputs`] reads, so the handle
//! stays small. Handles without the field (made before this, by a task declaring no
//! outputs, or not a JSON object) pass through unchanged and unchecked.
//!
//! [`check_outputs`]: crate::outputs::check_outputs
use prost::Message;

use crate::error::{codes, AgentError};
use crate::proto::flyteidl::core;
use core::literal_type::Type as LitType;

const FIELD: &[u8] = b"{\"tern_outputs\":\"";

/// The handle to give the caller: `meta` with the shape of `outputs` inside, when there is
/// anything to keep and `meta` is a JSON object.
pub fn seal(meta: Vec<u8>, outputs: Option<&core::VariableMap>) -> Vec<u8> {
    let Some(outputs) = outputs.filter(|o| !o.variables.is_empty()) else { return meta };
    if meta.first() != Some(&b'{') || meta.last() != Some(&b'}') {
        return meta;
    }
    let shapes = core::VariableMap {
        variables: outputs
            .variables
            .iter()
            .map(|(name, var)| {
                let ty = var.r#type.as_ref().map(shape_of);
                (name.clone(), core::Variable { r#type: ty, ..Default::default() })
            })
            .collect(),
    };
    let hex = hex::encode(shapes.encode_to_vec());
    let rest = &meta[1..];
    let mut out = Vec::with_capacity(FIELD.len() + hex.len() + meta.len() + 2);
    out.extend_from_slice(FIELD);
    out.extend_from_slice(hex.as_bytes());
    out.push(b'"');
    // `{}` has no field to follow ours.
    if rest.trim_ascii_start() != b"}" {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// The agent's own handle and the declared outputs kept in it, if any.
pub fn open(handle: Vec<u8>) -> Result<(Vec<u8>, Option<core::VariableMap>), AgentError> {
    if !handle.starts_with(FIELD) {
        return Ok((handle, None));
    }
    let bad = |why: &str| {
        AgentError::invalid_argument(
            codes::BAD_RESOURCE_META,
            format!("resource_meta has a damaged \"tern_outputs\" field ({why}); it must come from CreateTask"),
        )
    };
    let body = &handle[FIELD.len()..];
    let end = body.iter().position(|&b| b == b'"').ok_or_else(|| bad("unterminated"))?;
    let bytes = hex::decode(&body[..end]).map_err(|_| bad("not hex"))?;
    let outputs = core::VariableMap::decode(bytes.as_slice()).map_err(|_| bad("not a VariableMap"))?;
    let rest = &body[end + 1..];
    let mut meta = Vec::with_capacity(rest.len() + 1);
    meta.push(b'{');
    match rest.first() {
        Some(b',') => meta.extend_from_slice(&rest[1..]),
        _ if rest.trim_ascii_start().first() == Some(&b'}') => meta.extend_from_slice(rest),
        _ => return Err(bad("not followed by the agent's handle")),
    }
    Ok((meta, Some(outputs)))
}

/// A type with only what the shape check reads.
fn shape_of(ty: &core::LiteralType) -> core::LiteralType {
    let shape = ty.r#type.as_ref().map(|t| match t {
        LitType::CollectionType(inner) => LitType::CollectionType(Box::new(shape_of(inner))),
        LitType::MapValueType(inner) => LitType::MapValueType(Box::new(shape_of(inner))),
        LitType::UnionType(u) => {
            LitType::UnionType(core::UnionType { variants: u.variants.iter().map(shape_of).collect() })
        }
        LitType::StructuredDatasetType(_) => LitType::StructuredDatasetType(Default::default()),
        LitType::Schema(_) => LitType::Schema(Default::default()),
        other => other.clone(),
    });
    core::LiteralType { r#type: shape, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> core::VariableMap {
        let integer = core::LiteralType {
            r#type: Some(LitType::Simple(core::SimpleType::Integer as i32)),
            metadata: Some(Default::default()),
            ..Default::default()
        };
        let var =
            core::Variable { r#type: Some(integer), description: "a long description".into(), ..Default::default() };
        core::VariableMap { variables: [("n".to_owned(), var)].into() }
    }

    #[test]
    fn the_agents_handle_comes_back_byte_for_byte() {
        for meta in [&b"{\"job\":\"a\",\"v\":1}"[..], b"{}", b"{ }"] {
            let sealed = seal(meta.to_vec(), Some(&outputs()));
            assert!(serde_json::from_slice::<serde_json::Value>(&sealed).is_ok(), "still JSON");
            let (back, kept) = open(sealed).unwrap();
            assert_eq!(back, meta);
            let kept = kept.unwrap();
            assert_eq!(kept.variables["n"].description, "", "only the shape is kept");
            assert_eq!(kept.variables["n"].r#type.as_ref().unwrap().metadata, None);
        }
    }

    #[test]
    fn other_handles_pass_through_and_damaged_ones_are_refused() {
        for meta in [&b"\xff\x00"[..], b"[1]", b"", b"{\"job\":1}"] {
            assert_eq!(seal(meta.to_vec(), None), meta);
            assert_eq!(open(meta.to_vec()).unwrap(), (meta.to_vec(), None));
        }
        assert_eq!(seal(b"not json".to_vec(), Some(&outputs())), b"not json");
        for bad in [&b"{\"tern_outputs\":\"zz\",\"v\":1}"[..], b"{\"tern_outputs\":\"0a", b"{\"tern_outputs\":\"\"x"] {
            let err = open(bad.to_vec()).unwrap_err();
            assert_eq!(err.code, codes::BAD_RESOURCE_META, "{err}");
        }
    }
}
