//! Typed literals ⇄ the msgpack values mashumaro writes for dataclass fields.
//!
//! flytekit serializes a dataclass with mashumaro's `MessagePackEncoder`: each field's
//! Python value becomes one msgpack value. [`write_literal`] writes that value for the
//! literal of a field, [`msgpack_to_literal`] reads it back into a literal of a declared
//! type. Derived structs, dataclass attribute inputs and the registry all go through here.
//!
//! | literal | msgpack (as mashumaro writes it) |
//! |---|---|
//! | integer | int, in the smallest encoding (positive values as uint, like Python's msgpack) |
//! | float | float64 |
//! | string, enum value | str |
//! | boolean | bool |
//! | datetime | str, `datetime.isoformat()` (`2024-01-02T03:04:05.123456+00:00`) |
//! | duration | float64, `timedelta.total_seconds()` |
//! | none | nil |
//! | collection / map | array / map |
//! | union | the value it holds |
//! | msgpack binary (nested dataclass, dict) | its payload, spliced in as is |
//! | other binary (bytes) | bin |
//! | generic Struct | map (numbers are doubles) |
//! | file / directory | `{"path": uri}` (FlyteFile / FlyteDirectory) |
//! | structured dataset | `{"uri": uri, "file_format": format}` |
use std::collections::BTreeMap;

use tern_agent_api::core;
use tern_agent_api::core::blob_type::BlobDimensionality;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::primitive::Value as Prim;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::core::SimpleType as S;

use crate::error::TransformError;
use crate::literals::{self, describe, describe_type};
use crate::msgpack::MSGPACK_TAG;
use crate::pytime;

/// The msgpack encoding of `literal`'s value as a dataclass field.
pub fn literal_to_msgpack(literal: &core::Literal) -> Result<Vec<u8>, TransformError> {
    let mut out = Vec::new();
    write_literal(literal, &mut out)?;
    Ok(out)
}

/// Appends the msgpack encoding of `literal`'s value to `out`.
pub fn write_literal(literal: &core::Literal, out: &mut Vec<u8>) -> Result<(), TransformError> {
    match literal.value.as_ref() {
        Some(LitValue::Scalar(s)) => match s.value.as_ref() {
            Some(v) => write_scalar(v, out),
            None => Err(no_msgpack_form(literal)),
        },
        Some(LitValue::Collection(c)) => {
            write_len(out, rmp::encode::write_array_len, c.literals.len())?;
            for (i, item) in c.literals.iter().enumerate() {
                write_literal(item, out).map_err(|e| e.at_index(i))?;
            }
            Ok(())
        }
        Some(LitValue::Map(m)) => write_literal_map(&m.literals, out),
        Some(LitValue::OffloadedMetadata(_)) | None => Err(no_msgpack_form(literal)),
    }
}

fn no_msgpack_form(literal: &core::Literal) -> TransformError {
    TransformError::Unsupported(format!("{} has no msgpack form (cannot be a struct field)", describe(literal)))
}

// Writing into a Vec<u8> cannot fail; lengths beyond u32 are the only error.
fn write_len(
    out: &mut Vec<u8>,
    f: fn(&mut Vec<u8>, u32) -> Result<rmp::Marker, rmp::encode::ValueWriteError>,
    len: usize,
) -> Result<(), TransformError> {
    let len = u32::try_from(len).map_err(|_| TransformError::invalid("msgpack value", "longer than 2^32 - 1"))?;
    let _ = f(out, len);
    Ok(())
}

pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), TransformError> {
    write_len(out, rmp::encode::write_str_len, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_literal_map(entries: &BTreeMap<String, core::Literal>, out: &mut Vec<u8>) -> Result<(), TransformError> {
    write_len(out, rmp::encode::write_map_len, entries.len())?;
    for (k, v) in entries {
        write_str(out, k)?;
        write_literal(v, out).map_err(|e| e.at_key(k))?;
    }
    Ok(())
}

fn write_scalar(value: &ScalarValue, out: &mut Vec<u8>) -> Result<(), TransformError> {
    match value {
        ScalarValue::Primitive(p) => match p.value.as_ref() {
            Some(Prim::Integer(i)) => {
                let _ = rmp::encode::write_sint(out, *i);
            }
            Some(Prim::FloatValue(f)) => {
                let _ = rmp::encode::write_f64(out, *f);
            }
            Some(Prim::StringValue(s)) => write_str(out, s)?,
            Some(Prim::Boolean(b)) => {
                let _ = rmp::encode::write_bool(out, *b);
            }
            Some(Prim::Datetime(t)) => write_str(out, &pytime::isoformat(t))?,
            Some(Prim::Duration(d)) => {
                let _ = rmp::encode::write_f64(out, pytime::total_seconds(d));
            }
            None => return Err(TransformError::Unsupported("an empty primitive has no msgpack form".into())),
        },
        ScalarValue::NoneType(_) => {
            let _ = rmp::encode::write_nil(out);
        }
        ScalarValue::Binary(b) if b.tag == MSGPACK_TAG => out.extend_from_slice(&b.value),
        ScalarValue::Binary(b) => {
            write_len(out, rmp::encode::write_bin_len, b.value.len())?;
            out.extend_from_slice(&b.value);
        }
        ScalarValue::Union(u) => match u.value.as_deref() {
            Some(v) => write_literal(v, out)?,
            None => return Err(TransformError::Unsupported("an empty union value has no msgpack form".into())),
        },
        ScalarValue::Generic(s) => {
            let json = serde_json::Value::Object(crate::structs::struct_to_json(s));
            out.extend_from_slice(&crate::msgpack::json_to_msgpack(&json));
        }
        ScalarValue::Blob(b) => {
            write_len(out, rmp::encode::write_map_len, 1)?;
            write_str(out, "path")?;
            write_str(out, &b.uri)?;
        }
        ScalarValue::StructuredDataset(sd) => {
            let format = sd
                .metadata
                .as_ref()
                .and_then(|m| m.structured_dataset_type.as_ref())
                .map(|t| t.format.as_str())
                .unwrap_or("");
            write_len(out, rmp::encode::write_map_len, 2)?;
            write_str(out, "uri")?;
            write_str(out, &sd.uri)?;
            write_str(out, "file_format")?;
            write_str(out, format)?;
        }
        ScalarValue::Schema(_) | ScalarValue::Error(_) => {
            return Err(TransformError::Unsupported(
                "schema and error literals have no msgpack form (cannot be struct fields)".into(),
            ))
        }
    }
    Ok(())
}

/// Decodes exactly one msgpack value (no trailing bytes) for `rust_type`.
pub fn decode(bytes: &[u8], rust_type: &str) -> Result<rmpv::Value, TransformError> {
    let malformed = |reason: String| TransformError::MalformedMsgpack { rust_type: rust_type.to_owned(), reason };
    let mut cursor = bytes;
    let value = rmpv::decode::read_value(&mut cursor).map_err(|e| malformed(e.to_string()))?;
    if !cursor.is_empty() {
        return Err(malformed(format!("{} trailing bytes after the value", cursor.len())));
    }
    Ok(value)
}

/// Encodes one msgpack value.
pub fn encode(value: &rmpv::Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

/// What a msgpack value is, for messages.
pub fn describe_msgpack(value: &rmpv::Value) -> String {
    match value {
        rmpv::Value::Nil => "nil".into(),
        rmpv::Value::Boolean(b) => format!("boolean {b}"),
        rmpv::Value::Integer(i) => format!("integer {i}"),
        rmpv::Value::F32(f) => format!("float {f}"),
        rmpv::Value::F64(f) => format!("float {f}"),
        rmpv::Value::String(s) => match s.as_str() {
            Some(s) if s.len() <= 40 => format!("string {s:?}"),
            Some(_) => "a long string".into(),
            None => "a string that is not UTF-8".into(),
        },
        rmpv::Value::Binary(b) => format!("bin ({} bytes)", b.len()),
        rmpv::Value::Array(a) => format!("an array of {}", a.len()),
        rmpv::Value::Map(m) => format!("a map of {}", m.len()),
        rmpv::Value::Ext(t, _) => format!("extension type {t}"),
    }
}

fn mismatch(ty: &core::LiteralType, value: &rmpv::Value) -> TransformError {
    TransformError::wrong_kind(describe_type(ty), format!("msgpack {}", describe_msgpack(value)))
}

/// A float that is a whole number in the int64 range (mashumaro reads `1.0` as `int` 1).
fn integral(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every f64 below it in magnitude converts exactly.
    (f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)).then_some(f as i64)
}

/// The literal of type `ty` for a msgpack value mashumaro wrote for a field of that type.
/// Nested dataclasses and untyped structs stay msgpack `Binary` literals.
pub fn msgpack_to_literal(value: &rmpv::Value, ty: &core::LiteralType) -> Result<core::Literal, TransformError> {
    use rmpv::Value as V;
    let Some(t) = ty.r#type.as_ref() else {
        return Err(TransformError::Unsupported("a field with no declared type".into()));
    };
    let prim = literals::primitive;
    match t {
        LitType::Simple(s) => match (S::try_from(*s), value) {
            (Ok(S::Integer), V::Integer(i)) => match i.as_i64() {
                Some(i) => Ok(prim(Prim::Integer(i))),
                None => Err(TransformError::IntegerOutOfRange { value: i.to_string(), target: "int64" }),
            },
            (Ok(S::Integer), V::F64(f)) => {
                integral(*f).map(|i| prim(Prim::Integer(i))).ok_or_else(|| mismatch(ty, value))
            }
            (Ok(S::Integer), V::F32(f)) => {
                integral(f64::from(*f)).map(|i| prim(Prim::Integer(i))).ok_or_else(|| mismatch(ty, value))
            }
            (Ok(S::Float), V::F64(f)) => Ok(prim(Prim::FloatValue(*f))),
            (Ok(S::Float), V::F32(f)) => Ok(prim(Prim::FloatValue(f64::from(*f)))),
            (Ok(S::Float), V::Integer(i)) => Ok(prim(Prim::FloatValue(i.as_f64().ok_or_else(|| mismatch(ty, value))?))),
            (Ok(S::String), V::String(s)) => match s.as_str() {
                Some(s) => Ok(prim(Prim::StringValue(s.to_owned()))),
                None => Err(TransformError::invalid("string", "the msgpack string is not valid UTF-8")),
            },
            (Ok(S::Boolean), V::Boolean(b)) => Ok(prim(Prim::Boolean(*b))),
            (Ok(S::Datetime), V::String(s)) => {
                let text = s.as_str().unwrap_or_default();
                pytime::parse_isoformat(text)
                    .map(|t| prim(Prim::Datetime(t)))
                    .map_err(|why| TransformError::invalid("datetime", why))
            }
            (Ok(S::Duration), V::F64(_) | V::F32(_) | V::Integer(_)) => {
                let secs = value.as_f64().ok_or_else(|| mismatch(ty, value))?;
                pytime::seconds_to_duration(secs, pytime::Resolution::Micros)
                    .map(|d| prim(Prim::Duration(d)))
                    .map_err(|why| TransformError::invalid("duration", why))
            }
            (Ok(S::None), V::Nil) => Ok(literals::none()),
            (Ok(S::Binary), V::Binary(b)) => {
                Ok(literals::scalar(ScalarValue::Binary(core::Binary { value: b.clone(), tag: String::new() })))
            }
            (Ok(S::Struct), _) => Ok(literals::msgpack_binary(encode(value))),
            _ => Err(mismatch(ty, value)),
        },
        LitType::CollectionType(inner) => match value {
            V::Array(items) => {
                let literals = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| msgpack_to_literal(item, inner).map_err(|e| e.at_index(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(literals::collection(literals))
            }
            _ => Err(mismatch(ty, value)),
        },
        LitType::MapValueType(inner) => match value {
            V::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries {
                    let Some(key) = k.as_str() else {
                        return Err(TransformError::wrong_kind(
                            "a map with string keys",
                            format!("msgpack key {}", describe_msgpack(k)),
                        ));
                    };
                    out.insert(key.to_owned(), msgpack_to_literal(v, inner).map_err(|e| e.at_key(key))?);
                }
                Ok(literals::map(out))
            }
            _ => Err(mismatch(ty, value)),
        },
        LitType::UnionType(u) => {
            // mashumaro tries the variants in order; a nil goes to the none variant.
            let mut reasons = Vec::new();
            for variant in &u.variants {
                if value.is_nil() != literals::is_none_type(variant) {
                    continue;
                }
                match msgpack_to_literal(value, variant) {
                    Ok(lit) => return Ok(literals::union_value(lit, variant.clone())),
                    Err(e) => reasons.push(format!("{}: {e}", describe_type(variant))),
                }
            }
            Err(TransformError::NoUnionVariant {
                expected: describe_type(ty),
                found: format!("msgpack {}", describe_msgpack(value)),
                reasons: if reasons.is_empty() { "no variant of that kind".into() } else { reasons.join("; ") },
            })
        }
        LitType::EnumType(e) => match value.as_str() {
            Some(s) if e.values.iter().any(|v| v == s) => Ok(prim(Prim::StringValue(s.to_owned()))),
            Some(s) => Err(TransformError::UnknownEnumValue {
                enum_name: describe_type(ty),
                value: s.to_owned(),
                allowed: e.values.clone(),
            }),
            None => Err(mismatch(ty, value)),
        },
        LitType::Blob(b) => {
            let uri = map_str(value, "path").ok_or_else(|| mismatch(ty, value))?;
            Ok(literals::scalar(ScalarValue::Blob(core::Blob {
                metadata: Some(core::BlobMetadata { r#type: Some(b.clone()) }),
                uri: uri.to_owned(),
            })))
        }
        LitType::StructuredDatasetType(sdt) => {
            let uri = map_str(value, "uri").ok_or_else(|| mismatch(ty, value))?;
            let mut sdt = sdt.clone();
            if let Some(format) = map_str(value, "file_format").filter(|f| !f.is_empty()) {
                sdt.format = format.to_owned();
            }
            Ok(literals::scalar(ScalarValue::StructuredDataset(core::StructuredDataset {
                uri: uri.to_owned(),
                metadata: Some(core::StructuredDatasetMetadata { structured_dataset_type: Some(sdt) }),
            })))
        }
        LitType::Schema(_) => Err(TransformError::Unsupported("schema fields in msgpack".into())),
    }
}

/// `value[key]` when `value` is a map and that entry is a string.
fn map_str<'a>(value: &'a rmpv::Value, key: &str) -> Option<&'a str> {
    match value {
        rmpv::Value::Map(entries) => {
            entries.iter().find(|(k, _)| k.as_str() == Some(key)).and_then(|(_, v)| v.as_str())
        }
        _ => None,
    }
}

/// Whether `ty` is a blob of multiple files (a directory).
pub fn is_directory(b: &core::BlobType) -> bool {
    b.dimensionality == BlobDimensionality::Multipart as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::parse_type_expr;

    fn ty(t: &str) -> core::LiteralType {
        parse_type_expr(t).unwrap()
    }

    #[test]
    fn integers_use_pythons_encodings() {
        // python: msgpack.dumps([1, -2, 300, -200, 70000, 2**40, -2**40])
        let want = hex("9701fecd012cd1ff38ce00011170cf0000010000000000d3ffffff0000000000");
        let lit = literals::collection(
            [1, -2, 300, -200, 70_000, 1 << 40, -(1 << 40)].map(|i| literals::primitive(Prim::Integer(i))).to_vec(),
        );
        assert_eq!(literal_to_msgpack(&lit).unwrap(), want);
        let back = msgpack_to_literal(&decode(&want, "Vec<i64>").unwrap(), &ty("list<integer>")).unwrap();
        assert_eq!(back, lit);
    }

    #[test]
    fn datetimes_durations_and_floats_as_mashumaro() {
        let t = prost_types::Timestamp { seconds: 1_704_164_645, nanos: 123_456_789 };
        let bytes = literal_to_msgpack(&literals::primitive(Prim::Datetime(t))).unwrap();
        assert_eq!(&bytes[..2], b"\xd9\x20"); // str8, as Python writes 32-byte strings
        assert_eq!(&bytes[2..], b"2024-01-02T03:04:05.123456+00:00");
        let d = pytime::micros_to_duration(90_500_000);
        assert_eq!(literal_to_msgpack(&literals::primitive(Prim::Duration(d))).unwrap(), hex("cb4056a00000000000"));
        // A float field holding an int (Python `y: float = 1`) reads as a float; an int field
        // holding 1.0 reads as 1 (mashumaro does the same); 1.5 does not.
        assert_eq!(
            msgpack_to_literal(&rmpv::Value::from(1), &ty("float")).unwrap(),
            literals::primitive(Prim::FloatValue(1.0))
        );
        assert_eq!(
            msgpack_to_literal(&rmpv::Value::F64(1.0), &ty("integer")).unwrap(),
            literals::primitive(Prim::Integer(1))
        );
        let e = msgpack_to_literal(&rmpv::Value::F64(1.5), &ty("integer")).unwrap_err();
        assert_eq!(e.to_string(), "expected integer, found msgpack float 1.5");
    }

    #[test]
    fn unions_enums_and_references() {
        let opt = ty("optional<integer>");
        let none = msgpack_to_literal(&rmpv::Value::Nil, &opt).unwrap();
        assert_eq!(literal_to_msgpack(&none).unwrap(), vec![0xc0]);
        let e = msgpack_to_literal(&rmpv::Value::from("x"), &ty("enum<a, b>")).unwrap_err();
        assert_eq!(e.code(), "TERN-T006");
        let file = msgpack_to_literal(&decode(&hex("81a470617468a4732f6b2f"), "x").unwrap(), &ty("file")).unwrap();
        assert_eq!(literal_to_msgpack(&file).unwrap(), hex("81a470617468a4732f6b2f"));
        let e = msgpack_to_literal(&rmpv::Value::from(3), &ty("list<integer>")).unwrap_err();
        assert_eq!(e.code(), "TERN-T001");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
