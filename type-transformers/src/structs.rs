//! `google.protobuf.Struct` (Flyte's generic literal, `TaskTemplate.custom`) ⇄ JSON.
use serde_json::{Map, Value};

use crate::render::float_to_json;

/// A `google.protobuf.Struct` as a JSON object. Struct numbers are doubles, so they
/// stay floats (`5` in a template's `custom` reads back as `5.0`, as in flytekit).
pub fn struct_to_json(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields.iter().map(|(k, v)| (k.clone(), prost_value_to_json(v))).collect()
}

pub fn prost_value_to_json(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match v.kind.as_ref() {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => float_to_json(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(prost_value_to_json).collect()),
    }
}

/// A JSON object as a `google.protobuf.Struct` (numbers become doubles).
pub fn json_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct { fields: map.iter().map(|(k, v)| (k.clone(), json_to_prost_value(v))).collect() }
}

pub fn json_to_prost_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.iter().map(json_to_prost_value).collect() })
        }
        Value::Object(map) => Kind::StructValue(json_to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}
