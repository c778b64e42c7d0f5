//! The DuckDB agent passes the agent conformance kit (`tern_agent_api::testkit`). Every run
//! of the successful query writes one uniquely named file (a partitioned `COPY ... APPEND`),
//! so the kit counts the queries that really ran.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_agent_duckdb::{DuckDbAgent, DuckDbConfig};
use tern_type_transformers::{FlyteType, LiteralMapBuilder};

fn template(sql: &str, outputs: &[(&str, core::LiteralType)]) -> core::TaskTemplate {
    let variables = outputs
        .iter()
        .map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), ..Default::default() }))
        .collect();
    core::TaskTemplate {
        r#type: tern_agent_duckdb::TASK_TYPE.into(),
        interface: Some(core::TypedInterface { inputs: None, outputs: Some(core::VariableMap { variables }) }),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 0 })),
        ..Default::default()
    }
}

/// Files the successful query wrote, one per run.
fn runs(dir: &Path) -> u64 {
    walk(dir)
}

fn walk(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
        .sum()
}

#[tokio::test]
async fn duckdb_passes_the_conformance_kit() {
    let store = tempfile::tempdir().unwrap();
    let counter = tempfile::tempdir().unwrap();
    let runs_dir = counter.path().join("runs");
    let config = DuckDbConfig { allowed_directories: vec![counter.path().to_owned()], ..Default::default() };
    let agent: Arc<dyn AsyncAgent> = Arc::new(DuckDbAgent::new(config));
    let mut registry = AgentRegistry::new();
    registry.register_async(agent.clone()).unwrap();
    let client = Arc::new(InProcessClient::new(Arc::new(registry), AgentServices::local(store.path())));

    let success = template(
        &format!(
            "COPY (SELECT 1 AS k, 1 AS one) TO '{}' (FORMAT csv, PARTITION_BY (k), APPEND, FILENAME_PATTERN 'run_{{uuid}}'); \
             SELECT 42 AS n, 'forty-two' AS s",
            runs_dir.display()
        ),
        &[("n", i64::literal_type()), ("s", String::literal_type())],
    );
    let counted = runs_dir.clone();
    let case = Case::new(success, core::LiteralMap::default())
        .expect_outputs(LiteralMapBuilder::new().with("n", &42i64).unwrap().with("s", &"forty-two".to_owned()).unwrap().build())
        // DuckDB rejects the SQL: FAILED with TERN-Q001.
        .failing(template("SELECT nope FROM range(1)", &[]), core::LiteralMap::default())
        // Runs for minutes unless interrupted.
        .long_running(
            template("SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1", &[]),
            core::LiteralMap::default(),
        )
        .count_jobs(move || {
            let n = runs(&counted);
            async move { n }
        })
        .async_agent(agent)
        .no_backend_states("queries run in this process; their life-cycle is LocalJobs' Rust enum, not a backend's states")
        .poll_timeout(Duration::from_secs(60));
    testkit::run(client, case).await.assert_passes();
}
