//! Task inputs → BigQuery named query parameters (`@name` in the SQL), the way flytekit's
//! connector passes them (`ScalarQueryParameter(name, TYPE, value)`, `parameterMode: NAMED`):
//!
//! | input | BigQuery type | value as sent |
//! |---|---|---|
//! | integer | `INT64` | `"7"` |
//! | float | `FLOAT64` | `"1.5"` (`"NaN"`, `"inf"`, `"-inf"`) |
//! | string | `STRING` | as is |
//! | boolean | `BOOL` | `"true"` / `"false"` |
//! | datetime | `DATETIME` | `"2024-05-01T12:30:15.123456"` (UTC wall clock, flytekit's form); or `TIMESTAMP` `"2024-05-01 12:30:15.123456+00:00"` with `datetime_parameters = "TIMESTAMP"` |
//! | list of the above | `ARRAY<T>` | `arrayValues` (flytekit's connector fails on lists; Tern passes them) |
//! | none / empty optional | the declared type | NULL (no value) |
//!
//! Other inputs (durations, maps, structs, files, dataframes, nested lists) cannot be query
//! parameters: `TERN-J002` names the input. Values are bound by BigQuery, never spliced into the SQL.
use chrono::{DateTime, Utc};
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use tern_agent_api::prelude::{core, AgentError};
use tern_type_transformers::FlyteType;

use crate::codes::bad_input;
use crate::config::DatetimeParameter;
use core::literal::Value as LitValue;
use core::literal_type::Type as LitType;
use core::primitive::Value as Prim;
use core::scalar::Value as ScalarValue;
use core::SimpleType;

/// One parameter per input, sorted by name.
pub fn query_parameters(
    inputs: &core::LiteralMap,
    interface: Option<&core::TypedInterface>,
    datetimes: DatetimeParameter,
) -> Result<Vec<QueryParameter>, AgentError> {
    let declared = |name: &str| {
        interface
            .and_then(|i| i.inputs.as_ref())
            .and_then(|v| v.variables.get(name))
            .and_then(|v| v.r#type.clone())
    };
    let mut names: Vec<&String> = inputs.literals.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let (ty, value) = parameter(name, &inputs.literals[name], declared(name).as_ref(), datetimes)?;
            Ok(QueryParameter { name: Some(name.clone()), parameter_type: Some(ty), parameter_value: Some(value) })
        })
        .collect()
}

fn scalar_type(name: &str) -> QueryParameterType {
    QueryParameterType { array_type: None, struct_types: None, r#type: name.to_owned() }
}

fn value(v: Option<String>) -> QueryParameterValue {
    QueryParameterValue { array_values: None, struct_values: None, value: v }
}

/// The BigQuery type of a declared simple type.
fn type_of_simple(s: SimpleType, datetimes: DatetimeParameter) -> Option<&'static str> {
    Some(match s {
        SimpleType::Integer => "INT64",
        SimpleType::Float => "FLOAT64",
        SimpleType::String => "STRING",
        SimpleType::Boolean => "BOOL",
        SimpleType::Datetime => match datetimes {
            DatetimeParameter::Datetime => "DATETIME",
            DatetimeParameter::Timestamp => "TIMESTAMP",
        },
        _ => return None,
    })
}

/// The BigQuery type a declared literal type becomes (the non-none variant of an optional).
fn type_of_declared(ty: &core::LiteralType, datetimes: DatetimeParameter) -> Option<QueryParameterType> {
    match &ty.r#type {
        Some(LitType::Simple(s)) => type_of_simple(SimpleType::try_from(*s).ok()?, datetimes).map(scalar_type),
        Some(LitType::CollectionType(inner)) => {
            let element = type_of_declared(inner, datetimes)?;
            element.array_type.is_none().then(|| QueryParameterType {
                array_type: Some(Box::new(element)),
                struct_types: None,
                r#type: "ARRAY".into(),
            })
        }
        Some(LitType::UnionType(u)) => {
            let mut variants = u.variants.iter().filter(|v| !is_none_type(v));
            match (variants.next(), variants.next()) {
                (Some(only), None) => type_of_declared(only, datetimes),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_none_type(ty: &core::LiteralType) -> bool {
    matches!(ty.r#type, Some(LitType::Simple(s)) if s == SimpleType::None as i32)
}

fn parameter(
    name: &str,
    lit: &core::Literal,
    declared: Option<&core::LiteralType>,
    datetimes: DatetimeParameter,
) -> Result<(QueryParameterType, QueryParameterValue), AgentError> {
    let unsupported = |what: &str| {
        bad_input(format!(
            "input {name:?} is {what}, which cannot be a BigQuery query parameter \
             (integers, floats, strings, booleans, datetimes, lists of those, and none can)"
        ))
    };
    match &lit.value {
        Some(LitValue::Scalar(scalar)) => match &scalar.value {
            Some(ScalarValue::Primitive(p)) => {
                let (ty, v) = primitive(name, p, lit, datetimes)?;
                Ok((scalar_type(ty), value(Some(v))))
            }
            Some(ScalarValue::NoneType(_)) => match declared.and_then(|d| type_of_declared(d, datetimes)) {
                Some(ty) => Ok((ty, value(None))),
                None => Err(bad_input(format!(
                    "input {name:?} is none and its declared type gives no BigQuery type for a NULL parameter"
                ))),
            },
            Some(ScalarValue::Union(u)) => {
                let inner = u.value.as_deref().ok_or_else(|| unsupported("an empty union"))?;
                // A none inside an optional takes the optional's declared type; a value its variant's.
                let inner_is_none = matches!(&inner.value, Some(LitValue::Scalar(s)) if matches!(s.value, Some(ScalarValue::NoneType(_))));
                let inner_type = if inner_is_none { declared.or(u.r#type.as_ref()) } else { u.r#type.as_ref().or(declared) };
                parameter(name, inner, inner_type, datetimes)
            }
            Some(ScalarValue::Blob(_)) => Err(unsupported("a file or directory")),
            Some(ScalarValue::StructuredDataset(_)) | Some(ScalarValue::Schema(_)) => Err(unsupported("a dataframe")),
            Some(ScalarValue::Generic(_)) | Some(ScalarValue::Binary(_)) => Err(unsupported("a struct or dataclass")),
            _ => Err(unsupported("a literal of an unsupported kind")),
        },
        Some(LitValue::Collection(c)) => {
            let element_declared = match declared.map(|d| &d.r#type) {
                Some(Some(LitType::CollectionType(inner))) => Some(inner.as_ref().clone()),
                _ => None,
            };
            let mut element_type: Option<&'static str> = element_declared
                .as_ref()
                .and_then(|d| type_of_declared(d, datetimes))
                .filter(|t| t.array_type.is_none())
                .map(|t| type_name_static(&t.r#type));
            let mut values = Vec::with_capacity(c.literals.len());
            for (i, item) in c.literals.iter().enumerate() {
                let p = match &item.value {
                    Some(LitValue::Scalar(s)) => match &s.value {
                        Some(ScalarValue::Primitive(p)) => p,
                        Some(ScalarValue::NoneType(_)) => {
                            return Err(bad_input(format!("input {name:?}[{i}] is none: BigQuery arrays cannot hold NULL")))
                        }
                        _ => return Err(unsupported("a list of non-scalar values")),
                    },
                    _ => return Err(unsupported("a list of lists or maps")),
                };
                let (ty, v) = primitive(&format!("{name}[{i}]"), p, item, datetimes)?;
                match element_type {
                    Some(t) if t != ty => {
                        return Err(bad_input(format!("input {name:?} mixes {t} and {ty} elements: a BigQuery array has one type")))
                    }
                    _ => element_type = Some(ty),
                }
                values.push(value(Some(v)));
            }
            let element = element_type.ok_or_else(|| {
                bad_input(format!("input {name:?} is an empty list whose declared type gives no BigQuery element type"))
            })?;
            Ok((
                QueryParameterType { array_type: Some(Box::new(scalar_type(element))), struct_types: None, r#type: "ARRAY".into() },
                QueryParameterValue { array_values: Some(values), struct_values: None, value: None },
            ))
        }
        Some(LitValue::Map(_)) => Err(unsupported("a map")),
        Some(LitValue::OffloadedMetadata(_)) => Err(unsupported("an offloaded literal")),
        None => Err(unsupported("an empty literal")),
    }
}

fn type_name_static(t: &str) -> &'static str {
    match t {
        "INT64" => "INT64",
        "FLOAT64" => "FLOAT64",
        "STRING" => "STRING",
        "BOOL" => "BOOL",
        "DATETIME" => "DATETIME",
        _ => "TIMESTAMP",
    }
}

fn primitive(
    name: &str,
    p: &core::Primitive,
    lit: &core::Literal,
    datetimes: DatetimeParameter,
) -> Result<(&'static str, String), AgentError> {
    Ok(match &p.value {
        Some(Prim::Integer(i)) => ("INT64", i.to_string()),
        Some(Prim::FloatValue(f)) => ("FLOAT64", float_text(*f)),
        Some(Prim::StringValue(s)) => ("STRING", s.clone()),
        Some(Prim::Boolean(b)) => ("BOOL", b.to_string()),
        Some(Prim::Datetime(_)) => {
            let dt = DateTime::<Utc>::from_literal(lit)
                .map_err(|e| bad_input(format!("input {name:?}: {e}")))?;
            match datetimes {
                DatetimeParameter::Datetime => ("DATETIME", dt.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
                DatetimeParameter::Timestamp => ("TIMESTAMP", timestamp_text(&dt)),
            }
        }
        Some(Prim::Duration(_)) => {
            return Err(bad_input(format!(
                "input {name:?} is a duration, which cannot be a BigQuery query parameter (pass seconds as a float)"
            )))
        }
        None => return Err(bad_input(format!("input {name:?} is an empty primitive"))),
    })
}

/// Python's `str(float)` spellings for the values JSON has no number for.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        f.to_string()
    }
}

/// Python's `str(datetime)` of a UTC instant, as google-cloud-bigquery sends a TIMESTAMP.
fn timestamp_text(dt: &DateTime<Utc>) -> String {
    if dt.timestamp_subsec_micros() == 0 {
        dt.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_type_transformers::LiteralMapBuilder;

    fn json(params: &[QueryParameter]) -> serde_json::Value {
        serde_json::to_value(params).unwrap()
    }

    #[test]
    fn scalars_are_typed_like_flytekit_sends_them() {
        let dt = DateTime::parse_from_rfc3339("2024-05-01T12:30:15.123456Z").unwrap().with_timezone(&Utc);
        let inputs = LiteralMapBuilder::new()
            .with("i", &7i64).unwrap()
            .with("f", &1.5f64).unwrap()
            .with("s", &"x'y".to_owned()).unwrap()
            .with("b", &true).unwrap()
            .with("d", &dt).unwrap()
            .build();
        let got = json(&query_parameters(&inputs, None, DatetimeParameter::Datetime).unwrap());
        // flytekit 1.16.31 + google-cloud-bigquery 3.47 (QueryJobConfig.to_api_repr()), FLOAT64 as text.
        assert_eq!(
            got,
            serde_json::json!([
                {"name": "b", "parameterType": {"type": "BOOL"}, "parameterValue": {"value": "true"}},
                {"name": "d", "parameterType": {"type": "DATETIME"}, "parameterValue": {"value": "2024-05-01T12:30:15.123456"}},
                {"name": "f", "parameterType": {"type": "FLOAT64"}, "parameterValue": {"value": "1.5"}},
                {"name": "i", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "7"}},
                {"name": "s", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "x'y"}},
            ])
        );
        let ts = json(&query_parameters(&inputs, None, DatetimeParameter::Timestamp).unwrap());
        assert_eq!(ts[1]["parameterValue"]["value"], "2024-05-01 12:30:15.123456+00:00");
        assert_eq!(ts[1]["parameterType"]["type"], "TIMESTAMP");
        assert_eq!(float_text(f64::NEG_INFINITY), "-inf");
        assert_eq!(float_text(100.0), "100");
    }

    #[test]
    fn lists_become_arrays_and_nones_typed_nulls() {
        let inputs = LiteralMapBuilder::new()
            .with("ids", &vec![1i64, 2]).unwrap()
            .with("none", &Option::<i64>::None).unwrap()
            .with("empty", &Vec::<String>::new()).unwrap()
            .build();
        let interface = core::TypedInterface {
            inputs: Some(core::VariableMap {
                variables: [
                    ("ids", Vec::<i64>::literal_type()),
                    ("none", Option::<i64>::literal_type()),
                    ("empty", Vec::<String>::literal_type()),
                ]
                .into_iter()
                .map(|(n, t)| (n.to_owned(), core::Variable { r#type: Some(t), ..Default::default() }))
                .collect(),
            }),
            outputs: None,
        };
        let got = json(&query_parameters(&inputs, Some(&interface), DatetimeParameter::Datetime).unwrap());
        assert_eq!(got[0], serde_json::json!({"name": "empty", "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}}, "parameterValue": {"arrayValues": []}}));
        assert_eq!(got[1], serde_json::json!({"name": "ids", "parameterType": {"type": "ARRAY", "arrayType": {"type": "INT64"}}, "parameterValue": {"arrayValues": [{"value": "1"}, {"value": "2"}]}}));
        assert_eq!(got[2], serde_json::json!({"name": "none", "parameterType": {"type": "INT64"}, "parameterValue": {}}));
    }

    #[test]
    fn unsupported_inputs_name_the_input() {
        let inputs = LiteralMapBuilder::new().with("wait", &chrono::Duration::seconds(3)).unwrap().build();
        let e = query_parameters(&inputs, None, DatetimeParameter::Datetime).unwrap_err();
        assert!(e.message.contains("\"wait\"") && e.code == crate::codes::BAD_INPUT, "{e}");
        let m: std::collections::BTreeMap<String, i64> = [("a".to_owned(), 1)].into();
        let inputs = LiteralMapBuilder::new().with("m", &m).unwrap().build();
        assert!(query_parameters(&inputs, None, DatetimeParameter::Datetime).unwrap_err().message.contains("a map"));
        let inputs = LiteralMapBuilder::new().with("n", &Option::<i64>::None).unwrap().build();
        assert!(query_parameters(&inputs, None, DatetimeParameter::Datetime).is_err(), "no declared type for NULL");
    }
}
