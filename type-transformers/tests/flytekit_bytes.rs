//! Tern writes the bytes flytekit 1.16.31 writes, for the values of
//! `fixtures/flytekit_bytes.py` (whose output, `fixtures/flytekit_bytes.json`, holds the
//! LiteralType and Literal protobufs flytekit's TypeEngine produced, deterministically
//! serialized). Each case: our LiteralType bytes and Literal bytes are identical, and we
//! read flytekit's literal back to the same Rust value.
use std::collections::HashMap;

use prost::Message;
use tern_type_transformers::__core as core;
use tern_type_transformers::{FlyteType, JsonDict, Union2};

#[derive(FlyteType, Debug, Clone, PartialEq)]
#[flyte(rename_all = "lowercase")]
enum Color {
    Red,
    Green,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Inner {
    x: i64,
    y: f64,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Outer {
    name: String,
    count: i64,
    ratio: f64,
    ok: bool,
    tags: Vec<String>,
    scores: HashMap<String, i64>,
    maybe: Option<i64>,
    inner: Inner,
    color: Color,
    when: chrono::DateTime<chrono::Utc>,
    took: chrono::Duration,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Leaf {
    x: i64,
}

fn three() -> i64 {
    3
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Mixed {
    u: Union2<i64, String>,
    oi: Option<Leaf>,
    li: Vec<Leaf>,
    lo: Vec<Option<i64>>,
    di: HashMap<String, Vec<i64>>,
    #[flyte(default = "three")]
    dflt: i64,
    #[flyte(default)]
    dnone: Option<String>,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Empty {}

struct Fixture {
    literal_type: Vec<u8>,
    literal: Vec<u8>,
}

fn fixture(name: &str) -> Fixture {
    let all: serde_json::Value = serde_json::from_str(include_str!("fixtures/flytekit_bytes.json")).unwrap();
    let case = &all[name];
    let hex = |key: &str| {
        let s = case[key].as_str().unwrap_or_else(|| panic!("fixture {name} has no {key}"));
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    };
    Fixture { literal_type: hex("literal_type"), literal: hex("literal") }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Same LiteralType bytes, same Literal bytes, and flytekit's literal reads back as `value`.
fn same_as_flytekit<T: FlyteType + PartialEq + std::fmt::Debug>(name: &str, value: T) {
    let f = fixture(name);
    assert_eq!(hex(&T::literal_type().encode_to_vec()), hex(&f.literal_type), "{name}: LiteralType bytes");
    assert_eq!(hex(&value.to_literal().unwrap().encode_to_vec()), hex(&f.literal), "{name}: Literal bytes");
    let theirs = core::Literal::decode(f.literal.as_slice()).unwrap();
    assert_eq!(T::from_literal(&theirs).unwrap(), value, "{name}: reading flytekit's literal");
}

fn utc(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap()
}

#[test]
fn primitives() {
    same_as_flytekit("bool_true", true);
    same_as_flytekit("int_5", 5i64);
    same_as_flytekit("int_5", 5u8);
    same_as_flytekit("int_negative", -1_234_567_890_123i64);
    same_as_flytekit("float_1_5", 1.5f64);
    same_as_flytekit("float_1_5", 1.5f32);
    same_as_flytekit("str_hi", "hi".to_string());
}

#[test]
fn datetimes_and_durations() {
    same_as_flytekit("datetime_micros", utc(1_704_164_645_123_456));
    same_as_flytekit("timedelta_90s_5us", chrono::Duration::microseconds(90_000_005));
    same_as_flytekit("timedelta_90s_5us", std::time::Duration::from_micros(90_000_005));
    same_as_flytekit("timedelta_negative", chrono::Duration::seconds(-86_395));
}

#[test]
fn containers_optionals_and_unions() {
    same_as_flytekit("list_int", vec![1i64, 2]);
    same_as_flytekit("dict_str_int", HashMap::from([("a".to_string(), 1i64), ("b".to_string(), 2)]));
    same_as_flytekit("dict_str_int", std::collections::BTreeMap::from([("a".to_string(), 1i32), ("b".to_string(), 2)]));
    same_as_flytekit("optional_int_none", None::<i64>);
    same_as_flytekit("optional_int_3", Some(3i64));
    same_as_flytekit("union_int_str_x", Union2::<i64, String>::B("x".into()));
}

#[test]
fn untyped_dict_enum_and_dataclasses() {
    let dict = serde_json::json!({"a": 1, "b": [1.5, "x"]});
    same_as_flytekit("untyped_dict", JsonDict(dict.as_object().unwrap().clone()));
    same_as_flytekit("enum_green", Color::Green);
    same_as_flytekit("dataclass_inner", Inner { x: 1, y: 2.0 });
    same_as_flytekit(
        "dataclass_outer",
        Outer {
            name: "n".into(),
            count: 3,
            ratio: 0.5,
            ok: true,
            tags: vec!["a".into()],
            scores: HashMap::from([("k".to_string(), 1)]),
            maybe: None,
            inner: Inner { x: 1, y: 2.5 },
            color: Color::Red,
            when: utc(1_704_164_645_123_456),
            took: chrono::Duration::milliseconds(90_500),
        },
    );
    same_as_flytekit(
        "dataclass_mixed",
        Mixed {
            u: Union2::B("s".into()),
            oi: None,
            li: vec![Leaf { x: 1 }],
            lo: vec![None, Some(5)],
            di: HashMap::from([("k".to_string(), vec![1, -2, 300, -200, 70_000, 1 << 40, -(1 << 40)])]),
            dflt: 3,
            dnone: None,
        },
    );
    same_as_flytekit("dataclass_empty", Empty {});
    same_as_flytekit("list_optional_dataclass", vec![Some(Leaf { x: 7 }), None]);
}

#[test]
fn the_older_generic_struct_form_of_dataclasses_is_read() {
    // flytekit with FLYTE_USE_OLD_DC_FORMAT=true: a Generic Struct whose numbers are doubles.
    let theirs = core::Literal::decode(fixture("dataclass_outer_generic").literal.as_slice()).unwrap();
    assert!(matches!(tern_type_transformers::literals::as_scalar(&theirs), Some(core::scalar::Value::Generic(_))));
    let outer = Outer::from_literal(&theirs).unwrap();
    assert_eq!(outer.count, 3);
    assert_eq!(outer.inner, Inner { x: 1, y: 2.5 });
    assert_eq!(outer.when, utc(1_704_164_645_123_456));
    assert_eq!(outer.took, chrono::Duration::milliseconds(90_500));
    assert_eq!(outer.color, Color::Red);
    let theirs = core::Literal::decode(fixture("dataclass_mixed_generic").literal.as_slice()).unwrap();
    let mixed = Mixed::from_literal(&theirs).unwrap();
    assert_eq!(mixed.di["k"], vec![1, -2, 300, -200, 70_000, 1 << 40, -(1 << 40)]);
    assert_eq!((mixed.u, mixed.dflt, mixed.lo), (Union2::B("s".into()), 3, vec![None, Some(5)]));
}

#[test]
fn serde_json_value_reads_flytekits_dict() {
    // flytekit writes `dict` as msgpack; serde_json::Value (a Generic Struct when written)
    // reads it, integers included.
    let theirs = core::Literal::decode(fixture("untyped_dict").literal.as_slice()).unwrap();
    let v = serde_json::Value::from_literal(&theirs).unwrap();
    assert_eq!(v, serde_json::json!({"a": 1, "b": [1.5, "x"]}));
}
