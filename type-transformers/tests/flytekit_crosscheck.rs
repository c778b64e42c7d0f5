//! Cross-check with real flytekit 1.16.31 (issue 3, item 6), live, in the test virtualenv.
//!
//! 1. `tests/interop/typecheck/flytekit_write.py` writes, with flytekit's TypeEngine, one literal
//!    (`<case>.literal.pb`) and one literal type (`<case>.type.pb`) per case of
//!    `tests/interop/typecheck/cases.py` (files, directories and dataframes under `<dir>/data`).
//! 2. For each case, here: flytekit's literal decodes (`<T as FlyteType>::from_literal`, or the blob /
//!    dataset API) to the expected Rust value; `T::literal_type()` equals flytekit's LiteralType; and
//!    the literal we encode for the same value equals flytekit's literal. Both comparisons are of the
//!    *bytes* (`prost::Message::encode_to_vec`; protobuf maps are BTreeMaps here, so our encoding is
//!    deterministic like Python's `SerializeToString(deterministic=True)`), except where a case says
//!    why flytekit's bytes cannot match, and then what is compared instead.
//! 3. We write our literals for the same values (uploading files, directories and Parquet through a
//!    local data store) and `flytekit_read.py` decodes each with flytekit into the case's Python type
//!    and checks it equals the expected Python value.
//!
//! The case list is defined once, in cases.py; the cases below mirror it by name, and a case on one
//! side only fails this test.
//!
//! Needs `TERN_PYTHON` (scripts/test.sh exports it: the virtualenv with flytekit 1.16.31, pandas and
//! pyarrow). Without it the test is skipped with a message, except under `CI=true`, where it fails.
//! Run by hand:
//!
//!     TERN_PYTHON=~/.cache/tern/venv/bin/python cargo test -p tern-type-transformers --test flytekit_crosscheck -- --nocapture
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Duration, TimeZone, Utc};
use prost::Message;
use serde_json::json;
use tern_agent_api::core::{self, SimpleType};
use tern_type_transformers::types::simple;
use tern_type_transformers::{
    read_parquet, write_parquet, Bytes, DataStores, FlyteDirectory, FlyteFile, FlyteType, JsonDict, StructuredDataset,
    Union2,
};

// ---------------------------------------------------------------------------------------------------
// The user-defined types of cases.py, mirrored (same names, fields in the same order).
// ---------------------------------------------------------------------------------------------------

#[derive(FlyteType, Debug, Clone, PartialEq)]
enum Color {
    Red,
    Green,
    Blue,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Inner {
    label: String,
    weight: f64,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Record {
    count: i64,
    ratio: f64,
    name: String,
    active: bool,
    scores: Vec<i64>,
    extras: BTreeMap<String, f64>,
    maybe: Option<i64>,
    missing: Option<String>,
    inner: Inner,
    color: Color,
}

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct Packet {
    payload: Bytes,
    size: i64,
}

fn record() -> Record {
    Record {
        count: 42,
        ratio: 0.25,
        name: "rëcord ✓".into(),
        active: true,
        scores: vec![3, -1, 4, 1, -5, 9, 200, -200, 70000, -(1 << 40)],
        extras: [("a", 1.5), ("b", -2.0), ("z", 1e-300)].into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        maybe: Some(7),
        missing: None,
        inner: Inner { label: "in".into(), weight: 2.5 },
        color: Color::Blue,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().expect("valid date") + Duration::microseconds(micros)
}

// cases.py: FILE_CONTENT, CSV_CONTENT, DIR_FILES, FRAME_COLUMNS, FRAME_SUBSET
const FILE_NAME: &str = "hello.txt";
const FILE_CONTENT: &str = "hello from the cross-check: héllo ✓\n";
const CSV_NAME: &str = "table.csv";
const CSV_CONTENT: &str = "id,name\n1,alpha\n2,beta\n";

fn dir_files() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        ("a.txt".to_owned(), b"alpha\n".to_vec()),
        ("b.csv".to_owned(), b"x,y\n1,2\n".to_vec()),
        ("sub/c.bin".to_owned(), (0..=255u8).collect()),
    ])
}

/// One cell of a frame, for comparing decoded Parquet with the expected values.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    I(i64),
    F(f64),
    S(String),
    B(bool),
    T(DateTime<Utc>),
    Null,
}

type Frame = Vec<(String, Vec<Cell>)>;

fn frame_columns() -> Vec<(String, core::LiteralType)> {
    [
        ("id", SimpleType::Integer),
        ("score", SimpleType::Float),
        ("name", SimpleType::String),
        ("flag", SimpleType::Boolean),
        ("at", SimpleType::Datetime),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), simple(t)))
    .collect()
}

const FRAME_SUBSET: [&str; 2] = ["name", "id"];

fn expected_frame(columns: &[&str]) -> Frame {
    let all: Vec<(&str, Vec<Cell>)> = vec![
        ("id", vec![Cell::I(1), Cell::I(2), Cell::I(-3)]),
        ("score", vec![Cell::F(0.5), Cell::F(-1.25), Cell::F(1e10)]),
        ("name", ["alpha", "βeta", "gamma ✓"].iter().map(|s| Cell::S((*s).to_owned())).collect()),
        ("flag", vec![Cell::B(true), Cell::B(false), Cell::B(true)]),
        (
            "at",
            vec![
                Cell::T(utc(2024, 1, 2, 3, 4, 5, 123_456)),
                Cell::T(utc(1999, 12, 31, 23, 59, 59, 0)),
                Cell::T(utc(2030, 6, 15, 0, 0, 0, 1)),
            ],
        ),
    ];
    columns
        .iter()
        .map(|c| {
            let (n, v) = all.iter().find(|(n, _)| n == c).expect("known column");
            ((*n).to_owned(), v.clone())
        })
        .collect()
}

fn frame_batch() -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("score", DataType::Float64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("flag", DataType::Boolean, false),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]));
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, -3])) as ArrayRef,
            Arc::new(Float64Array::from(vec![0.5, -1.25, 1e10])),
            Arc::new(StringArray::from(vec!["alpha", "βeta", "gamma ✓"])),
            Arc::new(BooleanArray::from(vec![true, false, true])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    micros(utc(2024, 1, 2, 3, 4, 5, 123_456)),
                    micros(utc(1999, 12, 31, 23, 59, 59, 0)),
                    micros(utc(2030, 6, 15, 0, 0, 0, 1)),
                ])
                .with_timezone("UTC"),
            ),
        ],
    )
    .expect("frame batch");
    (schema, batch)
}

fn batches_to_frame(batches: &[RecordBatch]) -> Result<Frame, String> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let mut out: Frame = schema.fields().iter().map(|f| (f.name().clone(), Vec::new())).collect();
    for batch in batches {
        for (i, column) in batch.columns().iter().enumerate() {
            let cells = &mut out[i].1;
            let any = column.as_any();
            for row in 0..column.len() {
                if column.is_null(row) {
                    cells.push(Cell::Null);
                    continue;
                }
                let ts = |v: i64, unit: &TimeUnit| -> Cell {
                    let nanos = match unit {
                        TimeUnit::Second => v.saturating_mul(1_000_000_000),
                        TimeUnit::Millisecond => v.saturating_mul(1_000_000),
                        TimeUnit::Microsecond => v.saturating_mul(1_000),
                        TimeUnit::Nanosecond => v,
                    };
                    Cell::T(DateTime::from_timestamp_nanos(nanos))
                };
                let cell = match column.data_type() {
                    DataType::Int64 => Cell::I(any.downcast_ref::<Int64Array>().unwrap().value(row)),
                    DataType::Float64 => Cell::F(any.downcast_ref::<Float64Array>().unwrap().value(row)),
                    DataType::Utf8 => Cell::S(any.downcast_ref::<StringArray>().unwrap().value(row).to_owned()),
                    DataType::LargeUtf8 => {
                        Cell::S(any.downcast_ref::<LargeStringArray>().unwrap().value(row).to_owned())
                    }
                    DataType::Boolean => Cell::B(any.downcast_ref::<BooleanArray>().unwrap().value(row)),
                    DataType::Timestamp(unit @ TimeUnit::Second, _) => {
                        ts(any.downcast_ref::<TimestampSecondArray>().unwrap().value(row), unit)
                    }
                    DataType::Timestamp(unit @ TimeUnit::Millisecond, _) => {
                        ts(any.downcast_ref::<TimestampMillisecondArray>().unwrap().value(row), unit)
                    }
                    DataType::Timestamp(unit @ TimeUnit::Microsecond, _) => {
                        ts(any.downcast_ref::<TimestampMicrosecondArray>().unwrap().value(row), unit)
                    }
                    DataType::Timestamp(unit @ TimeUnit::Nanosecond, _) => {
                        ts(any.downcast_ref::<TimestampNanosecondArray>().unwrap().value(row), unit)
                    }
                    other => return Err(format!("column {:?} has unexpected Arrow type {other}", out[i].0)),
                };
                cells.push(cell);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------------

/// How our bytes must relate to flytekit's for one message (a literal or a literal type).
enum Cmp<M> {
    /// flytekit's serialization is deterministic here: ours is byte-identical.
    Identical,
    /// Byte-identical once `normalize` is applied to both messages; the reason says what it removes and why.
    IdenticalExcept(&'static str, fn(&mut M)),
    /// Not byte-comparable, for the reason given; the decoded values are compared instead.
    ByValue(&'static str),
}

struct Harness {
    py_dir: PathBuf,
    rust_dir: PathBuf,
    store: DataStores,
    rt: tokio::runtime::Runtime,
    cases: Vec<&'static str>,
    failures: Vec<String>,
    report: Vec<String>,
}

fn pretty<M: Debug>(m: &M) -> String {
    format!("{m:#?}")
}

/// The first line where two pretty-printed messages differ, with a little context.
fn first_difference(ours: &str, theirs: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let window = |v: &[&str]| v[i.saturating_sub(3)..(i + 3).min(v.len())].join("\n");
    format!("first difference at line {i}:\n--- ours ---\n{}\n--- flytekit ---\n{}", window(&a), window(&b))
}

impl Harness {
    fn fail(&mut self, case: &str, msg: impl Into<String>) {
        self.failures.push(format!("{case}: {}", msg.into()));
    }

    fn note(&mut self, case: &str, msg: impl Into<String>) {
        self.report.push(format!("{case}: {}", msg.into()));
    }

    /// flytekit's literal and literal type for `case`, decoded, with their bytes.
    fn load(&mut self, case: &'static str) -> Option<(core::Literal, Vec<u8>, core::LiteralType, Vec<u8>)> {
        self.cases.push(case);
        let read = |suffix: &str| std::fs::read(self.py_dir.join(format!("{case}.{suffix}.pb")));
        let (lit_bytes, ty_bytes) = match (read("literal"), read("type")) {
            (Ok(l), Ok(t)) => (l, t),
            (l, t) => {
                self.fail(case, format!("flytekit wrote no literal/type ({:?}, {:?})", l.err(), t.err()));
                return None;
            }
        };
        let lit = match core::Literal::decode(&lit_bytes[..]) {
            Ok(l) => l,
            Err(e) => {
                self.fail(case, format!("flytekit's literal does not decode with our protobuf types: {e}"));
                return None;
            }
        };
        let ty = match core::LiteralType::decode(&ty_bytes[..]) {
            Ok(t) => t,
            Err(e) => {
                self.fail(case, format!("flytekit's literal type does not decode with our protobuf types: {e}"));
                return None;
            }
        };
        // The premise of every byte comparison below: re-encoding what flytekit wrote gives flytekit's bytes.
        if lit.encode_to_vec() != lit_bytes || ty.encode_to_vec() != ty_bytes {
            self.fail(case, "re-encoding flytekit's literal/type with prost does not give flytekit's bytes back");
        }
        Some((lit, lit_bytes, ty, ty_bytes))
    }

    fn compare<M: Message + Clone + Debug + PartialEq>(
        &mut self,
        case: &str,
        what: &str,
        ours: &M,
        theirs: &M,
        theirs_bytes: &[u8],
        cmp: &Cmp<M>,
    ) {
        match cmp {
            Cmp::Identical => {
                if ours.encode_to_vec() != theirs_bytes {
                    let diff = first_difference(&pretty(ours), &pretty(theirs));
                    self.fail(case, format!("our {what} is not byte-identical to flytekit's; {diff}"));
                } else {
                    self.note(case, format!("{what}: byte-identical"));
                }
            }
            Cmp::IdenticalExcept(why, normalize) => {
                let (mut a, mut b) = (ours.clone(), theirs.clone());
                normalize(&mut a);
                normalize(&mut b);
                if a.encode_to_vec() != b.encode_to_vec() {
                    let diff = first_difference(&pretty(&a), &pretty(&b));
                    self.fail(
                        case,
                        format!("our {what} differs from flytekit's beyond the known difference ({why}); {diff}"),
                    );
                } else {
                    self.note(case, format!("{what}: byte-identical except {why}"));
                }
            }
            Cmp::ByValue(why) => self.note(case, format!("{what}: compared by value ({why})")),
        }
    }

    fn write_ours(&mut self, case: &str, literal: &core::Literal) {
        if let Err(e) = std::fs::write(self.rust_dir.join(format!("{case}.literal.pb")), literal.encode_to_vec()) {
            self.fail(case, format!("cannot write our literal: {e}"));
        }
    }

    /// A value with a `FlyteType`: decode flytekit's literal, compare types and literals, write ours.
    fn typed<T: FlyteType + PartialEq + Debug>(
        &mut self,
        case: &'static str,
        expected: T,
        ty: Cmp<core::LiteralType>,
        literal: Cmp<core::Literal>,
    ) {
        let Some((py_lit, py_lit_bytes, py_ty, py_ty_bytes)) = self.load(case) else {
            return;
        };
        match T::from_literal(&py_lit) {
            Ok(v) if v == expected => {}
            Ok(v) => self.fail(case, format!("flytekit's literal decodes to {v:?}, expected {expected:?}")),
            Err(e) => {
                self.fail(case, format!("flytekit's literal does not decode as {}: {e}", std::any::type_name::<T>()))
            }
        }
        self.compare(case, "literal type", &T::literal_type(), &py_ty, &py_ty_bytes, &ty);
        match expected.to_literal() {
            Ok(ours) => {
                // Our literal must read back too (it is what flytekit_read.py gets).
                match T::from_literal(&ours) {
                    Ok(v) if v == expected => {}
                    other => self.fail(case, format!("our own literal reads back as {other:?}")),
                }
                self.compare(case, "literal", &ours, &py_lit, &py_lit_bytes, &literal);
                self.write_ours(case, &ours);
            }
            Err(e) => self.fail(case, format!("to_literal failed: {e}")),
        }
    }

    /// flytekit 1.16.31 reads a local blob only from a plain path: `FlyteFilePathTransformer` and
    /// `FlyteDirToMultipartBlobTransformer` check `os.path.isfile(uri)` / `os.path.isdir(uri)` for any uri
    /// whose protocol is not remote, and `file://` counts as local, so `file:///tmp/x` is "not a file".
    /// flytekit itself writes local uploads as plain absolute paths.
    fn check_local_uri(&mut self, case: &str, uri: &str) {
        if uri.starts_with("file://") {
            self.fail(
                case,
                format!(
                    "the upload returned the uri {uri:?}: flytekit 1.16.31 cannot read a local blob given as a file:// \
                     uri (it checks os.path.isfile/isdir on the uri itself) and writes plain absolute paths; \
                     local blob literals must carry the path without the scheme"
                ),
            );
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// `file` / `file_csv`: flytekit uploaded `content` to the fixed uri `<py>/data/<case>/<name>`.
    fn file(&mut self, case: &'static str, name: &str, content: &[u8], format: &str) {
        let Some((py_lit, py_lit_bytes, py_ty, py_ty_bytes)) = self.load(case) else {
            return;
        };
        let expected =
            FlyteFile::with_format(self.py_dir.join("data").join(case).join(name).display().to_string(), format);
        match <FlyteFile as FlyteType>::from_literal(&py_lit) {
            Ok(f) if f == expected => {
                let local = self.rust_dir.join("downloads").join(case).join(name);
                match self.block(f.download(&self.store, &local)).map(|_| std::fs::read(&local)) {
                    Ok(Ok(data)) if data == content => {}
                    Ok(Ok(data)) => {
                        self.fail(case, format!("downloaded {:?}, expected {:?}", lossy(&data), lossy(content)))
                    }
                    Ok(Err(e)) => self.fail(case, format!("downloaded file unreadable: {e}")),
                    Err(e) => self.fail(case, format!("download failed: {e}")),
                }
            }
            Ok(f) => self.fail(case, format!("flytekit's literal reads as {f:?}, expected {expected:?}")),
            Err(e) => self.fail(case, format!("flytekit's literal is not a file: {e}")),
        }
        // A plain FlyteFile is the trait's type; FlyteFile["csv"] is a type built at run time.
        let ty = if format.is_empty() {
            <FlyteFile as FlyteType>::literal_type()
        } else {
            FlyteFile::literal_type_for(format)
        };
        self.compare(case, "literal type", &ty, &py_ty, &py_ty_bytes, &Cmp::Identical);
        // flytekit_write.py gives the upload a fixed destination, so flytekit's uri is known and the
        // literal is deterministic.
        self.compare(
            case,
            "literal",
            &expected.to_literal().expect("a blob literal"),
            &py_lit,
            &py_lit_bytes,
            &Cmp::Identical,
        );

        // Ours: upload a local file through the data store, then write its literal.
        let src = self.rust_dir.join("src").join(case).join(name);
        let written = std::fs::create_dir_all(src.parent().unwrap()).and_then(|_| std::fs::write(&src, content));
        if let Err(e) = written {
            return self.fail(case, format!("cannot write the source file: {e}"));
        }
        let dest = self.rust_dir.join("data").join(case).join(name).display().to_string();
        match self.block(FlyteFile::upload(&self.store, &src, &dest)) {
            Ok(f) => {
                self.check_local_uri(case, &f.uri);
                let f = FlyteFile { format: format.to_owned(), ..f };
                self.write_ours(case, &f.to_literal().expect("a blob literal"));
            }
            Err(e) => self.fail(case, format!("upload failed: {e}")),
        }
    }

    fn directory(&mut self, case: &'static str) {
        let Some((py_lit, py_lit_bytes, py_ty, py_ty_bytes)) = self.load(case) else {
            return;
        };
        let expected = FlyteDirectory::new(self.py_dir.join("data").join(case).display().to_string());
        match <FlyteDirectory as FlyteType>::from_literal(&py_lit) {
            Ok(d) if d == expected => {
                let local = self.rust_dir.join("downloads").join(case);
                match self.block(d.download_dir(&self.store, &local)) {
                    Ok(_) => match read_tree(&local) {
                        Ok(tree) if tree == dir_files() => {}
                        Ok(tree) => {
                            self.fail(case, format!("downloaded {:?}, expected {:?}", tree.keys(), dir_files().keys()))
                        }
                        Err(e) => self.fail(case, format!("cannot read the download: {e}")),
                    },
                    Err(e) => self.fail(case, format!("download failed: {e}")),
                }
            }
            Ok(d) => self.fail(case, format!("flytekit's literal reads as {d:?}, expected {expected:?}")),
            Err(e) => self.fail(case, format!("flytekit's literal is not a directory: {e}")),
        }
        self.compare(
            case,
            "literal type",
            &<FlyteDirectory as FlyteType>::literal_type(),
            &py_ty,
            &py_ty_bytes,
            &Cmp::Identical,
        );
        self.compare(
            case,
            "literal",
            &expected.to_literal().expect("a blob literal"),
            &py_lit,
            &py_lit_bytes,
            &Cmp::Identical,
        );

        let src = self.rust_dir.join("src").join(case);
        for (rel, content) in dir_files() {
            let p = src.join(&rel);
            if let Err(e) = std::fs::create_dir_all(p.parent().unwrap()).and_then(|_| std::fs::write(&p, content)) {
                return self.fail(case, format!("cannot write the source directory: {e}"));
            }
        }
        let dest = self.rust_dir.join("data").join(case).display().to_string();
        match self.block(FlyteDirectory::upload_dir(&self.store, &src, &dest)) {
            Ok(d) => {
                self.check_local_uri(case, &d.uri);
                self.write_ours(case, &d.to_literal().expect("a blob literal"));
            }
            Err(e) => self.fail(case, format!("upload failed: {e}")),
        }
    }

    /// `dataframe` (all columns) / `dataframe_subset` (the reader declares FRAME_SUBSET). flytekit wrote
    /// the full frame, declaring all five columns, to the fixed uri `<py>/data/<case>`.
    fn dataframe(&mut self, case: &'static str, read_columns: &[&str]) {
        let Some((py_lit, py_lit_bytes, py_ty, py_ty_bytes)) = self.load(case) else {
            return;
        };
        let full = frame_columns();
        let expected = StructuredDataset {
            uri: self.py_dir.join("data").join(case).display().to_string(),
            format: "parquet".to_owned(),
            columns: full.clone(),
        };
        // The reader's declared columns (cases.py: the subset case reads Annotated[pd.DataFrame, kwtypes(name=str, id=int)]).
        let declared: Vec<(String, core::LiteralType)> =
            read_columns.iter().filter_map(|c| full.iter().find(|(n, _)| n == c).cloned()).collect();
        match <StructuredDataset as FlyteType>::from_literal(&py_lit) {
            Ok(sd) if sd == expected => {
                // The reader's declared columns select (and order) what is read, as in flytekit.
                let sd = if read_columns.len() < full.len() { sd.with_declared_columns(&declared) } else { sd };
                match self
                    .block(read_parquet(&self.store, &sd, None))
                    .map_err(|e| e.to_string())
                    .and_then(|b| batches_to_frame(&b))
                {
                    Ok(frame) if frame == expected_frame(read_columns) => {}
                    Ok(frame) => {
                        self.fail(case, format!("read {frame:?}, expected {:?}", expected_frame(read_columns)))
                    }
                    Err(e) => self.fail(case, format!("reading flytekit's Parquet failed: {e}")),
                }
            }
            Ok(sd) => self.fail(case, format!("flytekit's literal reads as {sd:?}, expected {expected:?}")),
            Err(e) => self.fail(case, format!("flytekit's literal is not a structured dataset: {e}")),
        }
        // Columns are declared at run time (flytekit: Annotated[..., kwtypes(...)]), so the type is built, not the
        // trait's `StructuredDataset::literal_type()` (no columns: a plain StructuredDataset / pd.DataFrame).
        self.compare(
            case,
            "literal type",
            &StructuredDataset::literal_type_for(&full, ""),
            &py_ty,
            &py_ty_bytes,
            &Cmp::Identical,
        );
        // The literal (uri + declared columns + format) is deterministic; the Parquet file is not
        // compared as bytes (its footer names the writer, `parquet-cpp-arrow version 26.0.1` vs arrow-rs),
        // only by the values read back, above and in flytekit_read.py.
        self.compare(
            case,
            "literal",
            &expected.to_literal().expect("a dataset literal"),
            &py_lit,
            &py_lit_bytes,
            &Cmp::Identical,
        );

        let (schema, batch) = frame_batch();
        let dest = self.rust_dir.join("data").join(case).display().to_string();
        match self.block(write_parquet(&self.store, &dest, schema, &[batch])) {
            Ok(sd) => {
                if sd.columns != full {
                    self.fail(case, format!("write_parquet typed the columns {:?}, expected {full:?}", sd.columns));
                }
                self.write_ours(case, &sd.to_literal().expect("a dataset literal"));
            }
            Err(e) => self.fail(case, format!("write_parquet failed: {e}")),
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_tree(root: &Path) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&path)?);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------------------

fn typecheck_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/typecheck")
}

/// `TERN_PYTHON` with flytekit 1.16.31, pandas and pyarrow; `None` = skip (never under CI=true).
fn python() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let missing = |why: String| -> Option<PathBuf> {
        let msg = format!(
            "flytekit cross-check: {why}. scripts/test.sh creates the virtualenv (tests/interop/requirements.txt) \
             and exports TERN_PYTHON; by hand: TERN_PYTHON=~/.cache/tern/venv/bin/python cargo test \
             -p tern-type-transformers --test flytekit_crosscheck"
        );
        if ci {
            panic!("{msg} (CI=true: a missing peer fails, it never skips)");
        }
        eprintln!("SKIPPED {msg}");
        None
    };
    let Some(python) = std::env::var_os("TERN_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from) else {
        return missing("TERN_PYTHON is not set".into());
    };
    let probe =
        Command::new(&python).args(["-c", "import flytekit, pandas, pyarrow; print(flytekit.__version__)"]).output();
    match probe {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if version != "1.16.31" {
                return missing(format!("{} has flytekit {version}, not 1.16.31", python.display()));
            }
            Some(python)
        }
        Ok(out) => missing(format!(
            "{} cannot import flytekit, pandas and pyarrow: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => missing(format!("cannot run TERN_PYTHON={}: {e}", python.display())),
    }
}

fn run_python(python: &Path, script: &str, dir: &Path) -> (bool, String) {
    let out = Command::new(python)
        .arg(typecheck_dir().join(script))
        .arg(dir)
        .env_remove("FLYTE_USE_OLD_DC_FORMAT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

// ---------------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------------

#[test]
fn flytekit_cross_check() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let py_dir = tmp.path().join("flytekit");
    let rust_dir = tmp.path().join("tern");
    std::fs::create_dir_all(&rust_dir).expect("rust dir");

    let (ok, out) = run_python(&python, "flytekit_write.py", &py_dir);
    assert!(ok, "flytekit_write.py failed:\n{out}");
    let listed = std::fs::read_to_string(py_dir.join("cases.txt")).expect("flytekit_write.py writes cases.txt");
    let python_cases: BTreeSet<String> =
        listed.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();

    let mut h = Harness {
        py_dir: py_dir.clone(),
        rust_dir: rust_dir.clone(),
        store: DataStores::new(tmp.path().join("store-root")),
        rt: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"),
        cases: Vec::new(),
        failures: Vec::new(),
        report: Vec::new(),
    };
    use Cmp::{ByValue, Identical, IdenticalExcept};

    // Scalars.
    h.typed("bool_true", true, Identical, Identical);
    h.typed("bool_false", false, Identical, Identical);
    h.typed("int_positive", 42i64, Identical, Identical);
    h.typed("int_negative", -9_007_199_254_740_993i64, Identical, Identical);
    h.typed("int_max", i64::MAX, Identical, Identical);
    h.typed("float", std::f64::consts::PI, Identical, Identical);
    h.typed("float_negative_tiny", -2.5e-300f64, Identical, Identical);
    h.typed("str_unicode", "héllo, wörld — 日本語 🚀 \"quoted\"\n".to_owned(), Identical, Identical);
    h.typed("str_empty", String::new(), Identical, Identical);
    h.typed("datetime", utc(2024, 5, 17, 12, 34, 56, 789_012), Identical, Identical);
    h.typed("datetime_pre_epoch", utc(1969, 7, 20, 20, 17, 40, 1), Identical, Identical);
    h.typed(
        "timedelta",
        Duration::days(1)
            + Duration::hours(2)
            + Duration::minutes(3)
            + Duration::seconds(4)
            + Duration::microseconds(567_890),
        Identical,
        Identical,
    );
    h.typed("timedelta_negative", -(Duration::seconds(90) + Duration::microseconds(250_000)), Identical, Identical);

    // Collections, optionals, unions.
    h.typed("list_int", vec![1i64, -2, 3, 0, 1 << 40], Identical, Identical);
    h.typed("list_empty", Vec::<i64>::new(), Identical, Identical);
    h.typed(
        "list_list_str",
        vec![vec!["a".to_owned(), "b".to_owned()], vec![], vec!["ü".to_owned()]],
        Identical,
        Identical,
    );
    h.typed(
        "dict_str_float",
        HashMap::from([("a".to_owned(), 1.5f64), ("b".to_owned(), -2.25), ("ü".to_owned(), 0.0)]),
        Identical,
        Identical,
    );
    h.typed(
        "dict_str_list_int",
        BTreeMap::from([("evens".to_owned(), vec![0i64, 2, 4]), ("none".to_owned(), vec![])]),
        Identical,
        Identical,
    );
    h.typed("optional_int_some", Some(5i64), Identical, Identical);
    h.typed("optional_int_none", None::<i64>, Identical, Identical);
    h.typed("union_int_str_int", Union2::<i64, String>::A(7), Identical, Identical);
    h.typed("union_int_str_str", Union2::<i64, String>::B("seven".into()), Identical, Identical);

    // Derived types.
    h.typed("enum", Color::Green, Identical, Identical);
    h.typed("dataclass", record(), Identical, Identical);
    h.typed(
        "dataclass_generic",
        record(),
        Identical,
        ByValue(
            "flytekit wrote the pre-1.14 Generic Struct form (FLYTE_USE_OLD_DC_FORMAT=true), which Tern reads; Tern \
             writes the current msgpack form, which is byte-identical to flytekit's in the `dataclass` case",
        ),
    );
    h.typed(
        "dataclass_bytes",
        Packet { payload: Bytes(vec![0, 1, 2, 253, 254, 255, 0xe2, 0x9c, 0x93]), size: 9 },
        IdenticalExcept(
            "the `payload` entry of structure.dataclass_type: flytekit has no literal type for `bytes` and records \
             its pickle fallback (blob PythonPickle), Tern records BINARY; the JSON schema and the msgpack value agree",
            |t: &mut core::LiteralType| {
                if let Some(s) = t.structure.as_mut() {
                    s.dataclass_type.remove("payload");
                }
            },
        ),
        Identical,
    );

    // Untyped dicts.
    let json_dict = json!({"a": 1, "b": [1, 2.5, "x", null, true], "c": {"d": {"e": "f"}}, "n": -3});
    h.typed("json_dict", JsonDict(json_dict.as_object().cloned().expect("object")), Identical, Identical);
    h.typed(
        "generic_struct",
        json!({"a": 1.5, "b": [2.5, "x", null, true], "c": {"d": "e", "f": -0.25}}),
        IdenticalExcept(
            "the annotation {cache-key-metadata: {serialization-format: msgpack}}: flytekit's `dict` type carries it \
             (its values are msgpack since 1.14), serde_json::Value is the Generic Struct form and does not",
            |t: &mut core::LiteralType| t.annotation = None,
        ),
        IdenticalExcept(
            "Literal.metadata {format: json}, which flytekit's pre-1.14 dict encoder adds and Tern does not",
            |l: &mut core::Literal| l.metadata.clear(),
        ),
    );

    // Blobs and dataframes (their uris are fixed by flytekit_write.py, so these literals are deterministic).
    h.file("file", FILE_NAME, FILE_CONTENT.as_bytes(), "");
    h.file("file_csv", CSV_NAME, CSV_CONTENT.as_bytes(), "csv");
    h.directory("directory");
    h.dataframe("dataframe", &["id", "score", "name", "flag", "at"]);
    h.dataframe("dataframe_subset", &FRAME_SUBSET);

    // The case lists agree.
    let rust_cases: BTreeSet<String> = h.cases.iter().map(|s| (*s).to_owned()).collect();
    for only_py in python_cases.difference(&rust_cases) {
        h.fail(only_py, "in cases.py but not mirrored in flytekit_crosscheck.rs");
    }
    for only_rust in rust_cases.difference(&python_cases) {
        h.fail(only_rust, "in flytekit_crosscheck.rs but not in cases.py");
    }
    if h.cases.len() != rust_cases.len() {
        h.fail("(harness)", "a case name is used twice in flytekit_crosscheck.rs");
    }

    // flytekit reads what we wrote.
    let (ok, out) = run_python(&python, "flytekit_read.py", &rust_dir);
    if !ok {
        h.failures.push(format!("flytekit_read.py on Tern's literals:\n{out}"));
    }

    println!("flytekit cross-check, {} cases:", h.cases.len());
    for line in &h.report {
        println!("  {line}");
    }
    println!("  {}", out.trim());
    assert!(h.failures.is_empty(), "{} failure(s):\n{}", h.failures.len(), h.failures.join("\n\n"));
}
