//! Property tests: every supported type round-trips through its literal (and through the
//! literal's protobuf bytes), nested types included; derived structs also round-trip
//! through the msgpack form Flyte hands tasks for dataclass attributes; and `from_literal`
//! on any literal of another kind is an error, never a panic.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use prost::Message;
use serde_json::Value;
use tern_type_transformers::__core as core;
use tern_type_transformers::msgpack_literal::literal_to_msgpack;
use tern_type_transformers::{literals, Bytes, FlyteType, JsonDict, Union2, Union3};

#[derive(FlyteType, Debug, Clone, PartialEq)]
enum Level {
    Low,
    #[flyte(rename = "mid-level")]
    Mid,
    High,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Point {
    x: i64,
    y: f64,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Record {
    id: u32,
    name: String,
    small: i8,
    ratio: f32,
    flag: bool,
    tags: Vec<String>,
    counts: HashMap<String, i64>,
    sorted: BTreeMap<String, Vec<u16>>,
    maybe_point: Option<Point>,
    points: Vec<Point>,
    level: Level,
    levels: Vec<Option<Level>>,
    when: DateTime<Utc>,
    took: chrono::Duration,
    wait: std::time::Duration,
    blob: Bytes,
    either: Union2<i64, String>,
    nested: Vec<Option<HashMap<String, Vec<i64>>>>,
    #[flyte(rename = "type")]
    kind: String,
    #[flyte(default)]
    extra: Option<i64>,
}

/// Generic structs work too (their type is not cached).
#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Pair<A, B> {
    first: A,
    second: B,
}

/// `value` → literal → protobuf bytes → literal → value.
fn round_trip<T: FlyteType + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let literal = value.to_literal().map_err(|e| TestCaseError::fail(format!("to_literal: {e}")))?;
    let back = T::from_literal(&literal).map_err(|e| TestCaseError::fail(format!("from_literal: {e}")))?;
    prop_assert_eq!(&back, value);
    let decoded = core::Literal::decode(literal.encode_to_vec().as_slice()).unwrap();
    prop_assert_eq!(&T::from_literal(&decoded).unwrap(), value);
    Ok(())
}

/// `value` → literal → msgpack `Binary` (the form of a dataclass attribute) → value.
fn msgpack_round_trip<T: FlyteType + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = literal_to_msgpack(&value.to_literal().unwrap()).unwrap();
    let back = T::from_literal(&literals::msgpack_binary(bytes))
        .map_err(|e| TestCaseError::fail(format!("from msgpack: {e}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN has no equality", |f| !f.is_nan())
}

/// Python's datetime range (years 1..=9999), whole microseconds.
fn datetime_micros() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_135_596_800_000_000i64..253_402_300_799_999_999).prop_map(|us| DateTime::from_timestamp_micros(us).unwrap())
}

fn datetime_nanos() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_135_596_800i64..253_402_300_799, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

/// ±100 years in whole microseconds: exact as a float of seconds, as in Python.
const CENTURY_MICROS: i64 = 100 * 366 * 86_400 * 1_000_000;

fn key() -> impl Strategy<Value = String> {
    "[a-z_]{0,8}"
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Low), Just(Level::Mid), Just(Level::High)]
}

fn point() -> impl Strategy<Value = Point> {
    (any::<i64>(), finite()).prop_map(|(x, y)| Point { x, y })
}

fn nested() -> impl Strategy<Value = Vec<Option<HashMap<String, Vec<i64>>>>> {
    prop::collection::vec(
        prop::option::of(prop::collection::hash_map(key(), prop::collection::vec(any::<i64>(), 0..4), 0..3)),
        0..4,
    )
}

fn record() -> impl Strategy<Value = Record> {
    (
        (any::<u32>(), ".{0,40}", any::<i8>(), any::<f32>().prop_filter("not NaN", |f| !f.is_nan()), any::<bool>()),
        (
            prop::collection::vec(".{0,5}", 0..4),
            prop::collection::hash_map(key(), any::<i64>(), 0..4),
            prop::collection::btree_map(key(), prop::collection::vec(any::<u16>(), 0..3), 0..3),
            prop::option::of(point()),
            prop::collection::vec(point(), 0..3),
        ),
        (level(), prop::collection::vec(prop::option::of(level()), 0..4), datetime_micros()),
        (-CENTURY_MICROS..CENTURY_MICROS, 0..CENTURY_MICROS as u64, prop::collection::vec(any::<u8>(), 0..40)),
        (
            prop_oneof![any::<i64>().prop_map(Union2::A), ".{0,8}".prop_map(Union2::B)],
            nested(),
            ".{0,8}",
            any::<Option<i64>>(),
        ),
    )
        .prop_map(
            |(
                (id, name, small, ratio, flag),
                (tags, counts, sorted, maybe_point, points),
                (level, levels, when),
                (took, wait, blob),
                (either, nested, kind, extra),
            )| Record {
                id,
                name,
                small,
                ratio,
                flag,
                tags,
                counts,
                sorted,
                maybe_point,
                points,
                level,
                levels,
                when,
                took: chrono::Duration::microseconds(took),
                wait: std::time::Duration::from_micros(wait),
                blob: Bytes(blob),
                either,
                nested,
                kind,
                extra,
            },
        )
}

/// JSON whose numbers are floats (a Generic Struct holds doubles only).
fn json_floats() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1e15f64..1e15).prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any JSON: integers (signed and beyond i64), floats, strings, nesting.
fn json_any() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(o) => o,
        other => serde_json::Map::from_iter([("v".to_string(), other)]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scalars(b in any::<bool>(), i8_ in any::<i8>(), i16_ in any::<i16>(), i32_ in any::<i32>(), i64_ in any::<i64>(),
               u8_ in any::<u8>(), u16_ in any::<u16>(), u32_ in any::<u32>(), u64_ in 0..=i64::MAX as u64,
               us in 0..=i64::MAX as usize, is in any::<isize>(), f in finite(), f32_ in any::<f32>().prop_filter("", |f| !f.is_nan()),
               s in ".{0,64}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        round_trip(&b)?; round_trip(&i8_)?; round_trip(&i16_)?; round_trip(&i32_)?; round_trip(&i64_)?;
        round_trip(&u8_)?; round_trip(&u16_)?; round_trip(&u32_)?; round_trip(&u64_)?; round_trip(&us)?; round_trip(&is)?;
        round_trip(&f)?; round_trip(&f32_)?; round_trip(&s)?; round_trip(&Bytes(bytes.clone()))?;
        round_trip(&::bytes::Bytes::from(bytes))?; round_trip(&())?;
        msgpack_round_trip(&i64_)?; msgpack_round_trip(&f)?; msgpack_round_trip(&s)?; msgpack_round_trip(&b)?;
    }

    #[test]
    fn times(dt in datetime_nanos(), dt_us in datetime_micros(), secs in -315_576_000_000i64..315_576_000_000, nanos in 0i32..1_000_000_000,
             std_secs in 0..=i64::MAX as u64, micros in -CENTURY_MICROS..CENTURY_MICROS) {
        round_trip(&dt)?;
        let d = chrono::Duration::seconds(secs) + chrono::Duration::nanoseconds(i64::from(nanos));
        round_trip(&d)?;
        round_trip(&std::time::Duration::new(std_secs, nanos as u32))?;
        // The msgpack form is Python's: microseconds, as isoformat text and float seconds.
        msgpack_round_trip(&dt_us)?;
        msgpack_round_trip(&chrono::Duration::microseconds(micros))?;
    }

    #[test]
    fn containers(v in prop::collection::vec(any::<i64>(), 0..8),
                  m in prop::collection::hash_map(key(), ".{0,4}", 0..6),
                  bm in prop::collection::btree_map(key(), any::<bool>(), 0..6),
                  o in any::<Option<u16>>(), oo in any::<Option<Option<i32>>>(),
                  n in nested()) {
        round_trip(&v)?; round_trip(&m)?; round_trip(&bm)?; round_trip(&o)?; round_trip(&n)?; round_trip(&oo)?;
        msgpack_round_trip(&v)?; msgpack_round_trip(&m)?; msgpack_round_trip(&o)?; msgpack_round_trip(&n)?;
    }

    #[test]
    fn unions(a in any::<i64>(), s in ".{0,8}", p in point()) {
        round_trip(&Union2::<i64, String>::A(a))?;
        round_trip(&Union2::<i64, String>::B(s.clone()))?;
        round_trip(&Union3::<Point, Vec<i64>, ()>::A(p.clone()))?;
        round_trip(&Union3::<Point, Vec<i64>, ()>::B(vec![a]))?;
        round_trip(&Union3::<Point, Vec<i64>, ()>::C(()))?;
        round_trip(&vec![Union2::<String, Level>::A(s), Union2::B(Level::High)])?;
    }

    #[test]
    fn json(floats in json_floats(), any_json in json_any()) {
        round_trip(&Value::Object(object(floats)))?;
        round_trip(&JsonDict(object(any_json)))?;
    }

    #[test]
    fn derived_structs_and_enums(r in record(), l in level(), a in any::<u8>(), p in point()) {
        round_trip(&r)?;
        msgpack_round_trip(&r)?;
        round_trip(&vec![r.clone(), r.clone()])?;
        round_trip(&HashMap::from([("k".to_string(), Some(r))]))?;
        round_trip(&l)?;
        round_trip(&Pair { first: a, second: Some(p.clone()) })?;
        round_trip(&Pair { first: vec![p], second: Level::Low })?;
    }

    #[test]
    fn generic_struct_form_is_read_too(x in -(1i64 << 53)..(1i64 << 53), y in -1e300f64..1e300) {
        let p = Point { x, y };
        // The pre-1.14 dataclass form: a Generic Struct, where integers are doubles.
        let generic = tern_type_transformers::structs::json_to_struct(
            serde_json::json!({"x": p.x as f64, "y": p.y}).as_object().unwrap());
        let lit = literals::scalar(core::scalar::Value::Generic(generic));
        prop_assert_eq!(Point::from_literal(&lit).unwrap(), p);
    }

    #[test]
    fn any_literal_is_ok_or_an_error_never_a_panic(lit in arbitrary_literal()) {
        fn probe<T: FlyteType>(lit: &core::Literal) {
            let _ = T::from_literal(lit);
        }
        probe::<bool>(&lit); probe::<u8>(&lit); probe::<i64>(&lit); probe::<f32>(&lit); probe::<String>(&lit);
        probe::<Bytes>(&lit); probe::<DateTime<Utc>>(&lit); probe::<chrono::Duration>(&lit);
        probe::<std::time::Duration>(&lit); probe::<Vec<Option<u8>>>(&lit); probe::<HashMap<String, Level>>(&lit);
        probe::<Option<Point>>(&lit); probe::<Union3<i64, String, ()>>(&lit); probe::<Value>(&lit);
        probe::<JsonDict>(&lit); probe::<Record>(&lit); probe::<Level>(&lit); probe::<()>(&lit);
    }

    #[test]
    fn wrong_kinds_are_errors(i in any::<i64>(), s in "[a-z]{1,8}", p in point()) {
        let int = i.to_literal().unwrap();
        let text = s.to_literal().unwrap();
        let list = vec![i].to_literal().unwrap();
        let st = p.to_literal().unwrap();
        prop_assert!(String::from_literal(&int).is_err());
        prop_assert!(i64::from_literal(&text).is_err());
        prop_assert!(bool::from_literal(&int).is_err());
        prop_assert!(Point::from_literal(&list).is_err());
        prop_assert!(Point::from_literal(&int).is_err());
        prop_assert!(Vec::<i64>::from_literal(&st).is_err());
        prop_assert!(Vec::<i64>::from_literal(&int).is_err());
        prop_assert!(HashMap::<String, i64>::from_literal(&list).is_err());
        prop_assert!(Level::from_literal(&text).is_err());
        prop_assert!(DateTime::<Utc>::from_literal(&int).is_err());
        prop_assert!(Value::from_literal(&int).is_err());
        prop_assert!(Bytes::from_literal(&st).is_err());
    }

    #[test]
    fn corrupt_msgpack_is_an_error(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let lit = literals::msgpack_binary(bytes);
        let _ = Record::from_literal(&lit);
        let _ = Point::from_literal(&lit);
        let _ = Vec::<Option<Level>>::from_literal(&lit);
        let _ = JsonDict::from_literal(&lit);
        let _ = Value::from_literal(&lit);
    }
}

/// Any literal, including invalid ones (out-of-range timestamps, unnormalized durations,
/// random msgpack payloads, unions without types).
fn arbitrary_literal() -> impl Strategy<Value = core::Literal> {
    use core::primitive::Value as Prim;
    use core::scalar::Value as S;
    let prim = prop_oneof![
        any::<i64>().prop_map(Prim::Integer),
        any::<f64>().prop_map(Prim::FloatValue),
        ".{0,8}".prop_map(Prim::StringValue),
        any::<bool>().prop_map(Prim::Boolean),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Prim::Datetime(prost_types::Timestamp { seconds, nanos })),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Prim::Duration(prost_types::Duration { seconds, nanos })),
    ];
    let leaf = prop_oneof![
        prim.prop_map(literals::primitive),
        Just(literals::none()),
        Just(core::Literal::default()),
        (prop::collection::vec(any::<u8>(), 0..24), prop_oneof![Just("msgpack".to_string()), Just(String::new())])
            .prop_map(|(value, tag)| literals::scalar(S::Binary(core::Binary { value, tag }))),
        json_any()
            .prop_map(|v| literals::scalar(S::Generic(tern_type_transformers::structs::json_to_struct(&object(v))))),
        ".{0,8}".prop_map(|uri| literals::scalar(S::Blob(core::Blob { uri, metadata: None }))),
        ".{0,8}".prop_map(|uri| core::Literal {
            value: Some(core::literal::Value::OffloadedMetadata(core::LiteralOffloadedMetadata {
                uri,
                ..Default::default()
            })),
            ..Default::default()
        }),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(literals::collection),
            prop::collection::btree_map(key(), inner.clone(), 0..4).prop_map(literals::map),
            (inner, prop::option::of(Just(tern_type_transformers::types::simple(core::SimpleType::Integer)))).prop_map(
                |(v, t)| literals::scalar(S::Union(Box::new(core::Union { value: Some(Box::new(v)), r#type: t })))
            ),
        ]
    })
}
