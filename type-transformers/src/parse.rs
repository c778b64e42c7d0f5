//! Values from text (`--input k=v`) and from JSON (YAML defaults and constant bindings)
//! into Flyte literals of a declared type.
//!
//! Nothing is coerced silently: `"1.5"` is not an integer, a JSON `1.0` is not an
//! integer, a number is not a string. Parsing the *text* `"2"` as a float is fine: the
//! text is read as the declared type, there is no type conversion involved.
use serde_json::Value as Json;

use crate::literals::{self, is_none_type, none, primitive, scalar};
use crate::structs::json_to_struct;
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;

use crate::types::{type_expr, TypeError};

fn bad(ty: &core::LiteralType, text: impl Into<String>, reason: impl Into<String>) -> TypeError {
    TypeError::BadValue { expected: type_expr(ty), text: text.into(), reason: reason.into() }
}

/// Parses the text form of a value of type `ty`.
///
/// | type | text |
/// |---|---|
/// | integer | `42`, `-7` |
/// | float | `1.5`, `2`, `1e-3` |
/// | boolean | `true` / `false` (any case) |
/// | string | taken as is |
/// | datetime | RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00+02:00`) or a date `2024-05-01` (midnight UTC) |
/// | duration | `90s`, `1h30m`, `250ms`, `2d`, or a number of seconds `1.5` |
/// | struct, list, map | JSON |
/// | file, directory, dataframe | a path or URI |
/// | none | empty, `none` or `null` |
/// | optional / union | `none`/`null`/empty for a none variant, else the first variant (in declared order) that reads the text |
/// | enum | one of the values |
pub fn parse_literal(text: &str, ty: &core::LiteralType) -> Result<core::Literal, TypeError> {
    use core::SimpleType as S;
    let Some(t) = ty.r#type.as_ref() else {
        return Err(bad(ty, text, "the declared type is empty"));
    };
    match t {
        LitType::Simple(s) => match S::try_from(*s) {
            Ok(S::Integer) => text
                .trim()
                .parse::<i64>()
                .map(|i| primitive(Prim::Integer(i)))
                .map_err(|e| bad(ty, text, format!("not a whole number ({e})"))),
            Ok(S::Float) => match text.trim().parse::<f64>() {
                Ok(f) => Ok(primitive(Prim::FloatValue(f))),
                Err(e) => Err(bad(ty, text, format!("not a number ({e})"))),
            },
            Ok(S::Boolean) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(primitive(Prim::Boolean(true))),
                "false" => Ok(primitive(Prim::Boolean(false))),
                _ => Err(bad(ty, text, "expected true or false")),
            },
            Ok(S::String) => Ok(primitive(Prim::StringValue(text.to_owned()))),
            Ok(S::Datetime) => {
                parse_datetime(text.trim()).map(|ts| primitive(Prim::Datetime(ts))).map_err(|why| bad(ty, text, why))
            }
            Ok(S::Duration) => {
                parse_duration(text.trim()).map(|d| primitive(Prim::Duration(d))).map_err(|why| bad(ty, text, why))
            }
            Ok(S::None) => match text.trim() {
                "" | "none" | "None" | "null" => Ok(none()),
                _ => Err(bad(ty, text, "expected none, null or nothing")),
            },
            Ok(S::Struct) => literal_from_json(&json_text(text, ty)?, ty),
            _ => Err(bad(ty, text, "values of this type cannot be given as text")),
        },
        LitType::CollectionType(_) | LitType::MapValueType(_) => literal_from_json(&json_text(text, ty)?, ty),
        LitType::Blob(_) | LitType::StructuredDatasetType(_) => location(text, ty),
        LitType::EnumType(e) => enum_value(text, &e.values, ty),
        LitType::UnionType(u) => {
            let is_null = matches!(text.trim(), "" | "none" | "None" | "null");
            union_value(ty, &u.variants, text, |variant| {
                if is_none_type(variant) && !is_null {
                    return Err(bad(variant, text, "not none"));
                }
                parse_literal(text, variant)
            })
        }
        LitType::Schema(_) => Err(bad(ty, text, "schema values are not supported; use dataframe")),
    }
}

/// Converts a JSON value (a YAML default or constant binding, converted to JSON) into a
/// literal of type `ty`. Strings are read with [`parse_literal`] for the scalar types that
/// have no JSON form (datetime, duration, file, …) and for numbers written in quotes.
pub fn literal_from_json(value: &Json, ty: &core::LiteralType) -> Result<core::Literal, TypeError> {
    use core::SimpleType as S;
    let Some(t) = ty.r#type.as_ref() else {
        return Err(bad(ty, value.to_string(), "the declared type is empty"));
    };
    let shown = || value.to_string();
    match (t, value) {
        (LitType::UnionType(u), _) => union_value(ty, &u.variants, &shown(), |variant| {
            if is_none_type(variant) != value.is_null() {
                return Err(bad(variant, shown(), "variant does not apply"));
            }
            literal_from_json(value, variant)
        }),
        // Quoted scalars, and the types whose only JSON form is a string.
        (_, Json::String(s)) if !matches!(t, LitType::Simple(x) if *x == S::String as i32) => match t {
            LitType::Simple(x) if *x == S::Struct as i32 => Err(bad(ty, shown(), "expected a JSON object")),
            LitType::CollectionType(_) => Err(bad(ty, shown(), "expected a list")),
            LitType::MapValueType(_) => Err(bad(ty, shown(), "expected a mapping")),
            _ => parse_literal(s, ty),
        },
        (LitType::Simple(s), v) => match (S::try_from(*s), v) {
            (Ok(S::Integer), Json::Number(n)) => n
                .as_i64()
                .map(|i| primitive(Prim::Integer(i)))
                .ok_or_else(|| bad(ty, shown(), "not a whole number in the 64-bit range")),
            (Ok(S::Float), Json::Number(n)) => {
                n.as_f64().map(|f| primitive(Prim::FloatValue(f))).ok_or_else(|| bad(ty, shown(), "not a number"))
            }
            (Ok(S::Boolean), Json::Bool(b)) => Ok(primitive(Prim::Boolean(*b))),
            (Ok(S::String), Json::String(s)) => Ok(primitive(Prim::StringValue(s.clone()))),
            (Ok(S::Duration), Json::Number(n)) => n
                .as_f64()
                .and_then(seconds_to_duration)
                .map(|d| primitive(Prim::Duration(d)))
                .ok_or_else(|| bad(ty, shown(), "not a valid number of seconds")),
            (Ok(S::None), Json::Null) => Ok(none()),
            (Ok(S::Struct), Json::Object(o)) => Ok(scalar(ScalarValue::Generic(json_to_struct(o)))),
            (Ok(S::String), _) => Err(bad(ty, shown(), "expected a string (quote it in YAML)")),
            (Ok(S::Struct), _) => Err(bad(ty, shown(), "expected a JSON object")),
            (Ok(s), _) => Err(bad(ty, shown(), format!("expected a {} value", type_expr(&crate::types::simple(s))))),
            (Err(_), _) => Err(bad(ty, shown(), "unknown simple type")),
        },
        (LitType::CollectionType(inner), Json::Array(items)) => {
            let literals = items
                .iter()
                .enumerate()
                .map(|(i, item)| literal_from_json(item, inner).map_err(|e| nested(e, &format!("item {i}"))))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(core::Literal {
                value: Some(LitValue::Collection(core::LiteralCollection { literals })),
                ..Default::default()
            })
        }
        (LitType::MapValueType(inner), Json::Object(o)) => {
            let literals = o
                .iter()
                .map(|(k, v)| {
                    literal_from_json(v, inner).map(|l| (k.clone(), l)).map_err(|e| nested(e, &format!("key {k:?}")))
                })
                .collect::<Result<_, _>>()?;
            Ok(core::Literal { value: Some(LitValue::Map(core::LiteralMap { literals })), ..Default::default() })
        }
        (LitType::CollectionType(_), _) => Err(bad(ty, shown(), "expected a list")),
        (LitType::MapValueType(_), _) => Err(bad(ty, shown(), "expected a mapping with string keys")),
        _ => Err(bad(ty, shown(), "wrong kind of value")),
    }
}

/// Prefixes an inner value error with where it sits (`item 2`, `key "a"`).
fn nested(e: TypeError, at: &str) -> TypeError {
    match e {
        TypeError::BadValue { expected, text, reason } => {
            TypeError::BadValue { expected, text, reason: format!("{reason} (at {at})") }
        }
        other => other,
    }
}

fn json_text(text: &str, ty: &core::LiteralType) -> Result<Json, TypeError> {
    serde_json::from_str(text).map_err(|e| bad(ty, text, format!("not valid JSON ({e})")))
}

/// A file/directory/dataframe literal pointing at `text` (a path or URI, kept as given).
fn location(text: &str, ty: &core::LiteralType) -> Result<core::Literal, TypeError> {
    let uri = text.trim();
    if uri.is_empty() {
        return Err(bad(ty, text, "expected a path or URI"));
    }
    match ty.r#type.as_ref() {
        Some(LitType::Blob(b)) => Ok(scalar(ScalarValue::Blob(core::Blob {
            metadata: Some(core::BlobMetadata { r#type: Some(b.clone()) }),
            uri: uri.to_owned(),
        }))),
        Some(LitType::StructuredDatasetType(sd)) => {
            Ok(scalar(ScalarValue::StructuredDataset(core::StructuredDataset {
                uri: uri.to_owned(),
                metadata: Some(core::StructuredDatasetMetadata { structured_dataset_type: Some(sd.clone()) }),
            })))
        }
        _ => Err(bad(ty, text, "not a file, directory or dataframe type")),
    }
}

fn enum_value(text: &str, values: &[String], ty: &core::LiteralType) -> Result<core::Literal, TypeError> {
    if values.iter().any(|v| v == text) {
        Ok(primitive(Prim::StringValue(text.to_owned())))
    } else {
        Err(bad(ty, text, format!("expected one of {}", values.join(", "))))
    }
}

/// The first variant that accepts the value, wrapped as flytekit wraps union values:
/// `Scalar.union{value, type = the chosen variant (with its structure tag)}`.
fn union_value(
    ty: &core::LiteralType,
    variants: &[core::LiteralType],
    shown: &str,
    mut try_variant: impl FnMut(&core::LiteralType) -> Result<core::Literal, TypeError>,
) -> Result<core::Literal, TypeError> {
    let mut reasons = Vec::new();
    for variant in variants {
        match try_variant(variant) {
            Ok(value) => return Ok(literals::union_value(value, variant.clone())),
            Err(TypeError::BadValue { reason, .. }) => reasons.push(format!("{}: {reason}", type_expr(variant))),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(bad(ty, shown, format!("no variant accepts it ({})", reasons.join("; "))))
}

fn parse_datetime(text: &str) -> Result<prost_types::Timestamp, String> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(prost_types::Timestamp { seconds: dt.timestamp(), nanos: dt.timestamp_subsec_nanos() as i32 });
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => {
            let dt = d.and_time(chrono::NaiveTime::MIN).and_utc();
            Ok(prost_types::Timestamp { seconds: dt.timestamp(), nanos: 0 })
        }
        Err(_) => Err("expected RFC 3339 (e.g. 2024-05-01T12:00:00Z) or a date YYYY-MM-DD".into()),
    }
}

/// Text and JSON a user typed keep nanoseconds.
fn seconds_to_duration(secs: f64) -> Option<prost_types::Duration> {
    crate::pytime::seconds_to_duration(secs, crate::pytime::Resolution::Nanos).ok()
}

/// `90s`, `1h30m`, `250ms`, `1.5` (seconds), `-5s`; units d, h, m, s, ms, us, ns.
pub fn parse_duration(text: &str) -> Result<prost_types::Duration, String> {
    const HELP: &str = "expected a duration such as 90s, 1h30m, 250ms or a number of seconds";
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if body.is_empty() {
        return Err(HELP.into());
    }
    let total = if let Ok(secs) = body.parse::<f64>() {
        secs
    } else {
        let mut total = 0.0;
        let mut rest = body;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if num_len == 0 {
                return Err(HELP.into());
            }
            let n: f64 = rest[..num_len].parse().map_err(|_| HELP.to_owned())?;
            rest = &rest[num_len..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let factor = match &rest[..unit_len] {
                "d" => 86_400.0,
                "h" => 3_600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" | "µs" => 1e-6,
                "ns" => 1e-9,
                "" => return Err(format!("{HELP} (a number inside a duration needs a unit)")),
                u => return Err(format!("{HELP} (unknown unit {u:?})")),
            };
            total += n * factor;
            rest = &rest[unit_len..];
        }
        total
    };
    seconds_to_duration(if neg { -total } else { total }).ok_or_else(|| format!("{HELP} (out of range)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::parse_type_expr;
    use serde_json::json;

    fn ty(t: &str) -> core::LiteralType {
        parse_type_expr(t).unwrap()
    }

    fn sv(l: &core::Literal) -> &ScalarValue {
        match &l.value {
            Some(LitValue::Scalar(s)) => s.value.as_ref().expect("scalar has a value"),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn prim(l: &core::Literal) -> &Prim {
        match sv(l) {
            ScalarValue::Primitive(core::Primitive { value: Some(p) }) => p,
            other => panic!("not a primitive: {other:?}"),
        }
    }

    #[test]
    fn parses_scalar_text() {
        assert_eq!(prim(&parse_literal("42", &ty("integer")).unwrap()), &Prim::Integer(42));
        assert_eq!(prim(&parse_literal(" -7 ", &ty("integer")).unwrap()), &Prim::Integer(-7));
        assert_eq!(prim(&parse_literal("1.5", &ty("float")).unwrap()), &Prim::FloatValue(1.5));
        assert_eq!(prim(&parse_literal("2", &ty("float")).unwrap()), &Prim::FloatValue(2.0));
        assert_eq!(prim(&parse_literal("TRUE", &ty("boolean")).unwrap()), &Prim::Boolean(true));
        assert_eq!(prim(&parse_literal(" a b ", &ty("string")).unwrap()), &Prim::StringValue(" a b ".into()));
        let Prim::Datetime(ts) = prim(&parse_literal("2024-05-01T12:00:00.5+02:00", &ty("datetime")).unwrap()).clone()
        else {
            panic!()
        };
        assert_eq!((ts.seconds, ts.nanos), (1_714_557_600, 500_000_000));
        let Prim::Datetime(ts) = prim(&parse_literal("1970-01-02", &ty("datetime")).unwrap()).clone() else { panic!() };
        assert_eq!(ts.seconds, 86_400);
    }

    #[test]
    fn parses_durations() {
        for (text, secs, nanos) in [
            ("90s", 90, 0),
            ("1h30m", 5400, 0),
            ("1.5", 1, 500_000_000),
            ("250ms", 0, 250_000_000),
            ("2d", 172_800, 0),
            ("-5s", -5, 0),
        ] {
            let d = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((d.seconds, d.nanos), (secs, nanos), "{text}");
        }
        for text in ["", "5x", "h", "1h30", "--1s"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations_that_round_up_to_a_whole_second_carry_into_seconds() {
        // `tern run -i x=1.9999999999`: the fraction rounds to 1e9 nanos, which protobuf forbids.
        for (text, secs) in [("1.9999999999", 2), ("-1.9999999999", -2), ("0.99999999995", 1), ("59.9999999999s", 60)] {
            let Prim::Duration(d) = prim(&parse_literal(text, &ty("duration")).unwrap()).clone() else { panic!() };
            assert_eq!((d.seconds, d.nanos), (secs, 0), "{text}");
        }
        let Prim::Duration(d) = prim(&literal_from_json(&json!(1.9999999999), &ty("duration")).unwrap()).clone() else {
            panic!()
        };
        assert_eq!((d.seconds, d.nanos), (2, 0));
    }

    #[test]
    fn refuses_silent_coercion() {
        for (text, t) in
            [("1.5", "integer"), ("x", "float"), ("yes", "boolean"), ("90", "datetime"), ("[1,", "list<integer>")]
        {
            let e = parse_literal(text, &ty(t)).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("{text:?}")) && msg.contains(t), "{msg}");
            assert_eq!(e.code(), "TERN-E111");
        }
        assert!(literal_from_json(&json!(1.0), &ty("integer")).is_err());
        assert!(literal_from_json(&json!(1.5), &ty("integer")).is_err());
        assert!(literal_from_json(&json!(42), &ty("string")).is_err());
        assert!(literal_from_json(&json!(true), &ty("integer")).is_err());
    }

    #[test]
    fn parses_collections_and_structs_as_json() {
        let l = parse_literal("[1, 2, 3]", &ty("list<integer>")).unwrap();
        let Some(LitValue::Collection(c)) = l.value else { panic!() };
        assert_eq!(c.literals.len(), 3);
        let m = parse_literal(r#"{"a": [1.5], "b": []}"#, &ty("map<list<float>>")).unwrap();
        let Some(LitValue::Map(m)) = m.value else { panic!() };
        assert_eq!(m.literals.len(), 2);
        let s = parse_literal(r#"{"k": {"n": 1}}"#, &ty("struct")).unwrap();
        assert!(matches!(sv(&s), ScalarValue::Generic(_)));
        let e = parse_literal(r#"[1, "x"]"#, &ty("list<integer>")).unwrap_err().to_string();
        assert!(e.contains("item 1"), "{e}");
    }

    #[test]
    fn parses_locations() {
        let f = parse_literal("s3://bucket/a.csv", &ty("file<csv>")).unwrap();
        let ScalarValue::Blob(b) = sv(&f).clone() else { panic!() };
        assert_eq!(b.uri, "s3://bucket/a.csv");
        assert_eq!(b.metadata.unwrap().r#type.unwrap().format, "csv");
        let d = parse_literal("/data/t", &ty("dataframe")).unwrap();
        let ScalarValue::StructuredDataset(sd) = sv(&d).clone() else { panic!() };
        assert_eq!(sd.uri, "/data/t");
        assert!(parse_literal("", &ty("directory")).is_err());
    }

    #[test]
    fn unions_pick_the_first_variant_that_fits_and_carry_its_tag() {
        let pick = |l: core::Literal| match sv(&l).clone() {
            ScalarValue::Union(u) => (u.r#type.unwrap().structure.unwrap().tag, u.value.unwrap()),
            other => panic!("{other:?}"),
        };
        let opt = ty("optional<integer>");
        assert_eq!(pick(parse_literal("5", &opt).unwrap()).0, "int");
        assert_eq!(pick(parse_literal("none", &opt).unwrap()).0, "none");
        assert_eq!(pick(literal_from_json(&json!(null), &opt).unwrap()).0, "none");
        assert_eq!(pick(literal_from_json(&json!(5), &opt).unwrap()).0, "int");
        let u = ty("union<integer, string>");
        assert_eq!(pick(parse_literal("5", &u).unwrap()).0, "int");
        assert_eq!(pick(parse_literal("five", &u).unwrap()).0, "str");
        let e = parse_literal("x", &opt).unwrap_err().to_string();
        assert!(e.contains("no variant accepts it"), "{e}");
    }

    #[test]
    fn json_reads_quoted_scalars_and_enums() {
        assert_eq!(prim(&literal_from_json(&json!("42"), &ty("integer")).unwrap()), &Prim::Integer(42));
        assert!(
            matches!(prim(&literal_from_json(&json!("90s"), &ty("duration")).unwrap()), Prim::Duration(d) if d.seconds == 90)
        );
        assert!(
            matches!(prim(&literal_from_json(&json!(1.5), &ty("duration")).unwrap()), Prim::Duration(d) if d.nanos == 500_000_000)
        );
        assert_eq!(
            prim(&literal_from_json(&json!("red"), &ty("enum<red, green>")).unwrap()),
            &Prim::StringValue("red".into())
        );
        assert!(literal_from_json(&json!("blue"), &ty("enum<red, green>")).is_err());
        assert!(literal_from_json(&json!("[1]"), &ty("list<integer>")).is_err());
    }
}
