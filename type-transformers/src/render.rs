//! Literals rendered for humans and templates, the way flytekit renders them
//! (`flytekit.interaction.string_literals.literal_string_repr`), as JSON:
//!
//! | literal | JSON |
//! |---|---|
//! | integer, float, string, boolean | themselves |
//! | datetime | ISO 8601 text in UTC, microsecond precision, as Python's `isoformat()`: `2024-01-02T03:04:05.123456+00:00` |
//! | duration | seconds as a float (`90.0`), as `timedelta.total_seconds()` |
//! | none | `null` |
//! | blob, structured dataset, schema | its URI |
//! | error | its message |
//! | binary tagged `msgpack` | the decoded value (base64 text if the payload is corrupt) |
//! | other binary | base64 text |
//! | generic Struct | an object (Struct numbers are doubles, so they stay floats) |
//! | collection / map | array / object |
//! | union | its value |
//! | offloaded literal | its URI |
//!
//! Non-finite floats have no JSON form; they render as the strings Python prints:
//! `inf`, `-inf`, `nan`.
//!
//! Also here: `google.protobuf.Struct` ⇄ JSON, used for `TaskTemplate.custom` and
//! generic Struct literals.
use base64::Engine as _;
use serde_json::{Map, Number, Value};
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;

use crate::msgpack::{msgpack_to_json, MSGPACK_TAG};
pub use crate::structs::{json_to_prost_value, json_to_struct, prost_value_to_json, struct_to_json};

/// The flytekit-human rendering of one literal.
pub fn literal_to_json(literal: &core::Literal) -> Value {
    match literal.value.as_ref() {
        None => Value::Null,
        Some(LitValue::Scalar(s)) => scalar_to_json(s),
        Some(LitValue::Collection(c)) => Value::Array(c.literals.iter().map(literal_to_json).collect()),
        Some(LitValue::Map(m)) => Value::Object(literal_map_to_json(m)),
        Some(LitValue::OffloadedMetadata(o)) => Value::String(o.uri.clone()),
    }
}

/// The rendering of every literal of a map, by name.
pub fn literal_map_to_json(map: &core::LiteralMap) -> Map<String, Value> {
    map.literals.iter().map(|(k, v)| (k.clone(), literal_to_json(v))).collect()
}

fn scalar_to_json(scalar: &core::Scalar) -> Value {
    match scalar.value.as_ref() {
        None | Some(ScalarValue::NoneType(_)) => Value::Null,
        Some(ScalarValue::Primitive(p)) => primitive_to_json(p),
        Some(ScalarValue::Blob(b)) => Value::String(b.uri.clone()),
        Some(ScalarValue::Schema(s)) => Value::String(s.uri.clone()),
        Some(ScalarValue::StructuredDataset(d)) => Value::String(d.uri.clone()),
        Some(ScalarValue::Error(e)) => Value::String(e.message.clone()),
        Some(ScalarValue::Binary(b)) => {
            let decoded = if b.tag == MSGPACK_TAG { msgpack_to_json(&b.value).ok() } else { None };
            decoded.unwrap_or_else(|| Value::String(base64::engine::general_purpose::STANDARD.encode(&b.value)))
        }
        Some(ScalarValue::Generic(s)) => Value::Object(struct_to_json(s)),
        Some(ScalarValue::Union(u)) => u.value.as_deref().map(literal_to_json).unwrap_or(Value::Null),
    }
}

fn primitive_to_json(p: &core::Primitive) -> Value {
    match p.value.as_ref() {
        None => Value::Null,
        Some(Prim::Integer(i)) => Value::from(*i),
        Some(Prim::FloatValue(f)) => float_to_json(*f),
        Some(Prim::StringValue(s)) => Value::String(s.clone()),
        Some(Prim::Boolean(b)) => Value::Bool(*b),
        Some(Prim::Datetime(t)) => Value::String(python_isoformat(t)),
        Some(Prim::Duration(d)) => float_to_json(total_seconds(d)),
    }
}

/// A float as JSON; non-finite values as the text Python prints for them.
pub fn float_to_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("nan".into()),
        None if f > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

/// `datetime.isoformat()` of the UTC datetime flytekit builds from a Timestamp: Python
/// keeps microseconds (nanoseconds are truncated) and omits them when zero.
pub fn python_isoformat(t: &prost_types::Timestamp) -> String {
    let micros = t.nanos.clamp(0, 999_999_999) / 1_000;
    let Some(dt) = chrono::DateTime::from_timestamp(t.seconds, 0) else {
        // Out of chrono's range (beyond year ±262143): keep the raw value visible.
        return format!("{}s since epoch", t.seconds);
    };
    let base = dt.naive_utc().format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// `timedelta.total_seconds()` of the timedelta flytekit builds from a Duration
/// (microsecond precision, computed the way Python does so the float is identical).
pub fn total_seconds(d: &prost_types::Duration) -> f64 {
    let micros = i128::from(d.seconds) * 1_000_000 + i128::from(d.nanos / 1_000);
    micros as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::json_to_msgpack_literal;
    use serde_json::json;

    use crate::literals::{primitive as prim, scalar};

    #[test]
    fn primitives_render_as_flytekit_does() {
        assert_eq!(literal_to_json(&prim(Prim::Integer(10))), json!(10));
        assert_eq!(literal_to_json(&prim(Prim::FloatValue(1.5))), json!(1.5));
        assert_eq!(literal_to_json(&prim(Prim::FloatValue(f64::INFINITY))), json!("inf"));
        assert_eq!(literal_to_json(&prim(Prim::StringValue("x".into()))), json!("x"));
        assert_eq!(literal_to_json(&prim(Prim::Boolean(true))), json!(true));
        // Values checked against flytekit 1.16.31's literal_string_repr.
        let t = prost_types::Timestamp { seconds: 1_704_164_645, nanos: 123_456_789 };
        assert_eq!(literal_to_json(&prim(Prim::Datetime(t))), json!("2024-01-02T03:04:05.123456+00:00"));
        let t = prost_types::Timestamp { seconds: 1_704_164_645, nanos: 0 };
        assert_eq!(literal_to_json(&prim(Prim::Datetime(t))), json!("2024-01-02T03:04:05+00:00"));
        let d = prost_types::Duration { seconds: 90, nanos: 0 };
        let v = literal_to_json(&prim(Prim::Duration(d)));
        assert!(v.is_f64(), "{v}");
        assert_eq!(v, json!(90.0));
        let d = prost_types::Duration { seconds: 1, nanos: 500_000_999 };
        assert_eq!(literal_to_json(&prim(Prim::Duration(d))), json!(1.500_000));
    }

    #[test]
    fn references_render_as_their_uri() {
        let blob = core::Blob { uri: "s3://b/f.csv".into(), metadata: None };
        assert_eq!(literal_to_json(&scalar(ScalarValue::Blob(blob))), json!("s3://b/f.csv"));
        let sd = core::StructuredDataset { uri: "bq://p:d.t".into(), metadata: None };
        assert_eq!(literal_to_json(&scalar(ScalarValue::StructuredDataset(sd))), json!("bq://p:d.t"));
        let schema = core::Schema { uri: "file:///s".into(), r#type: None };
        assert_eq!(literal_to_json(&scalar(ScalarValue::Schema(schema))), json!("file:///s"));
        let off = core::Literal {
            value: Some(LitValue::OffloadedMetadata(core::LiteralOffloadedMetadata {
                uri: "s3://big/lit.pb".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(literal_to_json(&off), json!("s3://big/lit.pb"));
    }

    #[test]
    fn containers_binaries_structs_and_unions() {
        let none = scalar(ScalarValue::NoneType(core::Void {}));
        assert_eq!(literal_to_json(&none), Value::Null);
        let coll = core::Literal {
            value: Some(LitValue::Collection(core::LiteralCollection {
                literals: vec![prim(Prim::Integer(1)), none.clone()],
            })),
            ..Default::default()
        };
        assert_eq!(literal_to_json(&coll), json!([1, null]));
        let map = core::Literal {
            value: Some(LitValue::Map(core::LiteralMap {
                literals: [("a".to_owned(), coll.clone())].into_iter().collect(),
            })),
            ..Default::default()
        };
        assert_eq!(literal_to_json(&map), json!({"a": [1, null]}));
        assert_eq!(literal_to_json(&json_to_msgpack_literal(&json!({"k": [1, 2]}))), json!({"k": [1, 2]}));
        let raw = scalar(ScalarValue::Binary(core::Binary { value: b"hello".to_vec(), tag: String::new() }));
        assert_eq!(literal_to_json(&raw), json!("aGVsbG8="));
        let corrupt = scalar(ScalarValue::Binary(core::Binary { value: vec![0xdc], tag: "msgpack".into() }));
        assert_eq!(literal_to_json(&corrupt), json!("3A=="));
        let generic = json_to_struct(json!({"n": 5, "s": "x", "l": [true, null]}).as_object().unwrap());
        let v = literal_to_json(&scalar(ScalarValue::Generic(generic)));
        assert_eq!(v, json!({"n": 5.0, "s": "x", "l": [true, null]}));
        assert!(v["n"].is_f64());
        let union = scalar(ScalarValue::Union(Box::new(core::Union {
            value: Some(Box::new(prim(Prim::StringValue("u".into())))),
            r#type: None,
        })));
        assert_eq!(literal_to_json(&union), json!("u"));
        let err = scalar(ScalarValue::Error(core::Error { failed_node_id: "n0".into(), message: "boom".into() }));
        assert_eq!(literal_to_json(&err), json!("boom"));
    }

    #[test]
    fn struct_json_round_trip() {
        let v = json!({"a": {"b": [1.5, "x", false, null]}, "c": 2.0});
        let s = json_to_struct(v.as_object().unwrap());
        assert_eq!(Value::Object(struct_to_json(&s)), v);
    }
}
