//! The few Flyte literals this example reads and writes (a real agent would use
//! `tern-type-transformers`' `FlyteType`).
use tern_agent_api::core as flyte;
use tern_agent_api::prelude::AgentError;

use crate::codes;

pub fn string_input(inputs: &flyte::LiteralMap, name: &str) -> Result<String, AgentError> {
    use flyte::literal::Value;
    use flyte::primitive::Value as P;
    use flyte::scalar::Value as S;
    let literal = inputs
        .literals
        .get(name)
        .ok_or_else(|| AgentError::invalid_argument(codes::BAD_INPUT, format!("input {name:?} is missing")))?;
    let text = match &literal.value {
        Some(Value::Scalar(scalar)) => match &scalar.value {
            Some(S::Primitive(flyte::Primitive { value: Some(P::StringValue(s)) })) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    text.ok_or_else(|| AgentError::invalid_argument(codes::BAD_INPUT, format!("input {name:?} must be a string")))
}

fn primitive(value: flyte::primitive::Value) -> flyte::Literal {
    flyte::Literal {
        value: Some(flyte::literal::Value::Scalar(Box::new(flyte::Scalar {
            value: Some(flyte::scalar::Value::Primitive(flyte::Primitive { value: Some(value) })),
        }))),
        ..Default::default()
    }
}

pub fn string_literal(s: String) -> flyte::Literal {
    primitive(flyte::primitive::Value::StringValue(s))
}

pub fn int_literal(i: i64) -> flyte::Literal {
    primitive(flyte::primitive::Value::Integer(i))
}
