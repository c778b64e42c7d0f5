//! DataFrames: Arrow `RecordBatch`es ⇄ `StructuredDataset` literals over Parquet, as flytekit 1.16 does it.
//!
//! flytekit's encoding (`flytekit/types/structured/structured_dataset.py`, `basic_dfs.py`):
//! - literal type: `LiteralType{structured_dataset_type{columns, format}}`; a plain `StructuredDataset`
//!   or `pd.DataFrame` declares no columns and format `""`; `Annotated[…, kwtypes(a=int, b=str)]` declares
//!   `[{a, INTEGER}, {b, STRING}]` in that order (int/float/bool/str/datetime/timedelta →
//!   INTEGER/FLOAT/BOOLEAN/STRING/DATETIME/DURATION, `list[T]` → collection, `dict[str, T]` → map).
//! - literal: `scalar{structured_dataset{uri, metadata{structured_dataset_type{columns, format: "parquet"}}}}`,
//!   columns being the declared ones; `uri` is a *directory*, the data is the Parquet file `<uri>/00000`.
//! - reading: every Parquet file under `uri` (or `uri` itself when it is a file); when the reader's
//!   type declares columns they are selected in the declared order, else the literal's columns, else
//!   all. pandas' stored index column (`__index_level_0__`) is not data.
//! - the dataclass-attribute forms `{"uri": …, "file_format": …}` (msgpack Binary or generic Struct)
//!   and the legacy `Schema` literal (read as a parquet dataset) are accepted too.
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tern_agent_api::core;
use tern_agent_api::core::literal::Value as LitValue;
use tern_agent_api::core::literal_type::Type as LitType;
use tern_agent_api::core::scalar::Value as ScalarValue;
use tern_agent_api::core::structured_dataset_type::DatasetColumn;
use tern_agent_api::core::SimpleType;
use tern_agent_api::datastore::{join_uri, DataStore, DataStoreError};

use crate::blob::literal_kind;
use crate::store::DataError;

/// The format flytekit's Parquet encoders write.
pub const PARQUET: &str = "parquet";

/// The name flytekit gives the (only) file of a dataset it writes: `f"{0:05}"`.
pub const FIRST_PART: &str = "00000";

/// A dataset in a data store (flytekit's `StructuredDataset` literal).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StructuredDataset {
    /// The directory holding the Parquet file(s), or a single Parquet file.
    pub uri: String,
    /// `"parquet"` for data flytekit or Tern wrote; `""` = unspecified.
    pub format: String,
    /// Declared columns, in order; empty = not declared (all columns).
    pub columns: Vec<(String, core::LiteralType)>,
}

/// Why a literal is not a structured dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetLiteralError {
    WrongKind { found: String },
    BadPayload { reason: String },
}

impl std::fmt::Display for DatasetLiteralError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongKind { found } => write!(f, "{found}"),
            Self::BadPayload { reason } => write!(f, "{reason}"),
        }
    }
}

impl StructuredDataset {
    /// A parquet dataset at `uri` with no declared columns.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), format: PARQUET.to_owned(), columns: Vec::new() }
    }

    /// `LiteralType{structured_dataset_type{columns, format}}`.
    pub fn literal_type_for(columns: &[(String, core::LiteralType)], format: &str) -> core::LiteralType {
        core::LiteralType {
            r#type: Some(LitType::StructuredDatasetType(dataset_type(columns, format))),
            ..Default::default()
        }
    }

    /// flytekit's rule for a reader's declared columns: when `declared` is non-empty it replaces the
    /// literal's columns (and so selects what is read), else the literal's stay.
    pub fn with_declared_columns(mut self, declared: &[(String, core::LiteralType)]) -> Self {
        if !declared.is_empty() {
            self.columns = declared.to_vec();
        }
        self
    }

    /// The declared columns of a structured-dataset literal type (empty for any other type).
    pub fn columns_of(ty: &core::LiteralType) -> Vec<(String, core::LiteralType)> {
        match &ty.r#type {
            Some(LitType::StructuredDatasetType(t)) => columns_from_proto(&t.columns),
            _ => Vec::new(),
        }
    }

    /// This dataset as a literal (no I/O).
    pub fn to_dataset_literal(&self) -> core::Literal {
        core::Literal {
            value: Some(LitValue::Scalar(Box::new(core::Scalar {
                value: Some(ScalarValue::StructuredDataset(core::StructuredDataset {
                    uri: self.uri.clone(),
                    metadata: Some(core::StructuredDatasetMetadata {
                        structured_dataset_type: Some(dataset_type(&self.columns, &self.format)),
                    }),
                })),
            }))),
            ..Default::default()
        }
    }

    /// Reads a structured-dataset literal (no I/O).
    pub fn from_dataset_literal(literal: &core::Literal) -> Result<Self, DatasetLiteralError> {
        let wrong = || DatasetLiteralError::WrongKind { found: literal_kind(literal) };
        let Some(LitValue::Scalar(scalar)) = &literal.value else { return Err(wrong()) };
        match &scalar.value {
            Some(ScalarValue::StructuredDataset(sd)) => {
                let ty = sd.metadata.as_ref().and_then(|m| m.structured_dataset_type.clone()).unwrap_or_default();
                Ok(Self { uri: sd.uri.clone(), format: ty.format, columns: columns_from_proto(&ty.columns) })
            }
            Some(ScalarValue::Schema(schema)) => Ok(Self {
                uri: schema.uri.clone(),
                format: PARQUET.to_owned(),
                columns: schema.r#type.as_ref().map(schema_columns).unwrap_or_default(),
            }),
            Some(ScalarValue::Binary(binary)) => {
                if binary.tag != crate::msgpack::MSGPACK_TAG {
                    return Err(DatasetLiteralError::BadPayload {
                        reason: format!("unsupported Binary literal tag {:?} (expected \"msgpack\")", binary.tag),
                    });
                }
                let json = crate::msgpack::msgpack_to_json(&binary.value).map_err(|e| {
                    DatasetLiteralError::BadPayload { reason: format!("Binary literal is not msgpack: {e}") }
                })?;
                from_dict(&json)
            }
            Some(ScalarValue::Generic(s)) => from_dict(&serde_json::Value::Object(crate::structs::struct_to_json(s))),
            _ => Err(wrong()),
        }
    }
}

fn from_dict(json: &serde_json::Value) -> Result<StructuredDataset, DatasetLiteralError> {
    let Some(serde_json::Value::String(uri)) = json.get("uri") else {
        return Err(DatasetLiteralError::BadPayload {
            reason: format!("expected a map with a string \"uri\" (and \"file_format\"), got {json}"),
        });
    };
    let format = json.get("file_format").and_then(|f| f.as_str()).unwrap_or_default().to_owned();
    Ok(StructuredDataset { uri: uri.clone(), format, columns: Vec::new() })
}

fn dataset_type(columns: &[(String, core::LiteralType)], format: &str) -> core::StructuredDatasetType {
    core::StructuredDatasetType {
        columns: columns
            .iter()
            .map(|(name, ty)| DatasetColumn { name: name.clone(), literal_type: Some(ty.clone()) })
            .collect(),
        format: format.to_owned(),
        ..Default::default()
    }
}

fn columns_from_proto(columns: &[DatasetColumn]) -> Vec<(String, core::LiteralType)> {
    columns.iter().map(|c| (c.name.clone(), c.literal_type.clone().unwrap_or_default())).collect()
}

fn schema_columns(ty: &core::SchemaType) -> Vec<(String, core::LiteralType)> {
    use core::schema_type::schema_column::SchemaColumnType as C;
    ty.columns
        .iter()
        .map(|c| {
            let simple = match C::try_from(c.r#type).unwrap_or(C::String) {
                C::Integer => SimpleType::Integer,
                C::Float => SimpleType::Float,
                C::String => SimpleType::String,
                C::Boolean => SimpleType::Boolean,
                C::Datetime => SimpleType::Datetime,
                C::Duration => SimpleType::Duration,
            };
            (c.name.clone(), crate::types::simple(simple))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Arrow types ⇄ Flyte column types
// ---------------------------------------------------------------------------------------------

/// The Flyte column type of an Arrow type: integers → INTEGER, floats/decimals → FLOAT, strings and
/// binaries (any encoding) → STRING, bool → BOOLEAN, timestamps/dates → DATETIME, durations → DURATION,
/// lists → collection, maps → map, structs → STRUCT, null → NONE. `None` for the rest.
pub fn flyte_column_type(dt: &DataType) -> Option<core::LiteralType> {
    use DataType as D;
    let simple = |t| Some(crate::types::simple(t));
    match dt {
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            simple(SimpleType::Integer)
        }
        D::Float16
        | D::Float32
        | D::Float64
        | D::Decimal32(..)
        | D::Decimal64(..)
        | D::Decimal128(..)
        | D::Decimal256(..) => simple(SimpleType::Float),
        D::Utf8 | D::LargeUtf8 | D::Utf8View | D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => {
            simple(SimpleType::String)
        }
        D::Boolean => simple(SimpleType::Boolean),
        D::Timestamp(..) | D::Date32 | D::Date64 => simple(SimpleType::Datetime),
        D::Duration(_) => simple(SimpleType::Duration),
        D::Null => simple(SimpleType::None),
        D::Struct(_) => simple(SimpleType::Struct),
        D::Dictionary(_, value) => flyte_column_type(value),
        D::List(f) | D::LargeList(f) | D::FixedSizeList(f, _) | D::ListView(f) | D::LargeListView(f) => {
            flyte_column_type(f.data_type()).map(crate::types::list)
        }
        D::Map(entries, _) => match entries.data_type() {
            D::Struct(kv) if kv.len() == 2 => flyte_column_type(kv[1].data_type()).map(crate::types::map),
            _ => None,
        },
        _ => None,
    }
}

/// Whether data of Arrow type `dt` can be read as a column declared `declared`. An all-null column
/// fits any declaration; declarations this check does not know (blobs, unions, …) are not checked.
pub fn column_fits(declared: &core::LiteralType, dt: &DataType) -> bool {
    use DataType as D;
    if let D::Dictionary(_, value) = dt {
        return column_fits(declared, value);
    }
    if matches!(dt, D::Null) {
        return true;
    }
    match &declared.r#type {
        Some(LitType::Simple(s)) => match SimpleType::try_from(*s) {
            Ok(SimpleType::Integer) => dt.is_integer(),
            Ok(SimpleType::Float) => {
                dt.is_floating()
                    || matches!(dt, D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..))
            }
            Ok(SimpleType::String) => matches!(
                dt,
                D::Utf8
                    | D::LargeUtf8
                    | D::Utf8View
                    | D::Binary
                    | D::LargeBinary
                    | D::BinaryView
                    | D::FixedSizeBinary(_)
            ),
            Ok(SimpleType::Boolean) => matches!(dt, D::Boolean),
            Ok(SimpleType::Datetime) => matches!(dt, D::Timestamp(..) | D::Date32 | D::Date64),
            Ok(SimpleType::Duration) => matches!(dt, D::Duration(_)),
            Ok(SimpleType::Struct) => matches!(dt, D::Struct(_) | D::Map(..)),
            Ok(SimpleType::None) => false,
            _ => true,
        },
        Some(LitType::CollectionType(inner)) => match dt {
            D::List(f) | D::LargeList(f) | D::FixedSizeList(f, _) | D::ListView(f) | D::LargeListView(f) => {
                column_fits(inner, f.data_type())
            }
            _ => false,
        },
        Some(LitType::MapValueType(inner)) => match dt {
            D::Map(entries, _) => match entries.data_type() {
                D::Struct(kv) if kv.len() == 2 => column_fits(inner, kv[1].data_type()),
                _ => false,
            },
            _ => false,
        },
        _ => true,
    }
}

/// The Arrow type a column is handed out as: dictionary-encoded, large and view strings become
/// `Utf8`, large and view binaries `Binary`; everything else (timestamp units included) is kept.
fn output_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Dictionary(_, value) => output_type(value),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// pandas' stored index (`__index_level_0__`, …): not data unless asked for by name.
fn is_pandas_index(name: &str) -> bool {
    name.strip_prefix("__index_level_")
        .and_then(|rest| rest.strip_suffix("__"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Writes `batches` (all of `schema`) as the Parquet file `<dir_uri>/00000` (snappy, flytekit's
/// layout) and returns the dataset: its uri is the store's canonical form of `dir_uri`, its format
/// `"parquet"`, its columns typed from the Arrow schema ([`flyte_column_type`]).
pub async fn write_parquet(
    store: &dyn DataStore,
    dir_uri: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<StructuredDataset, DataError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            flyte_column_type(f.data_type()).map(|t| (f.name().clone(), t)).ok_or_else(|| {
                DataError::UnsupportedColumn { column: f.name().clone(), arrow_type: f.data_type().to_string() }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dir_uri = dir_uri.trim_end_matches('/');
    let file_uri = join_uri(dir_uri, FIRST_PART);
    let data =
        encode_parquet(schema, batches).map_err(|reason| DataError::ParquetWrite { uri: file_uri.clone(), reason })?;
    store.write(&file_uri, data).await?;
    Ok(StructuredDataset { uri: store.canonical_uri(dir_uri), format: PARQUET.to_owned(), columns })
}

/// `batches` as the bytes of one snappy-compressed Parquet file (with the Arrow schema embedded,
/// so durations and time zones read back exactly).
pub fn encode_parquet(schema: SchemaRef, batches: &[RecordBatch]) -> Result<Bytes, String> {
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    for (i, batch) in batches.iter().enumerate() {
        if batch.schema().fields() != schema.fields() {
            return Err(format!("batch {i} has schema {} but the dataset's schema is {}", batch.schema(), schema));
        }
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.into_inner().map(Bytes::from).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads the dataset: every Parquet file under `sd.uri` (names starting with `.` or `_`, like
/// `_SUCCESS`, are skipped) in name order, or `sd.uri` itself when it is one file.
///
/// Column selection, as flytekit: `columns` when given and non-empty, else `sd.columns`' names when
/// declared, else every column but pandas' index. Selected columns come out in that order; each
/// must exist in every file ([`DataError::MissingColumn`]) and, when `sd.columns` declares its type,
/// fit it ([`DataError::ColumnType`]). Strings come out as `Utf8` whatever their encoding.
pub async fn read_parquet(
    store: &dyn DataStore,
    sd: &StructuredDataset,
    columns: Option<&[String]>,
) -> Result<Vec<RecordBatch>, DataError> {
    if !sd.format.is_empty() && !sd.format.eq_ignore_ascii_case(PARQUET) {
        return Err(DataError::UnsupportedFormat { uri: sd.uri.clone(), format: sd.format.clone() });
    }
    let selected: Option<Vec<String>> = match columns {
        Some(cols) if !cols.is_empty() => Some(cols.to_vec()),
        _ if !sd.columns.is_empty() => Some(sd.columns.iter().map(|(n, _)| n.clone()).collect()),
        _ => None,
    };
    let mut out = Vec::new();
    let mut first: Option<(String, SchemaRef)> = None;
    for (uri, data) in dataset_files(store, &sd.uri).await? {
        let batches = read_file(&uri, data, selected.as_deref(), &sd.columns)?;
        let Some(schema) = batches.first().map(|b| b.schema()) else { continue };
        match &first {
            None => first = Some((uri, schema)),
            Some((first_uri, first_schema)) => {
                if schema.fields() != first_schema.fields() {
                    let conformed = batches
                        .into_iter()
                        .map(|b| conform(b, first_uri, first_schema, &uri))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.extend(conformed);
                    continue;
                }
            }
        }
        out.extend(batches);
    }
    Ok(out)
}

/// The objects of a dataset: every visible file under `uri`, else `uri` itself.
async fn dataset_files(store: &dyn DataStore, uri: &str) -> Result<Vec<(String, Bytes)>, DataError> {
    let listed: Vec<String> = store
        .list(uri)
        .await?
        .into_iter()
        .filter(|u| {
            let name = u.rsplit('/').next().unwrap_or_default();
            !name.starts_with('.') && !name.starts_with('_') && !name.contains(".tmp-")
        })
        .collect();
    if listed.is_empty() {
        // A single file, or an empty directory.
        if store.local_path(uri).is_ok_and(|p| p.is_dir()) {
            return Ok(Vec::new());
        }
        let data = store.read(uri).await.map_err(|e| DataError::from_store("dataset", e))?;
        return Ok(vec![(uri.to_owned(), data)]);
    }
    let mut out = Vec::with_capacity(listed.len());
    for u in listed {
        let data = store.read(&u).await.map_err(|e| match e {
            DataStoreError::NotFound { uri } => DataError::Missing { what: "dataset file", uri },
            other => DataError::Store(other),
        })?;
        out.push((u, data));
    }
    Ok(out)
}

fn read_file(
    uri: &str,
    data: Bytes,
    selected: Option<&[String]>,
    declared: &[(String, core::LiteralType)],
) -> Result<Vec<RecordBatch>, DataError> {
    let not_parquet = |reason: String| DataError::NotParquet { uri: uri.to_owned(), reason };
    if data.len() < 12 || &data[..4] != b"PAR1" || &data[data.len() - 4..] != b"PAR1" {
        return Err(not_parquet(format!("no Parquet magic bytes (PAR1) at both ends of its {} bytes", data.len())));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(|e| not_parquet(e.to_string()))?;
    let file_schema = builder.schema().clone();
    // Which top-level columns, in output order.
    let wanted: Vec<usize> = match selected {
        Some(names) => names
            .iter()
            .map(|name| {
                let (i, field) = file_schema.column_with_name(name).ok_or_else(|| DataError::MissingColumn {
                    column: name.clone(),
                    uri: uri.to_owned(),
                    available: file_schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .filter(|n| !is_pandas_index(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
                if let Some((_, ty)) = declared.iter().find(|(n, _)| n == name) {
                    if !column_fits(ty, field.data_type()) {
                        return Err(DataError::ColumnType {
                            column: name.clone(),
                            uri: uri.to_owned(),
                            declared: crate::types::type_expr(ty),
                            found: field.data_type().to_string(),
                        });
                    }
                }
                Ok(i)
            })
            .collect::<Result<_, _>>()?,
        None => (0..file_schema.fields().len()).filter(|&i| !is_pandas_index(file_schema.field(i).name())).collect(),
    };
    let mut roots = wanted.clone();
    roots.sort_unstable();
    roots.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(|e| not_parquet(e.to_string()))?;
    // The projected batches hold `roots` in file order; put them in the wanted order.
    let order: Vec<usize> = wanted.iter().map(|w| roots.binary_search(w).unwrap_or_default()).collect();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| not_parquet(e.to_string()))?;
        let batch = batch.project(&order).map_err(|e| not_parquet(e.to_string()))?;
        out.push(normalize(batch).map_err(not_parquet)?);
    }
    if out.is_empty() {
        // No rows: still hand out the columns (one empty batch).
        let schema = file_schema.project(&wanted).map_err(|e| not_parquet(e.to_string()))?;
        out.push(normalize(RecordBatch::new_empty(Arc::new(schema))).map_err(not_parquet)?);
    }
    Ok(out)
}

/// Converts each column to its [`output_type`].
fn normalize(batch: RecordBatch) -> Result<RecordBatch, String> {
    let schema = batch.schema();
    if schema.fields().iter().all(|f| output_type(f.data_type()) == *f.data_type()) {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let to = output_type(field.data_type());
        if to == *field.data_type() {
            fields.push(field.clone());
            arrays.push(array.clone());
        } else {
            let cast = arrow_cast::cast(array, &to).map_err(|e| format!("column {:?}: {e}", field.name()))?;
            fields.push(Arc::new(
                Field::new(field.name(), to, field.is_nullable()).with_metadata(field.metadata().clone()),
            ));
            arrays.push(cast);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())), arrays)
        .map_err(|e| e.to_string())
}

/// Casts a later file's batch to the first file's schema (e.g. timestamps in ns vs µs).
fn conform(batch: RecordBatch, first_uri: &str, first: &SchemaRef, uri: &str) -> Result<RecordBatch, DataError> {
    let mut arrays = Vec::with_capacity(first.fields().len());
    for (want, (field, array)) in first.fields().iter().zip(batch.schema().fields().iter().zip(batch.columns())) {
        let mismatch = || DataError::InconsistentFiles {
            column: want.name().clone(),
            first_uri: first_uri.to_owned(),
            first: want.data_type().to_string(),
            other_uri: uri.to_owned(),
            other: field.data_type().to_string(),
        };
        if field.name() != want.name() {
            return Err(mismatch());
        }
        let array = if field.data_type() == want.data_type() {
            array.clone()
        } else if arrow_cast::can_cast_types(field.data_type(), want.data_type()) {
            arrow_cast::cast(array, want.data_type()).map_err(|_| mismatch())?
        } else {
            return Err(mismatch());
        };
        if array.null_count() > 0 && !want.is_nullable() {
            return Err(mismatch());
        }
        arrays.push(array);
    }
    RecordBatch::try_new(first.clone(), arrays).map_err(|e| DataError::InconsistentFiles {
        column: String::new(),
        first_uri: first_uri.to_owned(),
        first: first.to_string(),
        other_uri: uri.to_owned(),
        other: e.to_string(),
    })
}

/// `LiteralType{structured_dataset_type{}}`: what flytekit writes for a plain `StructuredDataset`
/// or `pd.DataFrame` (no columns, format `""`); see [`StructuredDataset::literal_type_for`] for
/// declared columns. The literal carries the value's own columns and format.
impl crate::transformer::FlyteType for StructuredDataset {
    fn literal_type() -> core::LiteralType {
        Self::literal_type_for(&[], "")
    }

    fn to_literal(&self) -> Result<core::Literal, crate::error::TransformError> {
        Ok(self.to_dataset_literal())
    }

    fn from_literal(literal: &core::Literal) -> Result<Self, crate::error::TransformError> {
        use crate::error::TransformError;
        Self::from_dataset_literal(literal).map_err(|e| match e {
            DatasetLiteralError::WrongKind { found } => TransformError::wrong_kind("a structured dataset", found),
            DatasetLiteralError::BadPayload { reason } => {
                TransformError::MalformedMsgpack { rust_type: "StructuredDataset".to_owned(), reason }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pandas_index_columns() {
        assert!(is_pandas_index("__index_level_0__"));
        assert!(is_pandas_index("__index_level_12__"));
        assert!(!is_pandas_index("__index_level___"));
        assert!(!is_pandas_index("index"));
    }

    #[test]
    fn arrow_types_map_to_flyte_column_types() {
        use arrow_schema::TimeUnit;
        let expr = |dt: DataType| flyte_column_type(&dt).map(|t| crate::types::type_expr(&t));
        assert_eq!(expr(DataType::Int64).as_deref(), Some("integer"));
        assert_eq!(expr(DataType::UInt8).as_deref(), Some("integer"));
        assert_eq!(expr(DataType::Float32).as_deref(), Some("float"));
        assert_eq!(expr(DataType::LargeUtf8).as_deref(), Some("string"));
        assert_eq!(expr(DataType::Boolean).as_deref(), Some("boolean"));
        assert_eq!(expr(DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))).as_deref(), Some("datetime"));
        assert_eq!(expr(DataType::Duration(TimeUnit::Microsecond)).as_deref(), Some("duration"));
        assert_eq!(
            expr(DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))).as_deref(),
            Some("string")
        );
        assert_eq!(
            expr(DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))).as_deref(),
            Some("list<integer>")
        );
        assert_eq!(expr(DataType::Time64(TimeUnit::Microsecond)), None);
    }
}
