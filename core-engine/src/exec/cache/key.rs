//! What is cacheable, and the cache key.
//!
//! A task is cacheable when its template's `metadata.discoverable` is set (flytekit's
//! `cache=True`, the workflow YAML's `task.cache`). Its key is the hex SHA-256 of, in order
//! and each length-prefixed:
//!
//! 1. a format tag (`tern-cache/1`), so a change of this recipe never reads old entries;
//! 2. the task identity: the template id's resource type, project, domain and name — not its
//!    version, which changes with every edit of the definition (Flyte keys its catalog the same
//!    way: a cached result survives re-registration until `cache_version` changes);
//! 3. `metadata.discovery_version` (the cache version);
//! 4. the interface signature: SHA-256 of each input and output's name and `LiteralType`, in
//!    name order (descriptions left out), so a changed signature never reads outputs of the
//!    wrong shape;
//! 5. the inputs: SHA-256 of the input `LiteralMap` without `cache_ignore_input_vars`, each
//!    literal canonicalized as Flyte does before hashing: a literal carrying a `hash` (flytekit
//!    sets one for hashable and offloaded values) stands for that hash alone, recursively
//!    through collections and maps.
//!
//! The encoding is stable: every protobuf map here is a `BTreeMap`, so prost writes map
//! entries in key order and equal messages encode to the same bytes whatever order the
//! entries arrived in.
use prost::Message;
use sha2::{Digest, Sha256};
use tern_agent_api::core;
use tern_agent_api::core::literal::Value;

/// A cacheable task's cache settings, from its template metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachePolicy {
    /// `discovery_version`.
    pub version: String,
    /// `cache_serializable`: one runner per key, the others wait for its result.
    pub serialize: bool,
    /// `cache_ignore_input_vars`: inputs left out of the key.
    pub ignored_inputs: Vec<String>,
}

impl CachePolicy {
    /// The policy of a cacheable template; `None` when the template is not cacheable.
    pub fn of(template: &core::TaskTemplate) -> Option<Self> {
        let m = template.metadata.as_ref().filter(|m| m.discoverable)?;
        Some(Self {
            version: m.discovery_version.clone(),
            serialize: m.cache_serializable,
            ignored_inputs: m.cache_ignore_input_vars.clone(),
        })
    }
}

/// A cacheable node's key and what it is made of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheKey {
    /// The key: 64 hex digits.
    pub key: String,
    pub task_project: String,
    pub task_domain: String,
    pub task_name: String,
    pub policy: CachePolicy,
}

const FORMAT: &[u8] = b"tern-cache/1";

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

impl CacheKey {
    /// The key of running `template` on `inputs`; `None` when the template is not cacheable.
    pub fn compute(template: &core::TaskTemplate, inputs: &core::LiteralMap) -> Option<Self> {
        let policy = CachePolicy::of(template)?;
        let id = template.id.clone().unwrap_or_default();
        let mut h = Sha256::new();
        field(&mut h, FORMAT);
        field(&mut h, &id.resource_type.to_be_bytes());
        field(&mut h, id.project.as_bytes());
        field(&mut h, id.domain.as_bytes());
        field(&mut h, id.name.as_bytes());
        field(&mut h, policy.version.as_bytes());
        field(&mut h, &interface_hash(template.interface.as_ref()));
        field(&mut h, &inputs_hash(inputs, &policy.ignored_inputs));
        Some(Self {
            key: hex::encode(h.finalize()),
            task_project: id.project,
            task_domain: id.domain,
            task_name: id.name,
            policy,
        })
    }
}

fn interface_hash(interface: Option<&core::TypedInterface>) -> Vec<u8> {
    let mut h = Sha256::new();
    for (side, vars) in [
        (b"inputs".as_slice(), interface.and_then(|i| i.inputs.as_ref())),
        (b"outputs".as_slice(), interface.and_then(|i| i.outputs.as_ref())),
    ] {
        field(&mut h, side);
        for (name, var) in vars.map(|v| &v.variables).into_iter().flatten() {
            field(&mut h, name.as_bytes());
            field(&mut h, &var.r#type.as_ref().map(Message::encode_to_vec).unwrap_or_default());
        }
    }
    h.finalize().to_vec()
}

/// Hash of the inputs minus the ignored ones, literals canonicalized.
pub(crate) fn inputs_hash(inputs: &core::LiteralMap, ignored: &[String]) -> Vec<u8> {
    let kept = core::LiteralMap {
        literals: inputs
            .literals
            .iter()
            .filter(|(name, _)| !ignored.contains(name))
            .map(|(name, l)| (name.clone(), canonical(l)))
            .collect(),
    };
    Sha256::digest(kept.encode_to_vec()).to_vec()
}

/// A literal with a `hash` is that hash; collections and maps are canonicalized element-wise.
fn canonical(l: &core::Literal) -> core::Literal {
    if !l.hash.is_empty() {
        return core::Literal { hash: l.hash.clone(), ..Default::default() };
    }
    let value = match &l.value {
        Some(Value::Collection(c)) => {
            Some(Value::Collection(core::LiteralCollection { literals: c.literals.iter().map(canonical).collect() }))
        }
        Some(Value::Map(m)) => Some(Value::Map(core::LiteralMap {
            literals: m.literals.iter().map(|(k, v)| (k.clone(), canonical(v))).collect(),
        })),
        other => other.clone(),
    };
    core::Literal { value, ..l.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::LiteralMapBuilder;

    fn template(version: &str, ignored: &[&str]) -> core::TaskTemplate {
        core::TaskTemplate {
            id: Some(core::Identifier {
                resource_type: core::ResourceType::Task as i32,
                project: "p".into(),
                domain: "d".into(),
                name: "wf.n".into(),
                version: "abc".into(),
                org: String::new(),
            }),
            metadata: Some(core::TaskMetadata {
                discoverable: true,
                discovery_version: version.into(),
                cache_ignore_input_vars: ignored.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn inputs(x: i64, y: i64) -> core::LiteralMap {
        LiteralMapBuilder::new().with("x", &x).unwrap().with("y", &y).unwrap().build()
    }

    fn key(t: &core::TaskTemplate, i: &core::LiteralMap) -> String {
        CacheKey::compute(t, i).expect("cacheable").key
    }

    #[test]
    fn the_key_follows_identity_version_and_inputs_but_not_the_definition_version() {
        let t = template("1", &["y"]);
        let k = key(&t, &inputs(1, 2));
        assert_eq!(k.len(), 64);
        assert_eq!(k, key(&t, &inputs(1, 3)), "an ignored input does not count");
        assert_ne!(k, key(&t, &inputs(2, 2)), "an input that counts");
        assert_ne!(k, key(&template("2", &["y"]), &inputs(1, 2)), "the cache version");
        let mut renamed = t.clone();
        renamed.id.as_mut().unwrap().name = "wf.m".into();
        assert_ne!(k, key(&renamed, &inputs(1, 2)), "the task name");
        let mut redefined = t.clone();
        redefined.id.as_mut().unwrap().version = "def".into();
        assert_eq!(k, key(&redefined, &inputs(1, 2)), "the definition's version hash does not count");
        let mut off = t;
        off.metadata.as_mut().unwrap().discoverable = false;
        assert!(CacheKey::compute(&off, &inputs(1, 2)).is_none());
    }

    #[test]
    fn a_literal_with_a_hash_is_keyed_by_it() {
        let t = template("1", &[]);
        let mut a = inputs(1, 2);
        let mut b = inputs(1, 99);
        for m in [&mut a, &mut b] {
            m.literals.get_mut("y").unwrap().hash = "h1".into();
        }
        assert_eq!(key(&t, &a), key(&t, &b));
        b.literals.get_mut("y").unwrap().hash = "h2".into();
        assert_ne!(key(&t, &a), key(&t, &b));
    }

    #[test]
    fn the_interface_signature_counts() {
        let t = template("1", &[]);
        let mut typed = t.clone();
        typed.interface = Some(core::TypedInterface {
            inputs: Some(core::VariableMap {
                variables: [(
                    "x".to_owned(),
                    core::Variable {
                        r#type: Some(tern_type_transformers::types::parse_type_expr("integer").unwrap()),
                        description: "documented".into(),
                        ..Default::default()
                    },
                )]
                .into(),
            }),
            outputs: None,
        });
        assert_ne!(key(&t, &inputs(1, 2)), key(&typed, &inputs(1, 2)));
        let mut described = typed.clone();
        described.interface.as_mut().unwrap().inputs.as_mut().unwrap().variables.get_mut("x").unwrap().description =
            "other words".into();
        assert_eq!(key(&typed, &inputs(1, 2)), key(&described, &inputs(1, 2)), "descriptions do not count");
    }
}
