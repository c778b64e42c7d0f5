//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through the fuzz
//! targets' bodies (`fuzz/harness.rs`), on stable, as part of the normal `cargo test`: what
//! fuzzing found (its minimized corpus and each crash's input) stays checked without fuzzing.
//! It lives in the root crate because that crate already links every embedded agent; the
//! harness configures all of them, so it needs every agent feature (the default build).
#![cfg(all(
    feature = "agent-echo",
    feature = "agent-sleep",
    feature = "agent-webhook",
    feature = "agent-duckdb",
    feature = "agent-shell",
    feature = "agent-snowflake",
    feature = "agent-bigquery",
    feature = "agent-databricks",
    feature = "agent-batch",
    feature = "agent-ray",
    feature = "agent-dask",
    feature = "agent-gpu",
    feature = "agent-spark",
    feature = "agent-lepton"
))]
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Once;

#[path = "../fuzz/harness.rs"]
mod harness;

thread_local! {
    /// Panics on this thread, counted: the dispatcher turns an agent's panic into an INTERNAL
    /// answer (so a served gateway survives it), which would hide it from `catch_unwind`. The
    /// harness runs agents on a current-thread runtime, so their panics land on this thread.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus", dir.display());
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    count_panics();
    for file in corpus(target) {
        let data = std::fs::read(&file).expect("corpus file");
        let before = PANICS.with(Cell::get);
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(|| body(&data));
        if std::env::var_os("TERN_FUZZ_VERBOSE").is_some() {
            eprintln!("{target}: {} in {:?}", file.display(), started.elapsed());
        }
        let panicked = outcome.is_err() || PANICS.with(Cell::get) != before;
        assert!(!panicked, "{target}: {} panicked (see above)", file.display());
    }
}

#[test]
fn grpc_request_corpus() {
    replay("grpc_request", harness::grpc_request);
}

#[test]
fn resource_meta_corpus() {
    replay("resource_meta", harness::resource_meta);
}

#[test]
fn literal_corpus() {
    replay("literal", harness::literal);
}

#[test]
fn workflow_corpus() {
    replay("workflow", harness::workflow);
}

#[test]
fn tern_toml_corpus() {
    replay("tern_toml", harness::tern_toml);
}

#[test]
fn input_text_corpus() {
    replay("input_text", harness::input_text);
}

/// The gateway the gRPC and resource_meta targets fuzz serves every embedded agent: a
/// section that stops validating would silently drop that agent from fuzzing.
#[test]
fn fuzz_gateway_serves_every_embedded_agent() {
    let served: Vec<String> = harness::served_categories().into_iter().map(|(name, _)| name).collect();
    for agent in tern_gateway::registry::compiled::compiled_in() {
        let name = agent.name.as_str();
        let category = match name {
            "batch" => "aws-batch",
            "bigquery" => "bigquery_query_job_task",
            "lepton" => "lepton_endpoint_deployment_task",
            "snowflake" => "snowflake",
            other => other,
        };
        assert!(served.iter().any(|s| s == category), "{name} ({category}) is not served: {served:?}");
    }
}
