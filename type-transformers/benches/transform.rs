//! Encode+decode throughput of Tern's typed transformers against flytekit's TypeEngine on the
//! same values, in the same run (issue 3, item 8). A documented command, not a test:
//!
//!     cargo bench -p tern-type-transformers --bench transform
//!
//! The mixed value set (ints, floats, strings, a datetime, lists, a map, Optionals with and
//! without a value, a derived dataclass struct) is mirrored value for value by
//! `tests/interop/typecheck/bench_flytekit.py`. One "op" is one value converted to its `Literal`
//! and back (`to_literal` then `from_literal`; flytekit: `TypeEngine.to_literal` then
//! `TypeEngine.to_python_value`), literal types computed once beforehand on both sides.
//!
//! Knobs (env): BENCH_N (1000): iterations over the value set, the same for both sides;
//! BENCH_MIN_SECS (2): Tern repeats its N iterations until this much time has passed and reports
//! the median round (one N-round of Tern takes milliseconds); TERN_PYTHON (default
//! ~/.cache/tern/venv/bin/python, made by scripts/test.sh): the interpreter with flytekit 1.16.31.
//!
//! flytekit's `TypeEngine.to_literal` caches literals by (value, type); bench_flytekit.py times
//! its loop with the cache cleared before every call (each value really encoded: the headline
//! ratio) and with the cache left alone (mostly cache hits: an upper bound for flytekit).
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tern_type_transformers::FlyteType;

#[derive(FlyteType, Debug, Clone, PartialEq)]
struct BenchRecord {
    id: i64,
    name: String,
    score: f64,
    tags: Vec<String>,
    attrs: BTreeMap<String, i64>,
    note: Option<String>,
    at: DateTime<Utc>,
}

/// bench_flytekit.py's `value_set()`, in the same order.
struct Values {
    int: i64,
    float: f64,
    string: String,
    datetime: DateTime<Utc>,
    list_int: Vec<i64>,
    list_str: Vec<String>,
    map_float: HashMap<String, f64>,
    optional_some: Option<i64>,
    optional_none: Option<i64>,
    record: BenchRecord,
}

const VALUES: u64 = 10;

fn values() -> Values {
    Values {
        int: 1_234_567,
        float: 3.25,
        string: "hello, tern ✓".to_owned(),
        datetime: Utc.with_ymd_and_hms(2024, 5, 17, 12, 34, 56).unwrap() + chrono::Duration::microseconds(789_000),
        list_int: (0..16).collect(),
        list_str: (0..8).map(|i| format!("item-{i}")).collect(),
        map_float: (0..8).map(|i| (format!("k{i}"), i as f64 * 0.5)).collect(),
        optional_some: Some(7),
        optional_none: None,
        record: BenchRecord {
            id: 99,
            name: "record".to_owned(),
            score: 0.75,
            tags: vec!["a".into(), "b".into(), "c".into()],
            attrs: BTreeMap::from([("x".to_owned(), 1), ("y".to_owned(), 2)]),
            note: None,
            at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        },
    }
}

/// Encodes and decodes `v`; panics (before any timing) if it does not round-trip.
fn check<T: FlyteType + PartialEq + std::fmt::Debug>(name: &str, v: &T) {
    let lit = v.to_literal().unwrap_or_else(|e| panic!("{name}: to_literal: {e}"));
    let back = T::from_literal(&lit).unwrap_or_else(|e| panic!("{name}: from_literal: {e}"));
    assert_eq!(&back, v, "{name} does not round-trip");
}

#[inline(always)]
fn op<T: FlyteType>(v: &T) {
    let lit = black_box(v).to_literal().expect("to_literal");
    black_box(T::from_literal(black_box(&lit)).expect("from_literal"));
}

fn round(v: &Values, n: u64) {
    for _ in 0..n {
        op(&v.int);
        op(&v.float);
        op(&v.string);
        op(&v.datetime);
        op(&v.list_int);
        op(&v.list_str);
        op(&v.map_float);
        op(&v.optional_some);
        op(&v.optional_none);
        op(&v.record);
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}

fn python() -> PathBuf {
    std::env::var_os("TERN_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/tern/venv/bin/python"))
}

struct PyFigures {
    ops_per_sec: f64,
    ops_per_sec_cached: f64,
    seconds: f64,
}

fn flytekit(n: u64) -> Result<PyFigures, String> {
    let python = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/typecheck/bench_flytekit.py");
    let out = Command::new(&python).arg(&script).arg(n.to_string()).output().map_err(|e| {
        format!("cannot run {}: {e} (run scripts/test.sh once to create the virtualenv)", python.display())
    })?;
    if !out.status.success() {
        return Err(format!("bench_flytekit.py failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).ok_or("no JSON line from bench_flytekit.py")?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("bad JSON {line:?}: {e}"))?;
    let num = |k: &str| v.get(k).and_then(|x| x.as_f64()).ok_or_else(|| format!("no {k} in {line}"));
    Ok(PyFigures {
        ops_per_sec: num("ops_per_sec")?,
        ops_per_sec_cached: num("ops_per_sec_cached")?,
        seconds: num("seconds")?,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no such flag: do a quick smoke run then.
    let benching = std::env::args().any(|a| a == "--bench");
    let n = if benching { env_num("BENCH_N", 1000) } else { 10 };
    let min = Duration::from_secs(if benching { env_num("BENCH_MIN_SECS", 2) } else { 0 });

    let v = values();
    check("int", &v.int);
    check("float", &v.float);
    check("str", &v.string);
    check("datetime", &v.datetime);
    check("list_int", &v.list_int);
    check("list_str", &v.list_str);
    check("map_float", &v.map_float);
    check("optional_some", &v.optional_some);
    check("optional_none", &v.optional_none);
    check("record", &v.record);

    // Warm-up, then rounds of N iterations until `min` has passed (at least 5 rounds).
    round(&v, n);
    let mut rounds: Vec<Duration> = Vec::new();
    let start = Instant::now();
    while rounds.len() < 5 || start.elapsed() < min {
        let t = Instant::now();
        round(&v, n);
        rounds.push(t.elapsed());
    }
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    let ops = n * VALUES;
    let tern_rate = ops as f64 / median.as_secs_f64();

    println!("type transformers: encode+decode of {VALUES} mixed values (int, float, str, datetime, list<int>[16],");
    println!("list<str>[8], map<float>[8], optional some/none, a 7-field dataclass), N = {n} iterations each side");
    println!(
        "tern (FlyteType):              {:>12.0} ops/s  (median of {} rounds of {ops} ops, {:.2} ms each)",
        tern_rate,
        rounds.len(),
        median.as_secs_f64() * 1e3
    );
    if !benching {
        return;
    }
    match flytekit(n) {
        Ok(py) => {
            println!(
                "flytekit 1.16.31 TypeEngine:   {:>12.0} ops/s  ({ops} ops in {:.2} s; literal cache cleared per to_literal)",
                py.ops_per_sec, py.seconds
            );
            println!(
                "flytekit, literal cache hits:  {:>12.0} ops/s  (same loop, its to_literal cache left on)",
                py.ops_per_sec_cached
            );
            let ratio = tern_rate / py.ops_per_sec;
            println!(
                "ratio tern/flytekit: {ratio:.0}x (target >= 50x: {}); against flytekit with cache hits: {:.0}x",
                if ratio >= 50.0 { "met" } else { "NOT met" },
                tern_rate / py.ops_per_sec_cached
            );
        }
        Err(e) => println!("flytekit side not measured: {e}"),
    }
}
