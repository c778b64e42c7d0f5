//! A finished job's outputs.
//!
//! - As flytekit's connector: `results` = `StructuredDataset(uri="bq://<project>:<dataset>.<table>")`
//!   of the job's destination table (`configuration.query.destinationTable`; BigQuery's anonymous
//!   table for a plain `SELECT`). The literal is the one flytekit writes: that uri, format `""`, no
//!   columns.
//! - Materialized (`materialize = "parquet"`): the rows are read with jobs.getQueryResults, page by
//!   page (`page_size` rows), converted to Arrow and written as one Parquet file at
//!   `<output_prefix>/results/00000` (flytekit's layout); `results` is that dataset, with its
//!   columns typed, so a downstream DuckDB task (or any flytekit task) reads it.
//!
//! Column types when materializing:
//!
//! | BigQuery | Arrow / Parquet | Flyte column |
//! |---|---|---|
//! | `INT64` | Int64 | integer |
//! | `FLOAT64` | Float64 | float |
//! | `NUMERIC` | Decimal128(38, 9) | float |
//! | `BOOL` | Boolean | boolean |
//! | `STRING` | Utf8 | string |
//! | `BYTES` | Binary | string |
//! | `TIMESTAMP` | Timestamp(µs, UTC) | datetime |
//! | `DATETIME` | Timestamp(µs) | datetime |
//! | `DATE` | Date32 | datetime |
//! | `BIGNUMERIC`, `TIME`, `GEOGRAPHY`, `JSON`, `INTERVAL` | Utf8 (BigQuery's text) | string |
//! | `REPEATED` fields and `RECORD`s | Utf8 holding the value as JSON | string |
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime};
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_reference::TableReference;
use gcp_bigquery_client::model::table_row::TableRow;
use serde_json::Value;
use tern_agent_api::prelude::{core, join_uri, AgentError, DataStore};
use tern_type_transformers::{write_parquet, FlyteType, StructuredDataset};

use crate::client::BigQuery;
use crate::codes::{self, materialize};
use crate::template::RESULTS;

/// `bq://project:dataset.table`, flytekit's uri for a BigQuery table.
pub fn bq_uri(table: &TableReference) -> String {
    format!("bq://{}:{}.{}", table.project_id, table.dataset_id, table.table_id)
}

/// flytekit's output: `results` pointing at the table.
pub fn table_outputs(table: &TableReference) -> core::LiteralMap {
    let sd = StructuredDataset { uri: bq_uri(table), format: String::new(), columns: Vec::new() };
    let mut out = core::LiteralMap::default();
    out.literals.insert(RESULTS.to_owned(), sd.to_dataset_literal());
    out
}

/// Where a materialized `results` goes.
pub fn results_dir(output_prefix: &str) -> String {
    join_uri(output_prefix, RESULTS)
}

/// Reads every row of the job's result and writes it as Parquet under `output_prefix`.
pub async fn materialize_results(
    client: &BigQuery,
    store: &dyn DataStore,
    (project, job_id, location): (&str, &str, Option<&str>),
    output_prefix: &str,
    page_size: u32,
    max_rows: u64,
) -> Result<core::LiteralMap, AgentError> {
    let mut token: Option<String> = None;
    let mut schema: Option<(SchemaRef, Vec<TableFieldSchema>)> = None;
    let mut batches = Vec::new();
    let mut rows_read: u64 = 0;
    loop {
        let page = client.results_page(project, job_id, location, token.clone(), page_size).await?;
        if page.job_complete == Some(false) {
            return Err(AgentError::unavailable(codes::BACKEND, format!("job {job_id} is DONE but its results are not complete yet")));
        }
        if schema.is_none() {
            let fields = page.schema.as_ref().and_then(|s| s.fields.clone()).unwrap_or_default();
            schema = Some((arrow_schema(&fields), fields));
        }
        let (arrow, fields) = schema.as_ref().expect("set above");
        let rows = page.rows.unwrap_or_default();
        rows_read += rows.len() as u64;
        if rows_read > max_rows {
            return Err(materialize(format!(
                "the result has more than {max_rows} rows ([agents.bigquery] max_materialized_rows); \
                 write it to a table and read it from there, or raise the limit"
            )));
        }
        if !rows.is_empty() {
            batches.push(to_batch(arrow.clone(), fields, &rows)?);
        }
        token = page.page_token.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    let (arrow, _) = schema.unwrap_or_else(|| (Arc::new(Schema::empty()), Vec::new()));
    let sd = write_parquet(store, &results_dir(output_prefix), arrow, &batches).await.map_err(AgentError::from)?;
    let mut out = core::LiteralMap::default();
    out.literals.insert(RESULTS.to_owned(), sd.to_literal().map_err(AgentError::from)?);
    Ok(out)
}

fn is_repeated(f: &TableFieldSchema) -> bool {
    f.mode.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("REPEATED"))
}

fn arrow_type(f: &TableFieldSchema) -> DataType {
    if is_repeated(f) {
        return DataType::Utf8;
    }
    match f.r#type {
        FieldType::Integer | FieldType::Int64 => DataType::Int64,
        FieldType::Float | FieldType::Float64 => DataType::Float64,
        FieldType::Numeric => DataType::Decimal128(38, 9),
        FieldType::Boolean | FieldType::Bool => DataType::Boolean,
        FieldType::Bytes => DataType::Binary,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, None),
        FieldType::Date => DataType::Date32,
        _ => DataType::Utf8,
    }
}

fn arrow_schema(fields: &[TableFieldSchema]) -> SchemaRef {
    Arc::new(Schema::new(fields.iter().map(|f| Field::new(&f.name, arrow_type(f), true)).collect::<Vec<_>>()))
}

fn bad_value(column: &str, value: &str, ty: &str) -> AgentError {
    materialize(format!("column {column:?}: BigQuery sent {value:?}, which does not read as {ty}"))
}

fn to_batch(schema: SchemaRef, fields: &[TableFieldSchema], rows: &[TableRow]) -> Result<RecordBatch, AgentError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let cells = rows.iter().map(|r| r.columns.as_ref().and_then(|c| c.get(i)).and_then(|c| c.value.as_ref()));
        columns.push(column(field, cells)?);
    }
    RecordBatch::try_new(schema, columns).map_err(|e| materialize(format!("cannot assemble the result: {e}")))
}

/// A scalar cell's text (`None` for NULL).
fn text(v: Option<&Value>) -> Option<&str> {
    match v {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn column<'a>(field: &TableFieldSchema, cells: impl Iterator<Item = Option<&'a Value>>) -> Result<ArrayRef, AgentError> {
    let name = field.name.as_str();
    let ty = arrow_type(field);
    if is_repeated(field) || matches!(field.r#type, FieldType::Record | FieldType::Struct) {
        let mut b = StringBuilder::new();
        for cell in cells {
            match cell {
                None | Some(Value::Null) => b.append_null(),
                Some(v) => b.append_value(natural_json(field, v).to_string()),
            }
        }
        return Ok(Arc::new(b.finish()));
    }
    macro_rules! build {
        ($builder:expr, $parse:expr, $what:expr) => {{
            let mut b = $builder;
            for cell in cells {
                match text(cell) {
                    None => b.append_null(),
                    Some(s) => b.append_value($parse(s).ok_or_else(|| bad_value(name, s, $what))?),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty {
        DataType::Int64 => build!(Int64Builder::new(), |s: &str| s.parse::<i64>().ok(), "INT64"),
        DataType::Float64 => build!(Float64Builder::new(), parse_float, "FLOAT64"),
        DataType::Boolean => build!(BooleanBuilder::new(), |s: &str| match s {
            "true" | "TRUE" => Some(true),
            "false" | "FALSE" => Some(false),
            _ => None,
        }, "BOOL"),
        DataType::Decimal128(p, s) => {
            let mut b = Decimal128Builder::new().with_precision_and_scale(p, s).map_err(|e| materialize(e.to_string()))?;
            for cell in cells {
                match text(cell) {
                    None => b.append_null(),
                    Some(t) => b.append_value(parse_decimal(t, s as u32).ok_or_else(|| bad_value(name, t, "NUMERIC"))?),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::new();
            for cell in cells {
                match text(cell) {
                    None => b.append_null(),
                    Some(t) => b.append_value(
                        base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| bad_value(name, t, "BYTES (base64)"))?,
                    ),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(_, Some(tz)) => {
            let b = TimestampMicrosecondBuilder::new().with_timezone(tz);
            build!(b, parse_timestamp_micros, "TIMESTAMP")
        }
        DataType::Timestamp(_, None) => build!(TimestampMicrosecondBuilder::new(), parse_datetime_micros, "DATETIME"),
        DataType::Date32 => build!(Date32Builder::new(), parse_date, "DATE"),
        _ => build!(StringBuilder::new(), |s: &str| Some(s.to_owned()), "STRING"),
    })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `"123.45"` as an i128 with `scale` decimals.
fn parse_decimal(s: &str, scale: u32) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > scale as usize {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    v = v.checked_mul(10i128.pow(scale))?;
    if !frac.is_empty() {
        let f: i128 = frac.parse().ok()?;
        v = v.checked_add(f.checked_mul(10i128.pow(scale - frac.len() as u32))?)?;
    }
    Some(if neg { -v } else { v })
}

/// getQueryResults sends TIMESTAMPs as float seconds (`"1.7145654151234E9"`), or integer
/// microseconds when asked for int64 timestamps.
fn parse_timestamp_micros(s: &str) -> Option<i64> {
    if !s.contains(['.', 'E', 'e']) {
        let v: i64 = s.parse().ok()?;
        // Integer text: microseconds when it is that large, else seconds.
        return Some(if v.unsigned_abs() > 100_000_000_000 { v } else { v.checked_mul(1_000_000)? });
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then(|| (f * 1e6).round() as i64)
}

fn parse_datetime_micros(s: &str) -> Option<i64> {
    let dt = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(dt.and_utc().timestamp_micros())
}

fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// A REPEATED or RECORD cell (`[{v: …}]`, `{f: [{v: …}]}`) as plain JSON.
fn natural_json(field: &TableFieldSchema, v: &Value) -> Value {
    if is_repeated(field) {
        let item_field = TableFieldSchema { mode: None, ..field.clone() };
        return match v {
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| natural_json(&item_field, i.get("v").unwrap_or(&Value::Null))).collect())
            }
            other => other.clone(),
        };
    }
    match (&field.r#type, v) {
        (FieldType::Record | FieldType::Struct, Value::Object(obj)) => {
            let subfields = field.fields.clone().unwrap_or_default();
            let cells = obj.get("f").and_then(Value::as_array).cloned().unwrap_or_default();
            let map = subfields
                .iter()
                .zip(cells.iter())
                .map(|(sf, c)| (sf.name.clone(), natural_json(sf, c.get("v").unwrap_or(&Value::Null))))
                .collect();
            Value::Object(map)
        }
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use gcp_bigquery_client::model::table_cell::TableCell;

    fn field(name: &str, t: FieldType, mode: Option<&str>) -> TableFieldSchema {
        TableFieldSchema { mode: mode.map(str::to_owned), ..TableFieldSchema::new(name, t) }
    }

    #[test]
    fn rows_become_typed_arrow_columns() {
        let fields = vec![
            field("i", FieldType::Integer, None),
            field("f", FieldType::Float, None),
            field("n", FieldType::Numeric, None),
            field("b", FieldType::Boolean, None),
            field("s", FieldType::String, None),
            field("ts", FieldType::Timestamp, None),
            field("dt", FieldType::Datetime, None),
            field("d", FieldType::Date, None),
            field("tags", FieldType::String, Some("REPEATED")),
        ];
        let row = |cells: Vec<Value>| TableRow {
            columns: Some(cells.into_iter().map(|v| TableCell { value: Some(v) }).collect()),
        };
        let rows = vec![
            row(vec![
                "42".into(), "1.5".into(), "-12.25".into(), "true".into(), "x".into(),
                "1.7145654151234E9".into(), "2024-05-01T12:30:15.123456".into(), "2024-05-01".into(),
                serde_json::json!([{"v": "a"}, {"v": "b"}]),
            ]),
            row(vec![Value::Null; 9]),
        ];
        let batch = to_batch(arrow_schema(&fields), &fields, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let ints = batch.column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!((ints.value(0), ints.is_null(1)), (42, true));
        let dec = batch.column(2).as_any().downcast_ref::<arrow_array::Decimal128Array>().unwrap();
        assert_eq!(dec.value(0), -12_250_000_000);
        let ts = batch.column(5).as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(ts.value(0), 1_714_565_415_123_400);
        let dt = batch.column(6).as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(dt.value(0), 1_714_566_615_123_456);
        let d = batch.column(7).as_any().downcast_ref::<arrow_array::Date32Array>().unwrap();
        assert_eq!(d.value(0), 19844);
        let tags = batch.column(8).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        assert_eq!(tags.value(0), r#"["a","b"]"#);
        let bad = vec![row(vec!["x".into(), Value::Null, Value::Null, Value::Null, Value::Null, Value::Null, Value::Null, Value::Null, Value::Null])];
        let e = to_batch(arrow_schema(&fields), &fields, &bad).unwrap_err();
        assert!(e.message.contains("\"i\"") && e.code == codes::MATERIALIZE, "{e}");
    }

    #[test]
    fn flytekit_form_of_the_table_output() {
        let out = table_outputs(&TableReference::new("p", "_anon", "t1"));
        let sd = StructuredDataset::from_dataset_literal(&out.literals["results"]).unwrap();
        assert_eq!((sd.uri.as_str(), sd.format.as_str(), sd.columns.len()), ("bq://p:_anon.t1", "", 0));
        assert_eq!(parse_decimal("1", 9), Some(1_000_000_000));
        assert_eq!(parse_decimal("1.0000000001", 9), None);
        assert_eq!(parse_timestamp_micros("1704164645123456"), Some(1_704_164_645_123_456));
    }
}
