//! Bad input is a typed error naming the problem, never a panic: a literal of the wrong
//! kind, an out-of-range integer, a malformed msgpack payload, a struct missing a field, …
use std::collections::HashMap;

use tern_type_transformers::__core as core;
use tern_type_transformers::error::codes;
use tern_type_transformers::{literal_map_get, literals, FlyteType, LiteralMapBuilder, Union2};

#[derive(FlyteType, Debug, PartialEq)]
struct Point {
    x: i64,
    y: f64,
}

#[derive(FlyteType, Debug, PartialEq)]
struct Small {
    count: u8,
    points: Vec<Point>,
}

#[derive(FlyteType, Debug, PartialEq)]
#[flyte(deny_unknown_fields)]
struct Strict {
    a: i64,
}

#[derive(FlyteType, Debug, PartialEq)]
#[flyte(rename_all = "snake_case")]
enum Level {
    Low,
    VeryHigh,
}

fn msgpack(json: serde_json::Value) -> core::Literal {
    tern_type_transformers::msgpack::json_to_msgpack_literal(&json)
}

#[test]
fn wrong_kind_names_the_expected_type_and_what_was_found() {
    let e = String::from_literal(&5i64.to_literal().unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::WRONG_KIND);
    assert_eq!(e.to_string(), "expected string (String), found integer 5");
    let e = Point::from_literal(&vec![1i64].to_literal().unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected struct Point (a msgpack binary or generic struct), found a collection of 1 literals"
    );
    let e = Vec::<i64>::from_literal(&"x".to_string().to_literal().unwrap()).unwrap_err();
    assert_eq!(e.to_string(), "expected list<integer> (Vec<i64>), found string \"x\"");
    let offloaded = core::Literal {
        value: Some(core::literal::Value::OffloadedMetadata(core::LiteralOffloadedMetadata {
            uri: "s3://b/o.pb".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let e = i64::from_literal(&offloaded).unwrap_err();
    assert!(e.to_string().contains("offloaded literal at s3://b/o.pb (load it first"), "{e}");
}

#[test]
fn integers_out_of_range_name_value_and_target() {
    let e = u8::from_literal(&300i64.to_literal().unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::INTEGER_OUT_OF_RANGE);
    assert_eq!(e.to_string(), "integer 300 is out of range for u8");
    let e = u32::from_literal(&(-1i64).to_literal().unwrap()).unwrap_err();
    assert_eq!(e.to_string(), "integer -1 is out of range for u32");
    let e = u64::MAX.to_literal().unwrap_err();
    assert_eq!(e.to_string(), "integer 18446744073709551615 is out of range for Flyte's integer (int64)");
    // Inside a struct, the path leads to the field.
    let e = Small::from_literal(&msgpack(serde_json::json!({"count": 256, "points": []}))).unwrap_err();
    assert_eq!(e.code(), codes::INTEGER_OUT_OF_RANGE);
    assert_eq!(e.path(), "count");
    assert_eq!(e.to_string(), "at count: integer 256 is out of range for u8");
}

#[test]
fn malformed_msgpack_names_the_rust_type() {
    let e = Point::from_literal(&literals::msgpack_binary(b"\x82\xa1x".to_vec())).unwrap_err();
    assert_eq!(e.code(), codes::MALFORMED_MSGPACK);
    assert!(e.to_string().starts_with("malformed msgpack payload for Point: "), "{e}");
    let e = Point::from_literal(&literals::msgpack_binary(b"\x80\xc0".to_vec())).unwrap_err();
    assert_eq!(e.to_string(), "malformed msgpack payload for Point: 1 trailing bytes after the value");
    let e = Point::from_literal(&msgpack(serde_json::json!([1, 2]))).unwrap_err();
    assert_eq!(e.to_string(), "malformed msgpack payload for Point: expected a map of fields, found an array of 2");
    // A field of the wrong shape: the payload is malformed for that field's type.
    let e =
        Small::from_literal(&msgpack(serde_json::json!({"count": 1, "points": [{"x": "one", "y": 1.0}]}))).unwrap_err();
    assert_eq!(e.code(), codes::MALFORMED_MSGPACK);
    assert_eq!(e.path(), "points[0].x");
    assert_eq!(
        e.to_string(),
        "at points[0].x: malformed msgpack payload for i64: expected integer, found msgpack string \"one\""
    );
    // A dataclass attribute input of the wrong shape for a list.
    let e = HashMap::<String, i64>::from_literal(&msgpack(serde_json::json!({"a": 1.5}))).unwrap_err();
    assert_eq!(e.code(), codes::MALFORMED_MSGPACK);
    assert!(e.to_string().contains("HashMap<String, i64>"), "{e}");
}

#[test]
fn missing_and_unknown_fields() {
    let e = Point::from_literal(&msgpack(serde_json::json!({"y": 1.0}))).unwrap_err();
    assert_eq!(e.code(), codes::MISSING_FIELD);
    assert_eq!(e.to_string(), "Point is missing the required field \"x\"");
    let e = Small::from_literal(&msgpack(serde_json::json!({"count": 1, "points": [{"x": 1}]}))).unwrap_err();
    assert_eq!(e.to_string(), "at points[0]: Point is missing the required field \"y\"");
    // Unknown fields are ignored (as mashumaro does) unless the struct denies them.
    assert!(Point::from_literal(&msgpack(serde_json::json!({"x": 1, "y": 1.0, "z": 0}))).is_ok());
    let e = Strict::from_literal(&msgpack(serde_json::json!({"a": 1, "b": 2}))).unwrap_err();
    assert_eq!(e.code(), codes::UNKNOWN_FIELD);
    assert_eq!(e.to_string(), "Strict has no field \"b\" (its fields: a)");
}

#[test]
fn enums_list_their_values() {
    assert_eq!(
        Level::literal_type().r#type,
        Some(core::literal_type::Type::EnumType(core::EnumType { values: vec!["low".into(), "very_high".into()] }))
    );
    let e = Level::from_literal(&"medium".to_string().to_literal().unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::UNKNOWN_ENUM_VALUE);
    assert_eq!(e.to_string(), "\"medium\" is not a value of Level (allowed: low, very_high)");
}

#[test]
fn literal_maps_name_the_missing_entry() {
    let map = LiteralMapBuilder::new().with("a", &1i64).unwrap().with("b", &"x".to_string()).unwrap().build();
    let e = literal_map_get::<i64>(&map, "c").unwrap_err();
    assert_eq!(e.code(), codes::MISSING_ENTRY);
    assert_eq!(e.to_string(), "no literal named \"c\" (present: a, b)");
    let e = literal_map_get::<i64>(&map, "b").unwrap_err();
    assert_eq!(e.to_string(), "at b: expected integer (i64), found string \"x\"");
}

#[test]
fn unions_without_or_with_several_matching_variants() {
    let e = Union2::<i64, String>::from_literal(&true.to_literal().unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::NO_UNION_VARIANT);
    assert!(e.to_string().starts_with("no variant of union<integer, string> accepts boolean true"), "{e}");
    // A bare integer fits both int and float (flytekit reads ints as floats too): ambiguous.
    let e = Union2::<i64, f64>::from_literal(&1i64.to_literal().unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::AMBIGUOUS_UNION);
    // Tagged, as flytekit writes union values, it is not.
    let tagged = Union2::<i64, f64>::A(1).to_literal().unwrap();
    assert_eq!(Union2::<i64, f64>::from_literal(&tagged).unwrap(), Union2::A(1));
}

#[test]
fn invalid_values() {
    let bad_ts =
        literals::primitive(core::primitive::Value::Datetime(prost_types::Timestamp { seconds: 0, nanos: -1 }));
    let e = chrono::DateTime::<chrono::Utc>::from_literal(&bad_ts).unwrap_err();
    assert_eq!(e.code(), codes::INVALID_VALUE);
    let negative = chrono::Duration::seconds(-5).to_literal().unwrap();
    let e = std::time::Duration::from_literal(&negative).unwrap_err();
    assert_eq!(e.to_string(), "invalid duration (std::time::Duration): -5s 0ns is negative");
    let e = serde_json::json!([1]).to_literal().unwrap_err();
    assert_eq!(e.code(), codes::INVALID_VALUE);
    let e = f32::from_literal(&1e300f64.to_literal().unwrap()).unwrap_err();
    assert_eq!(e.code(), codes::INVALID_VALUE);
}

#[test]
fn errors_become_classified_agent_errors() {
    use tern_agent_api::error::{AgentError, ErrorOrigin, Retry};
    let e: AgentError = u8::from_literal(&300i64.to_literal().unwrap()).unwrap_err().into();
    assert_eq!(e.code, codes::INTEGER_OUT_OF_RANGE);
    assert_eq!((e.origin, e.retry), (ErrorOrigin::User, Retry::Permanent));
    assert_eq!(e.to_string(), "[TERN-T002] integer 300 is out of range for u8");
}
