//! The statement's result → task outputs: dataframe outputs get the whole result set as
//! parquet (`<output_prefix>/<name>/00000`, flytekit's layout), scalar outputs take the
//! column of the same name from a one-row result.
use std::path::{Path, PathBuf};

use duckdb::types::Value;
use duckdb::Connection;
use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::prelude::{core, join_uri, AgentError, DataStore};
use tern_type_transformers::literals::union_value;
use tern_type_transformers::types::simple;
use tern_type_transformers::{dataframe, FlyteType, StructuredDataset};

use crate::codes::{self, bad_output};
use crate::sql::{quote_ident, quote_literal};
use crate::staging::{self, Upload};
use core::literal_type::Type as LitType;
use core::SimpleType;

/// Temporary table the last statement's result is materialized into.
pub const RESULT_TABLE: &str = "__tern_result";
/// File name flytekit gives the single parquet file of a dataframe it writes.
pub const PARQUET_FILE: &str = dataframe::FIRST_PART;

#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub name: String,
    pub kind: OutputKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    /// The whole result set, written as parquet into `dir` (which is `uri` in the store,
    /// or, with `upload`, a staging directory whose file is uploaded to `uri` afterwards).
    Dataset { dir: PathBuf, uri: String, upload: bool },
    /// One value from the column named like the output.
    Scalar(core::LiteralType),
}

/// The outputs the interface declares, sorted by name. Dataframes under a remote output
/// prefix are written below `staging` first.
pub fn specs(
    interface: Option<&core::TypedInterface>,
    output_prefix: &str,
    store: &dyn DataStore,
    staging: &Path,
) -> Result<Vec<OutputSpec>, AgentError> {
    let Some(vars) = interface.and_then(|i| i.outputs.as_ref()) else { return Ok(Vec::new()) };
    let mut names: Vec<&String> = vars.variables.keys().collect();
    names.sort();
    let mut specs = Vec::new();
    for name in names {
        let ty = vars.variables[name].r#type.clone().unwrap_or_default();
        let kind = if matches!(ty.r#type, Some(LitType::StructuredDatasetType(_))) {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
                return Err(bad_output(format!("output name {name:?} cannot name a directory")));
            }
            let key = join_uri(output_prefix, name);
            if staging::is_remote(store, &key) {
                let (dir, uri) = staging::output_location(staging, output_prefix, name);
                OutputKind::Dataset { dir, uri, upload: true }
            } else {
                let dir = store.local_path(&key).map_err(|e| match e {
                    DataStoreError::OutsideRoots { .. } => AgentError::from(e),
                    _ => AgentError::user(
                        codes::UNSUPPORTED_LOCATION,
                        format!("output prefix {output_prefix:?} cannot be written by the data store ({e})"),
                    ),
                })?;
                OutputKind::Dataset { dir, uri: store.canonical_uri(&key), upload: false }
            }
        } else {
            OutputKind::Scalar(ty)
        };
        specs.push(OutputSpec { name: name.clone(), kind });
    }
    Ok(specs)
}

/// The files to upload once the query has written its remote outputs.
pub fn uploads(specs: &[OutputSpec]) -> Vec<Upload> {
    specs
        .iter()
        .filter_map(|s| match &s.kind {
            OutputKind::Dataset { dir, uri, upload: true } => {
                Some(Upload { file: dir.join(PARQUET_FILE), uri: join_uri(uri, PARQUET_FILE) })
            }
            _ => None,
        })
        .collect()
}

/// Flyte type of a DuckDB column type (as `DESCRIBE` prints it).
pub fn flyte_type(duckdb_type: &str) -> SimpleType {
    match duckdb_type {
        "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT" | "USMALLINT" | "UINTEGER"
        | "UBIGINT" | "UHUGEINT" => SimpleType::Integer,
        "FLOAT" | "DOUBLE" => SimpleType::Float,
        t if t.starts_with("DECIMAL") => SimpleType::Float,
        "VARCHAR" => SimpleType::String,
        "BOOLEAN" => SimpleType::Boolean,
        "TIMESTAMP" | "TIMESTAMP WITH TIME ZONE" | "TIMESTAMP_S" | "TIMESTAMP_MS" | "TIMESTAMP_NS" | "DATE" => {
            SimpleType::Datetime
        }
        "INTERVAL" => SimpleType::Duration,
        _ => SimpleType::String,
    }
}

/// Builds every declared output from [`RESULT_TABLE`].
pub fn collect(conn: &Connection, specs: &[OutputSpec]) -> Result<core::LiteralMap, AgentError> {
    let columns = describe(conn)?;
    let mut rows: Option<i64> = None;
    let mut out = core::LiteralMap::default();
    for spec in specs {
        let lit = match &spec.kind {
            OutputKind::Dataset { dir, uri, .. } => write_dataset(conn, &columns, dir, uri)?,
            OutputKind::Scalar(ty) => {
                let n = match rows {
                    Some(n) => n,
                    None => *rows.insert(row_count(conn)?),
                };
                if n != 1 {
                    return Err(bad_output(format!(
                        "output {:?} is a single value, so the query must return exactly one row; it returned {n}",
                        spec.name
                    )));
                }
                scalar_output(conn, &columns, &spec.name, ty)?
            }
        };
        out.literals.insert(spec.name.clone(), lit);
    }
    Ok(out)
}

/// `(name, DuckDB type)` of each result column, in order.
fn describe(conn: &Connection) -> Result<Vec<(String, String)>, AgentError> {
    let run = || -> duckdb::Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare(&format!("DESCRIBE {}", quote_ident(RESULT_TABLE)))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.collect()
    };
    run().map_err(|e| codes::engine(format!("cannot describe the result: {}", codes::duckdb_message(&e))))
}

fn row_count(conn: &Connection) -> Result<i64, AgentError> {
    conn.query_row(&format!("SELECT count(*) FROM {}", quote_ident(RESULT_TABLE)), [], |r| r.get::<_, i64>(0))
        .map_err(|e| codes::engine(format!("cannot count result rows: {}", codes::duckdb_message(&e))))
}

fn write_dataset(
    conn: &Connection,
    columns: &[(String, String)],
    dir: &std::path::Path,
    uri: &str,
) -> Result<core::Literal, AgentError> {
    std::fs::create_dir_all(dir).map_err(|e| codes::engine(format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join(PARQUET_FILE);
    let sql = format!(
        "COPY {} TO {} (FORMAT PARQUET)",
        quote_ident(RESULT_TABLE),
        quote_literal(&file.display().to_string())
    );
    conn.execute_batch(&sql).map_err(|e| {
        let msg = format!("cannot write the result to {uri}: {}", codes::duckdb_message(&e));
        if msg.contains("IO Error") {
            codes::engine(msg)
        } else {
            bad_output(msg)
        }
    })?;
    let sd = StructuredDataset {
        uri: uri.to_owned(),
        format: dataframe::PARQUET.to_owned(),
        columns: columns.iter().map(|(name, ty)| (name.clone(), simple(flyte_type(ty)))).collect(),
    };
    sd.to_literal().map_err(AgentError::from)
}

/// The output named `name` from the column of that name (exact, else the only
/// case-insensitive match).
fn scalar_output(
    conn: &Connection,
    columns: &[(String, String)],
    name: &str,
    ty: &core::LiteralType,
) -> Result<core::Literal, AgentError> {
    let column = columns.iter().find(|(c, _)| c == name).or_else(|| {
        let mut it = columns.iter().filter(|(c, _)| c.eq_ignore_ascii_case(name));
        match (it.next(), it.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    });
    let Some((col, col_type)) = column else {
        let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
        return Err(bad_output(format!(
            "output {name:?} needs a result column named {name:?}; the result has {names:?}"
        )));
    };
    match &ty.r#type {
        Some(LitType::Simple(s)) => {
            let s = SimpleType::try_from(*s).unwrap_or(SimpleType::None);
            convert(conn, name, col, col_type, s)
        }
        Some(LitType::UnionType(u)) => {
            let mut last_err = None;
            for variant in &u.variants {
                let Some(LitType::Simple(s)) = variant.r#type else { continue };
                let s = SimpleType::try_from(s).unwrap_or(SimpleType::None);
                match convert(conn, name, col, col_type, s) {
                    Ok(lit) => return Ok(union_value(lit, variant.clone())),
                    Err(e) => last_err = Some(e),
                }
            }
            Err(last_err.unwrap_or_else(|| {
                bad_output(format!("output {name:?}: none of the union's variants is a scalar type"))
            }))
        }
        _ => Err(bad_output(format!(
            "output {name:?} has type {}; a DuckDB task's outputs are dataframes or scalars (integer, float, string, boolean, datetime, duration, none)",
            tern_agent_api::outputs::describe_type(ty)
        ))),
    }
}

/// One value of `col` as the Flyte simple type `want`, converting only where no
/// information is lost (integer → float) or the DuckDB type has a lossless reading.
fn convert(
    conn: &Connection,
    name: &str,
    col: &str,
    col_type: &str,
    want: SimpleType,
) -> Result<core::Literal, AgentError> {
    let have = flyte_type(col_type);
    let q = quote_ident(col);
    let expr = match (want, have) {
        (SimpleType::None, _) => q.clone(),
        (SimpleType::Integer, SimpleType::Integer) => format!("CAST({q} AS BIGINT)"),
        (SimpleType::Float, SimpleType::Float | SimpleType::Integer) => format!("CAST({q} AS DOUBLE)"),
        (SimpleType::String, SimpleType::String) => format!("CAST({q} AS VARCHAR)"),
        (SimpleType::Boolean, SimpleType::Boolean) => q.clone(),
        (SimpleType::Datetime, SimpleType::Datetime) if col_type == "TIMESTAMP WITH TIME ZONE" => {
            format!("epoch_us({q})")
        }
        (SimpleType::Datetime, SimpleType::Datetime) => format!("epoch_us(CAST({q} AS TIMESTAMP))"),
        (SimpleType::Duration, SimpleType::Duration) => q.clone(),
        _ => {
            return Err(bad_output(format!(
                "output {name:?} is declared {} but column {col:?} is {col_type}",
                want.as_str_name().to_ascii_lowercase()
            )))
        }
    };
    let value: Value =
        conn.query_row(&format!("SELECT {expr} FROM {}", quote_ident(RESULT_TABLE)), [], |r| r.get(0))
            .map_err(|e| bad_output(format!("output {name:?} from column {col:?}: {}", codes::duckdb_message(&e))))?;
    let mismatch = || bad_output(format!("output {name:?}: unexpected value in column {col:?} ({col_type})"));
    let literal = match (want, value) {
        (SimpleType::None, Value::Null) => ().to_literal(),
        (SimpleType::None, _) => {
            return Err(bad_output(format!("output {name:?} is declared none but column {col:?} is not NULL")))
        }
        (_, Value::Null) => return Err(bad_output(format!("output {name:?}: column {col:?} is NULL"))),
        (SimpleType::Integer, Value::BigInt(i)) => i.to_literal(),
        (SimpleType::Float, Value::Double(f)) => f.to_literal(),
        (SimpleType::String, Value::Text(s)) => s.to_literal(),
        (SimpleType::Boolean, Value::Boolean(b)) => b.to_literal(),
        (SimpleType::Datetime, Value::BigInt(us)) => {
            chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us).ok_or_else(mismatch)?.to_literal()
        }
        (SimpleType::Duration, Value::Interval { months, days, nanos }) => {
            if months != 0 {
                return Err(bad_output(format!(
                    "output {name:?}: interval in column {col:?} has months, which have no fixed length; use days"
                )));
            }
            let total = i128::from(days) * 86_400_000_000_000 + i128::from(nanos);
            // Whole seconds and the rest, both with the sign of the total (protobuf's form).
            let seconds = i64::try_from(total / 1_000_000_000).map_err(|_| mismatch())?;
            let duration = chrono::Duration::try_seconds(seconds)
                .and_then(|s| s.checked_add(&chrono::Duration::nanoseconds((total % 1_000_000_000) as i64)))
                .ok_or_else(mismatch)?;
            duration.to_literal()
        }
        _ => return Err(mismatch()),
    };
    literal.map_err(AgentError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_duckdb_types() {
        assert_eq!(flyte_type("HUGEINT"), SimpleType::Integer);
        assert_eq!(flyte_type("DECIMAL(18,3)"), SimpleType::Float);
        assert_eq!(flyte_type("TIMESTAMP WITH TIME ZONE"), SimpleType::Datetime);
        assert_eq!(flyte_type("DATE"), SimpleType::Datetime);
        assert_eq!(flyte_type("INTERVAL"), SimpleType::Duration);
        assert_eq!(flyte_type("INTEGER[]"), SimpleType::String);
        assert_eq!(flyte_type("UUID"), SimpleType::String);
    }
}
