//! Task inputs as the placeholder scope `{"inputs": {...}}`, rendered the way flytekit's
//! webhook connector renders them (`literal_map_string_repr`).
//!
//! This is [`literal_to_json`] with one flytekit quirk kept for exactness: a msgpack
//! binary (how flytekit stores a Python `dict` or dataclass) becomes its *JSON text*
//! (`json.dumps` of the decoded value), not a nested object, so `{inputs.d}` splices
//! `{"k": "v"}` and `{inputs.d.k}` is an unknown key.
use serde_json::{Map, Value};
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_type_transformers::msgpack::{msgpack_to_json, MSGPACK_TAG};
use tern_type_transformers::render::literal_to_json;

use crate::python::python_json_dumps;

/// `{"inputs": {name: rendered value}}`.
pub fn placeholder_scope(inputs: &core::LiteralMap) -> Value {
    let rendered: Map<String, Value> = inputs.literals.iter().map(|(k, v)| (k.clone(), flytekit_repr(v))).collect();
    let mut scope = Map::new();
    scope.insert("inputs".into(), Value::Object(rendered));
    Value::Object(scope)
}

fn flytekit_repr(literal: &core::Literal) -> Value {
    match literal.value.as_ref() {
        Some(LitValue::Collection(c)) => Value::Array(c.literals.iter().map(flytekit_repr).collect()),
        Some(LitValue::Map(m)) => Value::Object(m.literals.iter().map(|(k, v)| (k.clone(), flytekit_repr(v))).collect()),
        Some(LitValue::Scalar(s)) => match s.value.as_ref() {
            Some(ScalarValue::Union(u)) => u.value.as_deref().map(flytekit_repr).unwrap_or(Value::Null),
            Some(ScalarValue::Binary(b)) if b.tag == MSGPACK_TAG => match msgpack_to_json(&b.value) {
                Ok(v) => Value::String(python_json_dumps(&v)),
                Err(_) => literal_to_json(literal),
            },
            _ => literal_to_json(literal),
        },
        _ => literal_to_json(literal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tern_type_transformers::msgpack::json_to_msgpack_literal;

    fn string(s: &str) -> core::Literal {
        core::Literal {
            value: Some(LitValue::Scalar(Box::new(core::Scalar {
                value: Some(ScalarValue::Primitive(core::Primitive {
                    value: Some(core::primitive::Value::StringValue(s.into())),
                })),
            }))),
            ..Default::default()
        }
    }

    #[test]
    fn msgpack_inputs_become_json_text_everywhere() {
        let d = json_to_msgpack_literal(&json!({"k": "v", "n": 1}));
        let list = core::Literal {
            value: Some(LitValue::Collection(core::LiteralCollection { literals: vec![d.clone(), string("s")] })),
            ..Default::default()
        };
        let inputs = core::LiteralMap {
            literals: [("d".to_owned(), d), ("l".to_owned(), list)].into_iter().collect(),
        };
        assert_eq!(
            placeholder_scope(&inputs),
            json!({"inputs": {"d": "{\"k\": \"v\", \"n\": 1}", "l": ["{\"k\": \"v\", \"n\": 1}", "s"]}})
        );
    }
}
