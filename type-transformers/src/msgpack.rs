//! JSON values ⇄ msgpack `Binary` literals, the way flytekit stores a Python `dict`
//! (and dataclasses, and untyped outputs) since flytekit 1.14: a `Scalar.binary` with
//! `tag = "msgpack"` whose `value` is the msgpack encoding of the value.
//!
//! Integers stay integers on the way in (`200` decodes in Python as the `int` 200, not
//! `200.0`), floats stay floats. On the way out, msgpack features JSON cannot hold are
//! mapped explicitly: binary payloads become base64 text, non-string map keys become
//! their JSON text, non-finite floats become the strings Python prints (`inf`, `nan`).
use base64::Engine as _;
use serde_json::{Map, Number, Value};
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::scalar::Value as ScalarValue;

/// The `Binary.tag` flytekit writes for msgpack payloads.
pub const MSGPACK_TAG: &str = "msgpack";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MsgpackError {
    #[error("literal is not a msgpack binary (expected scalar.binary with tag {MSGPACK_TAG:?}, got {0})")]
    NotMsgpack(String),
    #[error("msgpack payload cannot be decoded: {0}")]
    Decode(String),
    #[error("msgpack payload has {0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("msgpack extension type {0} has no JSON form")]
    Extension(i8),
    #[error("msgpack map has a map inside a key (Python dict keys are hashable: flytekit never writes one)")]
    MapInKey,
}

/// Encodes a JSON value as msgpack bytes.
pub fn json_to_msgpack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &json_to_rmpv(value));
    out
}

/// A `Literal` holding `value` as flytekit's msgpack binary.
pub fn json_to_msgpack_literal(value: &Value) -> core::Literal {
    core::Literal {
        value: Some(LitValue::Scalar(Box::new(core::Scalar {
            value: Some(ScalarValue::Binary(core::Binary {
                value: json_to_msgpack(value),
                tag: MSGPACK_TAG.to_owned(),
            })),
        }))),
        ..Default::default()
    }
}

/// Decodes msgpack bytes (exactly one value) to JSON.
pub fn msgpack_to_json(bytes: &[u8]) -> Result<Value, MsgpackError> {
    let mut cursor = bytes;
    let value = rmpv::decode::read_value(&mut cursor).map_err(|e| MsgpackError::Decode(e.to_string()))?;
    if !cursor.is_empty() {
        return Err(MsgpackError::TrailingBytes(cursor.len()));
    }
    rmpv_to_json(value)
}

/// Decodes a msgpack binary literal (as written by flytekit or [`json_to_msgpack_literal`]).
pub fn msgpack_literal_to_json(literal: &core::Literal) -> Result<Value, MsgpackError> {
    match literal.value.as_ref() {
        Some(LitValue::Scalar(scalar)) => match scalar.value.as_ref() {
            Some(ScalarValue::Binary(b)) if b.tag == MSGPACK_TAG => msgpack_to_json(&b.value),
            Some(ScalarValue::Binary(b)) => Err(MsgpackError::NotMsgpack(format!("a binary tagged {:?}", b.tag))),
            _ => Err(MsgpackError::NotMsgpack("another scalar".into())),
        },
        Some(LitValue::Collection(_)) => Err(MsgpackError::NotMsgpack("a collection".into())),
        Some(LitValue::Map(_)) => Err(MsgpackError::NotMsgpack("a map".into())),
        Some(LitValue::OffloadedMetadata(_)) => Err(MsgpackError::NotMsgpack("an offloaded literal".into())),
        None => Err(MsgpackError::NotMsgpack("an empty literal".into())),
    }
}

fn json_to_rmpv(value: &Value) -> rmpv::Value {
    match value {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                rmpv::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                rmpv::Value::from(u)
            } else {
                rmpv::Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Array(items) => rmpv::Value::Array(items.iter().map(json_to_rmpv).collect()),
        Value::Object(map) => {
            rmpv::Value::Map(map.iter().map(|(k, v)| (rmpv::Value::from(k.as_str()), json_to_rmpv(v))).collect())
        }
    }
}

/// A map key as JSON object key: a string as is, anything else as its JSON text (`1`, `[1,2]`
/// for a tuple key). A map inside a key is refused: Python cannot write one (a dict is not
/// hashable), and text of text grows exponentially — each nested key's JSON text would be
/// escaped again at every level, doubling it, so 40 nested levels of a 100-byte payload
/// would take forever (found by fuzzing: the `literal` target).
fn key_text(key: rmpv::Value) -> Result<String, MsgpackError> {
    fn holds_map(v: &rmpv::Value) -> bool {
        match v {
            rmpv::Value::Map(_) => true,
            rmpv::Value::Array(items) => items.iter().any(holds_map),
            _ => false,
        }
    }
    match key {
        rmpv::Value::String(s) => Ok(utf8_lossy(s)),
        other if holds_map(&other) => Err(MsgpackError::MapInKey),
        other => Ok(rmpv_to_json(other)?.to_string()),
    }
}

fn utf8_lossy(s: rmpv::Utf8String) -> String {
    // Invalid UTF-8 is kept visible rather than dropped.
    String::from_utf8_lossy(&s.into_bytes()).into_owned()
}

fn float_to_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        // Python prints these as `inf`, `-inf`, `nan`; JSON has no literal for them.
        None if f.is_nan() => Value::String("nan".into()),
        None if f > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

fn rmpv_to_json(value: rmpv::Value) -> Result<Value, MsgpackError> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(v), _) => Value::from(v),
            (None, Some(v)) => Value::from(v),
            (None, None) => Value::Null,
        },
        rmpv::Value::F32(f) => float_to_json(f64::from(f)),
        rmpv::Value::F64(f) => float_to_json(f),
        rmpv::Value::String(s) => Value::String(utf8_lossy(s)),
        rmpv::Value::Binary(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        rmpv::Value::Array(items) => Value::Array(items.into_iter().map(rmpv_to_json).collect::<Result<_, _>>()?),
        rmpv::Value::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                map.insert(key_text(k)?, rmpv_to_json(v)?);
            }
            Value::Object(map)
        }
        rmpv::Value::Ext(tag, _) => return Err(MsgpackError::Extension(tag)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_keeps_integers_integers() {
        let v = json!({"status_code": 200, "response_data": "ok", "ratio": 1.5, "neg": -3,
                       "big": u64::MAX, "nested": {"l": [1, "a", null, true]}});
        let lit = json_to_msgpack_literal(&v);
        let Some(LitValue::Scalar(scalar)) = &lit.value else { panic!("not a scalar: {lit:?}") };
        let Some(ScalarValue::Binary(b)) = &scalar.value else { panic!("not a binary literal: {lit:?}") };
        assert_eq!(b.tag, "msgpack");
        assert_eq!(msgpack_literal_to_json(&lit).unwrap(), v);
        let back = msgpack_literal_to_json(&lit).unwrap();
        assert!(back["status_code"].is_i64());
        assert!(back["ratio"].is_f64());
    }

    #[test]
    fn encodes_the_bytes_python_msgpack_writes() {
        // python: msgpack.dumps({"status_code": 200}) == b'\x81\xabstatus_code\xcc\xc8'
        assert_eq!(json_to_msgpack(&json!({"status_code": 200})), b"\x81\xabstatus_code\xcc\xc8".to_vec());
        // python: msgpack.dumps(1.0) == b'\xcb?\xf0\x00\x00\x00\x00\x00\x00'
        assert_eq!(json_to_msgpack(&json!(1.0)), b"\xcb\x3f\xf0\0\0\0\0\0\0".to_vec());
    }

    #[test]
    fn decodes_what_json_cannot_hold_explicitly() {
        // {1: b"\x01\x02", "f": nan}
        let bytes = b"\x82\x01\xc4\x02\x01\x02\xa1f\xcb\x7f\xf8\0\0\0\0\0\0";
        assert_eq!(msgpack_to_json(bytes).unwrap(), json!({"1": "AQI=", "f": "nan"}));
    }

    #[test]
    fn rejects_non_msgpack_and_corrupt_payloads() {
        let other = core::Literal {
            value: Some(LitValue::Scalar(Box::new(core::Scalar {
                value: Some(ScalarValue::Binary(core::Binary { value: vec![0xc0], tag: "pickle".into() })),
            }))),
            ..Default::default()
        };
        assert!(matches!(msgpack_literal_to_json(&other), Err(MsgpackError::NotMsgpack(_))));
        assert!(matches!(msgpack_to_json(b"\xdc\x00"), Err(MsgpackError::Decode(_))));
        assert_eq!(msgpack_to_json(b"\xc0\xc0"), Err(MsgpackError::TrailingBytes(1)));
        assert_eq!(msgpack_to_json(b"\xd4\x05\x00"), Err(MsgpackError::Extension(5)));
    }

    #[test]
    fn tuple_keys_become_their_json_text() {
        // {(1, (2, "a")): True}, as msgpack writes a Python tuple key: an array
        let bytes = b"\x81\x92\x01\x92\x02\xa1a\xc3";
        assert_eq!(msgpack_to_json(bytes).unwrap(), json!({"[1,[2,\"a\"]]": true}));
    }

    /// Found by fuzzing (`literal` target): maps nested as keys of keys. Each level's key
    /// text was escaped again by the next, doubling it per level: 60 levels never finished.
    #[test]
    fn maps_inside_keys_are_refused() {
        let mut bytes = vec![0x81; 60]; // maps of one entry, each the key of the one before
        bytes.extend_from_slice(b"\x80\xc0"); // the innermost key: {} → nil
        bytes.extend(std::iter::repeat_n(0xc0, 59)); // every level's value: nil
        assert_eq!(msgpack_to_json(&bytes), Err(MsgpackError::MapInKey));
        // also inside a tuple key
        assert_eq!(msgpack_to_json(b"\x81\x91\x80\xc0"), Err(MsgpackError::MapInKey));
        // a map as a value is of course fine
        assert_eq!(msgpack_to_json(b"\x81\xa1k\x81\xa1j\x80").unwrap(), json!({"k": {"j": {}}}));
    }
}
