//! `resource_meta` values no agent should accept (garbled), and well-formed ones naming a
//! job nobody created (unknown), derived from a real handle when there is one.
use serde_json::{Map, Value};

/// What a probe is, and so what answer it calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// Not a handle this agent can have produced: `INVALID_ARGUMENT`/`NOT_FOUND`.
    Garbled,
    /// A handle of the right shape for a job that does not exist: a clean error, or a
    /// terminal failure (a self-describing handle may report any defined phase); delete
    /// may also answer OK.
    Unknown,
}

#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub name: String,
    pub bytes: Vec<u8>,
    pub kind: ProbeKind,
}

fn probe(name: impl Into<String>, bytes: impl Into<Vec<u8>>, kind: ProbeKind) -> Probe {
    Probe { name: name.into(), bytes: bytes.into(), kind }
}

/// Deterministic noise (xorshift64*), so a failing probe is the same on every run.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Size of the "huge" probes: large, yet under gRPC's default 4 MiB message limit, so the
/// agent (not the transport) has to answer.
pub(crate) const HUGE: usize = 1 << 20;

/// Every probe: fixed garbage, and when `real` (a handle the agent returned) is a JSON
/// object, variations of it.
pub(crate) fn probes(real: Option<&[u8]>, unknown_token: &str) -> Vec<Probe> {
    use ProbeKind::Garbled;
    let mut out = vec![
        probe("empty", Vec::new(), Garbled),
        probe("256 random bytes", noise(256, 0x7e57_c0de_d00d_f00d), Garbled),
        probe("NUL and invalid UTF-8", b"\x00\xff\xfe{\"v\":1}".to_vec(), Garbled),
        probe("text, not JSON", b"not a resource_meta".to_vec(), Garbled),
        probe("JSON null", b"null".to_vec(), Garbled),
        probe("JSON number", b"42".to_vec(), Garbled),
        probe("JSON string", b"\"handle\"".to_vec(), Garbled),
        probe("JSON array", b"[1,2,3]".to_vec(), Garbled),
        probe("empty JSON object (no version)", b"{}".to_vec(), Garbled),
        probe("version 99 {\"v\":99}", b"{\"v\":99}".to_vec(), Garbled),
        probe("version as text {\"v\":\"1\"}", b"{\"v\":\"1\"}".to_vec(), Garbled),
        probe("version 1, wrong fields", b"{\"v\":1,\"tern_conformance\":[true,null]}".to_vec(), Garbled),
        probe("JSON nested 100000 deep", "[".repeat(100_000).into_bytes(), Garbled),
        probe(format!("huge JSON text ({HUGE} bytes)"), huge_json_text(), Garbled),
        probe(format!("huge random bytes ({HUGE} bytes)"), noise(HUGE, 0xdead_beef_cafe_f00d), Garbled),
    ];
    let Some(real) = real else { return out };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(real) else { return out };
    let mut truncated = real.to_vec();
    truncated.truncate(real.len() / 2);
    out.push(probe("the real handle cut in half", truncated, Garbled));
    if obj.contains_key("v") {
        let mut v99 = obj.clone();
        v99.insert("v".into(), Value::from(99));
        out.push(probe("the real handle with version 99", to_vec(v99), Garbled));
        let mut none = obj.clone();
        none.remove("v");
        out.push(probe("the real handle without its version", to_vec(none), Garbled));
    }
    let fields: Vec<&String> = obj.keys().filter(|k| k.as_str() != "v").collect();
    if !fields.is_empty() {
        let mut swapped = obj.clone();
        for k in &fields {
            if let Some(v) = swapped.get_mut(k.as_str()) {
                *v = other_type(v);
            }
        }
        out.push(probe("the real handle with every field of another JSON type", to_vec(swapped), Garbled));
        let mut counter = 0;
        let mut unknown = Map::new();
        for (k, v) in &obj {
            let value = if k == "v" { v.clone() } else { changed(v, unknown_token, &mut counter) };
            unknown.insert(k.clone(), value);
        }
        out.push(probe("a well-formed handle of a job nobody created (every field of the real one changed)", to_vec(unknown), ProbeKind::Unknown));
    }
    out
}

fn to_vec(obj: Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
}

fn huge_json_text() -> Vec<u8> {
    let mut v = Vec::with_capacity(HUGE + 2);
    v.push(b'"');
    v.resize(HUGE + 1, b'a');
    v.push(b'"');
    v
}

/// A value of another JSON type, so decoding the field fails.
fn other_type(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::from(12345),
        Value::Number(_) | Value::Bool(_) => Value::from("not-a-number"),
        Value::Object(_) => Value::Array(vec![Value::from(1)]),
        Value::Array(_) => Value::Object(Map::new()),
        Value::Null => Value::from(12345),
    }
}

/// The same shape with every value different: strings get `token` (keeping a path's
/// directories, so a URI stays a URI of the same store), numbers are moved by one,
/// booleans flipped.
fn changed(v: &Value, token: &str, counter: &mut u32) -> Value {
    match v {
        Value::String(s) => {
            *counter += 1;
            let fresh = format!("{token}{counter}");
            Value::String(match s.rfind('/') {
                Some(i) if i + 1 < s.len() => format!("{}{fresh}", &s[..=i]),
                _ => fresh,
            })
        }
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u.wrapping_add(1))
            } else if let Some(i) = n.as_i64() {
                Value::from(i.wrapping_add(1))
            } else {
                Value::from(n.as_f64().unwrap_or(0.0) + 1.0)
            }
        }
        Value::Bool(b) => Value::Bool(!b),
        Value::Array(items) => Value::Array(items.iter().map(|i| changed(i, token, counter)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), changed(v, token, counter))).collect()),
        Value::Null => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_probes_keep_the_version_and_change_every_value() {
        let real = br#"{"v":1,"job":"abc","output_prefix":"s3://b/runs/n0/0","n":5,"ok":true}"#;
        let all = probes(Some(real), "unknown-");
        let unknown = all.iter().find(|p| p.kind == ProbeKind::Unknown).unwrap();
        let v: Value = serde_json::from_slice(&unknown.bytes).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["job"], "unknown-1");
        assert_eq!(v["output_prefix"], "s3://b/runs/n0/unknown-2");
        assert_eq!((v["n"].as_u64(), v["ok"].as_bool()), (Some(6), Some(false)));
        let swapped = all.iter().find(|p| p.name.contains("another JSON type")).unwrap();
        let v: Value = serde_json::from_slice(&swapped.bytes).unwrap();
        assert_eq!((v["v"].as_u64(), v["job"].as_u64()), (Some(1), Some(12345)));
        assert!(all.iter().any(|p| p.name.contains("version 99") && p.bytes.starts_with(b"{")));
        assert!(all.iter().all(|p| p.bytes != real), "no probe is the real handle");
        assert!(probes(Some(b"\x80cloudpickle"), "x").iter().all(|p| p.kind == ProbeKind::Garbled));
        assert_eq!(noise(16, 1), noise(16, 1));
    }
}
