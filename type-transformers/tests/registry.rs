//! Conversion by LiteralType at run time, built-in and with custom converters.
use std::sync::Arc;

use serde_json::{json, Value};
use tern_type_transformers::__core as core;
use tern_type_transformers::error::codes;
use tern_type_transformers::registry::{LiteralConverter, TypeRegistry};
use tern_type_transformers::types::{blob, list, map, optional, parse_type_expr};
use tern_type_transformers::{FlyteType, JsonDict, TransformError};

#[derive(FlyteType, Debug, PartialEq)]
struct Point {
    x: i64,
    y: f64,
}

#[derive(FlyteType, Debug, PartialEq)]
struct Shape {
    name: String,
    corners: Vec<Point>,
    #[flyte(default)]
    closed: bool,
}

#[test]
fn built_in_types_match_parse_and_render() {
    let r = TypeRegistry::default();
    for (ty, value) in [
        ("list<integer>", json!([1, 2])),
        ("map<optional<string>>", json!({"a": "x", "b": null})),
        ("union<integer, string>", json!("s")),
        ("datetime", json!("2024-01-02T03:04:05.123456+00:00")),
        ("enum<a, b>", json!("b")),
        ("struct", json!({"k": 1.5})),
    ] {
        let t = parse_type_expr(ty).unwrap();
        let lit = r.from_json(&value, &t).unwrap();
        assert_eq!(lit, tern_type_transformers::parse::literal_from_json(&value, &t).unwrap(), "{ty}");
        assert_eq!(r.to_json(&lit, &t).unwrap(), value, "{ty}");
    }
    let e = r.from_json(&json!("x"), &parse_type_expr("integer").unwrap()).unwrap_err();
    assert_eq!(e.code(), "TERN-E111");
}

#[test]
fn dataclass_types_become_the_msgpack_flytekit_reads() {
    let r = TypeRegistry::default();
    let t = Shape::literal_type();
    let lit = r.from_json(&json!({"name": "sq", "corners": [{"x": 0, "y": 1}]}), &t).unwrap();
    // Typed by the dataclass's field types: `y` is written as a float, `x` as an int.
    let shape = Shape::from_literal(&lit).unwrap();
    assert_eq!(shape, Shape { name: "sq".into(), corners: vec![Point { x: 0, y: 1.0 }], closed: false });
    assert_eq!(r.to_json(&lit, &t).unwrap(), json!({"name": "sq", "corners": [{"x": 0, "y": 1.0}]}));
    // In containers too.
    let lt = list(Point::literal_type());
    let lit = r.from_json(&json!([{"x": 1, "y": 2.5}]), &lt).unwrap();
    assert_eq!(Vec::<Point>::from_literal(&lit).unwrap(), vec![Point { x: 1, y: 2.5 }]);

    let e = r.from_json(&json!({"corners": []}), &t).unwrap_err();
    assert_eq!(e.code(), codes::MISSING_FIELD);
    let e = r.from_json(&json!({"name": "a", "corners": [], "colour": 1}), &t).unwrap_err();
    assert_eq!(e.code(), codes::UNKNOWN_FIELD);
    let e = r.from_json(&json!({"name": "a", "corners": [{"x": "one", "y": 0}]}), &t).unwrap_err();
    assert_eq!(e.path(), "corners[0].x");
    // flytekit's `dict`: msgpack, integers kept.
    let lit = r.from_json(&json!({"n": 1}), &JsonDict::literal_type()).unwrap();
    assert_eq!(JsonDict::from_literal(&lit).unwrap().0["n"], json!(1));
}

/// Blobs of format "point" hold "x,y" text in their URI (a contrived third-party type).
struct PointUri;

impl LiteralConverter for PointUri {
    fn to_json(&self, lit: &core::Literal, _: &core::LiteralType, _: &TypeRegistry) -> Result<Value, TransformError> {
        match tern_type_transformers::render::literal_to_json(lit) {
            Value::String(uri) => Ok(json!({"at": uri})),
            other => Err(TransformError::Unsupported(format!("not a point blob: {other}"))),
        }
    }
    fn from_json(&self, v: &Value, ty: &core::LiteralType, _: &TypeRegistry) -> Result<core::Literal, TransformError> {
        let uri = v["at"].as_str().ok_or_else(|| TransformError::Unsupported("no \"at\"".into()))?;
        Ok(tern_type_transformers::parse::parse_literal(uri, ty)?)
    }
}

#[test]
fn custom_converters_by_blob_format_and_dataclass_title() {
    let mut r = TypeRegistry::default();
    r.register_blob_format("point", Arc::new(PointUri));
    let t = map(optional(blob("point", core::blob_type::BlobDimensionality::Single)));
    let value = json!({"a": {"at": "s3://b/p"}, "b": null});
    let lit = r.from_json(&value, &t).unwrap();
    assert_eq!(r.to_json(&lit, &t).unwrap(), value);

    // A converter for the dataclass titled "Point" replaces the built-in msgpack form.
    r.register_dataclass("Point", Arc::new(PointAsPair));
    let lit = r.from_json(&json!([3, 4.5]), &Point::literal_type()).unwrap();
    assert_eq!(Point::from_literal(&lit).unwrap(), Point { x: 3, y: 4.5 });
    assert_eq!(r.to_json(&lit, &Point::literal_type()).unwrap(), json!([3, 4.5]));
    assert!(format!("{r:?}").contains("Point"));
}

/// `Point` as a JSON pair `[x, y]`.
struct PointAsPair;

impl LiteralConverter for PointAsPair {
    fn to_json(&self, lit: &core::Literal, _: &core::LiteralType, _: &TypeRegistry) -> Result<Value, TransformError> {
        let p = Point::from_literal(lit)?;
        Ok(json!([p.x, p.y]))
    }
    fn from_json(&self, v: &Value, _: &core::LiteralType, _: &TypeRegistry) -> Result<core::Literal, TransformError> {
        let (Some(x), Some(y)) = (v[0].as_i64(), v[1].as_f64()) else {
            return Err(TransformError::Unsupported(format!("not a pair: {v}")));
        };
        Point { x, y }.to_literal()
    }
}
