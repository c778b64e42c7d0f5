//! Snowflake's Arrow result encoding → plain Arrow (58) columns that Parquet, DuckDB and pandas
//! read as the values they are.
//!
//! Results arrive as Arrow IPC streams (written by Snowflake, read here with the workspace's
//! arrow 58 — no batch of the crate's arrow 57 is ever decoded). Each field carries Snowflake's
//! metadata (`logicalType`, `scale`, `precision`) and a physical encoding that is not the value's
//! Arrow type:
//!
//! | Snowflake type | arrives as | becomes |
//! |---|---|---|
//! | `FIXED` scale 0 | int8…int64 (or decimal128) | int64 (decimal128(38,0) beyond) |
//! | `FIXED` scale s > 0 | the unscaled integer | decimal128(precision, s) |
//! | `REAL` | float64 | float64 |
//! | `TEXT`, `VARIANT`, `OBJECT`, `ARRAY`, `GEOGRAPHY`, … | utf8 | utf8 (semi-structured as JSON text) |
//! | `BOOLEAN`, `DATE`, `BINARY` | bool, date32, binary | the same |
//! | `TIME` | int64 in 10^-scale s | time64(ns) |
//! | `TIMESTAMP_NTZ` | int64 in 10^-scale s, or struct{epoch s, fraction ns} | timestamp(µs) |
//! | `TIMESTAMP_LTZ`, `TIMESTAMP_TZ` | the same (TZ adds the offset) | timestamp(µs, UTC): the instant |
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Decimal128Array, RecordBatch, StringArray, Time64NanosecondArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use tern_agent_api::prelude::AgentError;

use crate::client::Column;
use crate::codes;

fn unsupported(column: &str, why: impl std::fmt::Display) -> AgentError {
    AgentError::user(codes::MATERIALIZE_FAILED, format!("column {column:?} cannot be written as Parquet: {why}"))
}

/// Reads Snowflake's Arrow IPC streams into plain Arrow batches of one schema.
pub fn from_ipc(chunks: &[Bytes]) -> Result<(SchemaRef, Vec<RecordBatch>), AgentError> {
    let mut schema: Option<SchemaRef> = None;
    let mut out = Vec::new();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(chunk.clone()), None)
            .map_err(|e| codes::unavailable(format!("Snowflake's result is not an Arrow IPC stream: {e}")))?;
        for batch in reader {
            let batch = batch.map_err(|e| codes::unavailable(format!("Snowflake's result cannot be read: {e}")))?;
            let converted = convert_batch(&batch)?;
            match &schema {
                Some(s) if s.fields() != converted.schema().fields() => {
                    return Err(codes::unavailable(format!(
                        "Snowflake's result chunks disagree on the schema: {} vs {}",
                        s,
                        converted.schema()
                    )))
                }
                Some(_) => {}
                None => schema = Some(converted.schema()),
            }
            out.push(converted);
        }
    }
    let schema = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
    Ok((schema, out))
}

/// A JSON rowset (rows of text cells) as text columns: Snowflake answers some statements so.
pub fn from_json(columns: &[String], rows: &[Vec<Option<String>>]) -> Result<(SchemaRef, Vec<RecordBatch>), AgentError> {
    let fields: Vec<Field> = columns.iter().map(|c| Field::new(c, DataType::Utf8, true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| Arc::new(StringArray::from_iter(rows.iter().map(|r| r.get(i).cloned().flatten()))) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| codes::unavailable(format!("cannot build the result: {e}")))?;
    Ok((schema, vec![batch]))
}

/// The plain Arrow schema of a result Snowflake describes (for results with no rows).
pub fn schema_of(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(|c| Field::new(&c.name, target_type(&c.kind, c.scale, c.precision, None), true)).collect::<Vec<_>>(),
    ))
}

/// The plain type a Snowflake column becomes (`physical`: how it arrived, when known).
fn target_type(kind: &str, scale: i64, precision: i64, physical: Option<&DataType>) -> DataType {
    match kind {
        "FIXED" if scale == 0 => match physical {
            Some(DataType::Decimal128(p, _)) if *p > 18 => DataType::Decimal128(38, 0),
            _ => DataType::Int64,
        },
        "FIXED" => DataType::Decimal128(precision.clamp(1, 38) as u8, scale.clamp(0, 37) as i8),
        "REAL" => DataType::Float64,
        "BOOLEAN" => DataType::Boolean,
        "DATE" => DataType::Date32,
        "BINARY" => DataType::Binary,
        "TIME" => DataType::Time64(TimeUnit::Nanosecond),
        "TIMESTAMP_NTZ" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "TIMESTAMP_LTZ" | "TIMESTAMP_TZ" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => DataType::Utf8,
    }
}

fn convert_batch(batch: &RecordBatch) -> Result<RecordBatch, AgentError> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let (data_type, array) = convert_column(field, array)?;
        fields.push(Field::new(field.name(), data_type, true));
        columns.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    RecordBatch::try_new_with_options(schema, columns, &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())))
        .map_err(|e| codes::unavailable(format!("cannot rebuild Snowflake's result: {e}")))
}

fn convert_column(field: &Field, array: &ArrayRef) -> Result<(DataType, ArrayRef), AgentError> {
    let meta = field.metadata();
    let name = field.name();
    let Some(kind) = meta.get("logicalType").map(|k| k.to_ascii_uppercase()) else {
        // Not Snowflake-encoded: kept when Parquet can hold it.
        return plain(name, array);
    };
    let scale: i64 = meta.get("scale").and_then(|s| s.parse().ok()).unwrap_or(0);
    let precision: i64 = meta.get("precision").and_then(|s| s.parse().ok()).unwrap_or(38);
    let target = target_type(&kind, scale, precision, Some(array.data_type()));
    let cast = |a: &ArrayRef, t: &DataType| {
        arrow_cast::cast(a, t).map_err(|e| unsupported(name, format!("{kind} arrived as {}: {e}", a.data_type())))
    };
    let converted: ArrayRef = match kind.as_str() {
        "FIXED" => match (&target, array.data_type()) {
            (DataType::Decimal128(p, s), dt) if dt.is_integer() => {
                let ints = cast(array, &DataType::Int64)?;
                let ints = ints.as_primitive::<Int64Type>();
                Arc::new(
                    Decimal128Array::from_iter(ints.iter().map(|v| v.map(i128::from)))
                        .with_precision_and_scale(*p, *s)
                        .map_err(|e| unsupported(name, e))?,
                )
            }
            (DataType::Decimal128(p, s), DataType::Decimal128(..)) => {
                let d = array.as_primitive::<arrow_array::types::Decimal128Type>().clone();
                Arc::new(d.with_precision_and_scale(*p, *s).map_err(|e| unsupported(name, e))?)
            }
            (t, _) => cast(array, t)?,
        },
        "TIME" => {
            let ints = cast(array, &DataType::Int64)?;
            let factor = 10i64.pow((9 - scale.clamp(0, 9)) as u32);
            let ints = ints.as_primitive::<Int64Type>();
            Arc::new(Time64NanosecondArray::from_iter(ints.iter().map(|v| v.map(|v| v.saturating_mul(factor)))))
        }
        "TIMESTAMP_NTZ" | "TIMESTAMP_LTZ" | "TIMESTAMP_TZ" => {
            let micros = timestamp_micros(name, array, scale)?;
            let tz = match &target {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            Arc::new(TimestampMicrosecondArray::from(micros).with_timezone_opt(tz))
        }
        "TEXT" | "VARIANT" | "OBJECT" | "ARRAY" | "MAP" | "GEOGRAPHY" | "GEOMETRY" | "VECTOR" => match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => cast(array, &DataType::Utf8)?,
            other => return plain(name, array).map_err(|_| unsupported(name, format!("{kind} arrived as {other}"))),
        },
        _ => {
            if array.data_type() == &target {
                array.clone()
            } else {
                cast(array, &target)?
            }
        }
    };
    Ok((converted.data_type().clone(), converted))
}

/// Timestamps as microseconds since the epoch, from either of Snowflake's encodings.
fn timestamp_micros(name: &str, array: &ArrayRef, scale: i64) -> Result<Vec<Option<i64>>, AgentError> {
    let scaled_to_micros = |v: i64| -> i64 {
        let scale = scale.clamp(0, 9);
        if scale >= 6 {
            v / 10i64.pow((scale - 6) as u32)
        } else {
            v.saturating_mul(10i64.pow((6 - scale) as u32))
        }
    };
    match array.data_type() {
        dt if dt.is_integer() => {
            let ints = arrow_cast::cast(array, &DataType::Int64).map_err(|e| unsupported(name, e))?;
            Ok(ints.as_primitive::<Int64Type>().iter().map(|v| v.map(scaled_to_micros)).collect())
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let epoch_at = fields.iter().position(|f| f.name() == "epoch").ok_or_else(|| unsupported(name, "timestamp struct without `epoch`"))?;
            let epoch = arrow_cast::cast(s.column(epoch_at), &DataType::Int64).map_err(|e| unsupported(name, e))?;
            let epoch = epoch.as_primitive::<Int64Type>();
            let fraction = match fields.iter().position(|f| f.name() == "fraction") {
                Some(i) => Some(arrow_cast::cast(s.column(i), &DataType::Int32).map_err(|e| unsupported(name, e))?),
                None => None,
            };
            let fraction = fraction.as_ref().map(|f| f.as_primitive::<Int32Type>());
            Ok((0..s.len())
                .map(|i| {
                    if s.is_null(i) || epoch.is_null(i) {
                        return None;
                    }
                    Some(match fraction {
                        // {epoch seconds, fraction nanoseconds[, timezone]}
                        Some(f) => epoch.value(i).saturating_mul(1_000_000) + i64::from(f.value(i)) / 1_000,
                        // {epoch in 10^-scale seconds, timezone}
                        None => scaled_to_micros(epoch.value(i)),
                    })
                })
                .collect())
        }
        other => Err(unsupported(name, format!("a timestamp arrived as {other}"))),
    }
}

/// A column without Snowflake metadata, kept when Parquet and Flyte's column types can hold it.
fn plain(name: &str, array: &ArrayRef) -> Result<(DataType, ArrayRef), AgentError> {
    if tern_type_transformers::dataframe::flyte_column_type(array.data_type()).is_none() {
        return Err(unsupported(name, format!("Arrow type {} has no Flyte column type", array.data_type())));
    }
    Ok((array.data_type().clone(), array.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use arrow_array::{BooleanArray, Int16Array, Int64Array, Int8Array, StructArray};
    use arrow_array::{Date32Array, Float64Array};

    fn sf(name: &str, dt: DataType, kind: &str, scale: i64) -> Field {
        Field::new(name, dt, true).with_metadata(HashMap::from([
            ("logicalType".to_owned(), kind.to_owned()),
            ("scale".to_owned(), scale.to_string()),
            ("precision".to_owned(), "10".to_owned()),
        ]))
    }

    fn ipc(batch: &RecordBatch) -> Bytes {
        let mut buf = Vec::new();
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut buf, &batch.schema()).unwrap();
        w.write(batch).unwrap();
        w.finish().unwrap();
        drop(w);
        Bytes::from(buf)
    }

    #[test]
    fn snowflake_encodings_become_plain_types() {
        let ts_struct = StructArray::from(vec![
            (Arc::new(Field::new("epoch", DataType::Int64, false)), Arc::new(Int64Array::from(vec![1_704_067_200, 0])) as ArrayRef),
            (Arc::new(Field::new("fraction", DataType::Int32, false)), Arc::new(arrow_array::Int32Array::from(vec![500_000_000, 0])) as ArrayRef),
        ]);
        let schema = Arc::new(Schema::new(vec![
            sf("N", DataType::Int8, "FIXED", 0),
            sf("D", DataType::Int16, "FIXED", 2),
            sf("F", DataType::Float64, "REAL", 0),
            sf("S", DataType::Utf8, "TEXT", 0),
            sf("B", DataType::Boolean, "BOOLEAN", 0),
            sf("DT", DataType::Date32, "DATE", 0),
            sf("TS", ts_struct.data_type().clone(), "TIMESTAMP_NTZ", 9),
            sf("TL", DataType::Int64, "TIMESTAMP_LTZ", 3),
            sf("T", DataType::Int64, "TIME", 3),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int8Array::from(vec![Some(42), None])),
                Arc::new(Int16Array::from(vec![225, -1])),
                Arc::new(Float64Array::from(vec![1.5, 2.0])),
                Arc::new(StringArray::from(vec!["x", "y"])),
                Arc::new(BooleanArray::from(vec![true, false])),
                Arc::new(Date32Array::from(vec![19_723, 0])),
                Arc::new(ts_struct),
                Arc::new(Int64Array::from(vec![1_704_067_200_123, 0])),
                Arc::new(Int64Array::from(vec![3_600_000, 1])),
            ],
        )
        .unwrap();
        let (schema, batches) = from_ipc(&[ipc(&batch)]).unwrap();
        let types: Vec<String> = schema.fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(
            types,
            [
                "Int64",
                "Decimal128(10, 2)",
                "Float64",
                "Utf8",
                "Boolean",
                "Date32",
                "Timestamp(µs)",
                "Timestamp(µs, \"UTC\")",
                "Time64(ns)"
            ]
        );
        let b = &batches[0];
        assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 42);
        assert!(b.column(0).is_null(1));
        let d = b.column(1).as_primitive::<arrow_array::types::Decimal128Type>();
        assert_eq!(d.value_as_string(0), "2.25");
        assert_eq!(d.value_as_string(1), "-0.01");
        let ts = b.column(6).as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_704_067_200_500_000);
        let tl = b.column(7).as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        assert_eq!(tl.value(0), 1_704_067_200_123_000);
        assert_eq!(b.column(8).as_primitive::<arrow_array::types::Time64NanosecondType>().value(0), 3_600_000_000_000);
        assert!(schema.fields().iter().all(|f| f.metadata().is_empty()));
    }

    #[test]
    fn described_columns_give_an_empty_schema() {
        let s = schema_of(&[
            Column { name: "N".into(), kind: "FIXED".into(), scale: 0, precision: 38 },
            Column { name: "TS".into(), kind: "TIMESTAMP_TZ".into(), scale: 9, precision: 0 },
            Column { name: "V".into(), kind: "VARIANT".into(), scale: 0, precision: 0 },
        ]);
        let types: Vec<String> = s.fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, ["Int64", "Timestamp(µs, \"UTC\")", "Utf8"]);
    }

    #[test]
    fn json_rowsets_are_text() {
        let (s, b) = from_json(&["A".into()], &[vec![Some("1".into())], vec![None]]).unwrap();
        assert_eq!(s.field(0).data_type(), &DataType::Utf8);
        assert_eq!(b[0].num_rows(), 2);
    }
}
