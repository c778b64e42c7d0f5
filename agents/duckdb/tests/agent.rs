//! The DuckDB agent through agent-api's in-process client, on a local data store.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tern_agent_api::prelude::*;
use tern_agent_api::{admin, core};
use tern_agent_duckdb::codes;

use core::literal::Value as LitValue;
use core::literal_type::Type as LitType;
use core::primitive::Value as P;
use core::scalar::Value as S;

struct Env {
    dir: tempfile::TempDir,
    client: InProcessClient,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = client_for(dir.path());
        Self { dir, client }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A second agent process over the same data store (a restart).
    fn restarted(&self) -> InProcessClient {
        client_for(self.dir.path())
    }
}

fn client_for(root: &Path) -> InProcessClient {
    let mut registry = AgentRegistry::new();
    registry.register_async(tern_agent_duckdb::agent()).expect("register");
    InProcessClient::new(Arc::new(registry), AgentServices::local(root))
}

fn lit(v: S) -> core::Literal {
    core::Literal { value: Some(LitValue::Scalar(Box::new(core::Scalar { value: Some(v) }))), ..Default::default() }
}

fn prim(p: P) -> core::Literal {
    lit(S::Primitive(core::Primitive { value: Some(p) }))
}

fn string(s: &str) -> core::Literal {
    prim(P::StringValue(s.into()))
}

fn simple(t: core::SimpleType) -> core::LiteralType {
    core::LiteralType { r#type: Some(LitType::Simple(t as i32)), ..Default::default() }
}

fn dataframe() -> core::LiteralType {
    core::LiteralType { r#type: Some(LitType::StructuredDatasetType(Default::default())), ..Default::default() }
}

fn template(sql: &str, outputs: &[(&str, core::LiteralType)]) -> core::TaskTemplate {
    let variables = outputs
        .iter()
        .map(|(n, t)| (n.to_string(), core::Variable { r#type: Some(t.clone()), ..Default::default() }))
        .collect();
    core::TaskTemplate {
        r#type: "duckdb".into(),
        interface: Some(core::TypedInterface { inputs: None, outputs: Some(core::VariableMap { variables }) }),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 0 })),
        ..Default::default()
    }
}

fn inputs(items: Vec<(&str, core::Literal)>) -> core::LiteralMap {
    core::LiteralMap { literals: items.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
}

fn execution(node: &str) -> admin::TaskExecutionMetadata {
    admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "q".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier { name: "e1".into(), ..Default::default() }),
            }),
            retry_attempt: 0,
        }),
        ..Default::default()
    }
}

fn category() -> Option<admin::TaskCategory> {
    Some(admin::TaskCategory { name: "duckdb".into(), version: 0 })
}

async fn create(
    client: &InProcessClient,
    template: core::TaskTemplate,
    inputs: core::LiteralMap,
    prefix: &str,
    node: Option<&str>,
) -> Result<Vec<u8>, AgentError> {
    client
        .create_task(admin::CreateTaskRequest {
            inputs: Some(inputs),
            template: Some(template.into()),
            output_prefix: prefix.into(),
            task_execution_metadata: node.map(execution).map(Box::new),
        })
        .await
}

async fn get(client: &InProcessClient, meta: &[u8]) -> TaskStatus {
    let r = client
        .get_task(admin::GetTaskRequest { resource_meta: meta.to_vec(), task_category: category(), ..Default::default() })
        .await
        .expect("get_task");
    TaskStatus::from_resource(r)
}

async fn wait(client: &InProcessClient, meta: &[u8]) -> TaskStatus {
    let start = Instant::now();
    loop {
        let s = get(client, meta).await;
        if s.is_terminal() {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "task still {:?}", s.phase);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates, waits, returns the terminal status.
async fn run(env: &Env, sql: &str, outputs: &[(&str, core::LiteralType)], ins: Vec<(&str, core::Literal)>, prefix: &str) -> TaskStatus {
    let meta = create(&env.client, template(sql, outputs), inputs(ins), prefix, None).await.expect("create");
    wait(&env.client, &meta).await
}

fn output<'a>(s: &'a TaskStatus, name: &str) -> &'a core::Literal {
    s.outputs.as_ref().and_then(|o| o.literals.get(name)).unwrap_or_else(|| panic!("no output {name}: {s:?}"))
}

fn primitive(l: &core::Literal) -> &P {
    match &l.value {
        Some(LitValue::Scalar(s)) => match &s.value {
            Some(S::Primitive(core::Primitive { value: Some(p) })) => p,
            other => panic!("not a primitive: {other:?}"),
        },
        other => panic!("not a scalar: {other:?}"),
    }
}

fn dataset(l: &core::Literal) -> &core::StructuredDataset {
    match &l.value {
        Some(LitValue::Scalar(s)) => match &s.value {
            Some(S::StructuredDataset(sd)) => sd,
            other => panic!("not a dataset: {other:?}"),
        },
        other => panic!("not a scalar: {other:?}"),
    }
}

fn assert_failed(s: &TaskStatus, code: &str, needle: &str) {
    assert_eq!(s.phase, Phase::Failed, "{s:?}");
    let e = s.error.as_ref().expect("error");
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.origin, ErrorOrigin::User, "{e}");
    assert!(s.message.contains(needle), "{:?} does not contain {needle:?}", s.message);
}

fn local(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
}

#[tokio::test]
async fn named_parameters_of_every_scalar_kind() {
    use core::SimpleType as T;
    let env = Env::new();
    let sql = "SELECT $i + 1 AS i, $f * 2 AS f, upper($s) AS s, NOT $b AS b, \
               $dt + INTERVAL 1 HOUR AS dt, $d * 2 AS d, $n IS NULL AS n_null, \
               typeof($i) || ',' || typeof($f) || ',' || typeof($dt) || ',' || typeof($d) AS types";
    let outs = [
        ("i", simple(T::Integer)),
        ("f", simple(T::Float)),
        ("s", simple(T::String)),
        ("b", simple(T::Boolean)),
        ("dt", simple(T::Datetime)),
        ("d", simple(T::Duration)),
        ("n_null", simple(T::Boolean)),
        ("types", simple(T::String)),
    ];
    let ins = vec![
        ("i", prim(P::Integer(41))),
        ("f", prim(P::FloatValue(1.25))),
        ("s", string("abc")),
        ("b", prim(P::Boolean(false))),
        ("dt", prim(P::Datetime(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 123_456_000 }))),
        ("d", prim(P::Duration(prost_types::Duration { seconds: 90, nanos: 500_000_000 }))),
        ("n", lit(S::NoneType(core::Void {}))),
        ("unused", lit(S::Generic(Default::default()))),
    ];
    let s = run(&env, sql, &outs, ins, "p1").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(primitive(output(&s, "i")), &P::Integer(42));
    assert_eq!(primitive(output(&s, "f")), &P::FloatValue(2.5));
    assert_eq!(primitive(output(&s, "s")), &P::StringValue("ABC".into()));
    assert_eq!(primitive(output(&s, "b")), &P::Boolean(true));
    assert_eq!(
        primitive(output(&s, "dt")),
        &P::Datetime(prost_types::Timestamp { seconds: 1_700_003_600, nanos: 123_456_000 })
    );
    assert_eq!(primitive(output(&s, "d")), &P::Duration(prost_types::Duration { seconds: 181, nanos: 0 }));
    assert_eq!(primitive(output(&s, "n_null")), &P::Boolean(true));
    assert_eq!(primitive(output(&s, "types")), &P::StringValue("BIGINT,DOUBLE,TIMESTAMP,INTERVAL".into()));
}

const TABLE_SQL: &str = "SELECT range AS id, 'n' || range AS name, range * 1.5 AS score, range % 2 = 0 AS even, \
                         TIMESTAMP '2024-01-01' + INTERVAL (range) DAY AS ts, INTERVAL (range) HOUR AS dur \
                         FROM range($n) ORDER BY id";

#[tokio::test]
async fn results_are_parquet_with_typed_columns() {
    let env = Env::new();
    let s = run(&env, TABLE_SQL, &[("results", dataframe())], vec![("n", prim(P::Integer(10)))], "p2").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    let sd = dataset(output(&s, "results"));
    let dir = env.root().join("p2/results");
    assert_eq!(sd.uri, dir.display().to_string());
    let ty = sd.metadata.as_ref().and_then(|m| m.structured_dataset_type.as_ref()).expect("type");
    assert_eq!(ty.format, "parquet");
    use core::SimpleType as T;
    let cols: Vec<(&str, core::LiteralType)> =
        ty.columns.iter().map(|c| (c.name.as_str(), c.literal_type.clone().unwrap_or_default())).collect();
    assert_eq!(
        cols,
        vec![
            ("id", simple(T::Integer)),
            ("name", simple(T::String)),
            ("score", simple(T::Float)),
            ("even", simple(T::Boolean)),
            ("ts", simple(T::Datetime)),
            ("dur", simple(T::Duration)),
        ]
    );
    // Read it back with DuckDB itself.
    let file = dir.join("00000");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    let path = file.display().to_string();
    let (n, sum, last): (i64, i64, String) = conn
        .query_row(
            "SELECT count(*), sum(id)::BIGINT, max(name) FROM read_parquet($p)",
            duckdb::params![path],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("read back");
    assert_eq!((n, sum, last.as_str()), (10, 45, "n9"));
    let mut stmt = conn.prepare("SELECT column_type FROM (DESCRIBE SELECT * FROM read_parquet($p))").expect("describe");
    let types: Vec<String> = stmt.query_map(duckdb::params![path], |r| r.get(0)).expect("q").map(|t| t.expect("t")).collect();
    assert_eq!(types, ["BIGINT", "VARCHAR", "DECIMAL(21,1)", "BOOLEAN", "TIMESTAMP", "INTERVAL"]);
    // outputs.pb holds the same LiteralMap.
    let stored = std::fs::read(env.root().join("p2/outputs.pb")).expect("outputs.pb");
    assert_eq!(core::LiteralMap::decode(stored.as_slice()).expect("decode"), s.outputs.clone().expect("outputs"));
}

#[tokio::test]
async fn a_previous_result_is_a_view() {
    use core::SimpleType as T;
    let env = Env::new();
    let first = run(&env, TABLE_SQL, &[("results", dataframe())], vec![("n", prim(P::Integer(10)))], "a").await;
    let prev = output(&first, "results").clone();
    let sql = "SELECT count(*) AS n, sum(id) AS total, avg(score) AS mean FROM prev WHERE even";
    let outs = [("n", simple(T::Integer)), ("total", simple(T::Integer)), ("mean", simple(T::Float))];
    let s = run(&env, sql, &outs, vec![("prev", prev.clone())], "b").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(primitive(output(&s, "n")), &P::Integer(5));
    assert_eq!(primitive(output(&s, "total")), &P::Integer(20));
    assert_eq!(primitive(output(&s, "mean")), &P::FloatValue(6.0));

    // A dataset URI naming the parquet file itself, and a relative one, work too.
    let mut file = prev.clone();
    if let Some(LitValue::Scalar(sc)) = &mut file.value {
        if let Some(S::StructuredDataset(sd)) = &mut sc.value {
            sd.uri = "a/results/00000".into();
        }
    }
    let s = run(&env, "SELECT count(*) AS n FROM prev", &[("n", simple(T::Integer))], vec![("prev", file)], "c").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(primitive(output(&s, "n")), &P::Integer(10));

    // Chain: a dataframe output built from a dataframe input.
    let s = run(&env, "SELECT name FROM prev WHERE id < 3", &[("results", dataframe())], vec![("prev", prev)], "d").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert!(local(&dataset(output(&s, "results")).uri).join("00000").is_file());
}

#[tokio::test]
async fn scalar_outputs_need_one_row_and_a_matching_column() {
    use core::SimpleType as T;
    let env = Env::new();
    let s = run(&env, "SELECT * FROM range(3) t(total)", &[("total", simple(T::Integer))], vec![], "x1").await;
    assert_failed(&s, codes::BAD_OUTPUT, "exactly one row");
    let s = run(&env, "SELECT 1 AS other", &[("total", simple(T::Integer))], vec![], "x2").await;
    assert_failed(&s, codes::BAD_OUTPUT, "\"total\"");
    let s = run(&env, "SELECT 'a' AS total", &[("total", simple(T::Integer))], vec![], "x3").await;
    assert_failed(&s, codes::BAD_OUTPUT, "VARCHAR");
    let s = run(&env, "SELECT NULL::INT AS total", &[("total", simple(T::Integer))], vec![], "x4").await;
    assert_failed(&s, codes::BAD_OUTPUT, "NULL");
    let s = run(&env, "CREATE TABLE t (a INT)", &[("total", simple(T::Integer))], vec![], "x5").await;
    assert_failed(&s, codes::BAD_OUTPUT, "must be a query");
    // Integers fill float outputs; SUM's HUGEINT fills integer outputs.
    let s = run(&env, "SELECT sum(range) AS total, count(*) AS ratio FROM range(4)", &[("total", simple(T::Integer)), ("ratio", simple(T::Float))], vec![], "x6").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(primitive(output(&s, "total")), &P::Integer(6));
    assert_eq!(primitive(output(&s, "ratio")), &P::FloatValue(4.0));
    // Optional output: NULL becomes none inside the union.
    let opt = core::LiteralType {
        r#type: Some(LitType::UnionType(core::UnionType { variants: vec![simple(T::Integer), simple(T::None)] })),
        ..Default::default()
    };
    let s = run(&env, "SELECT NULL::BIGINT AS maybe", &[("maybe", opt)], vec![], "x7").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
}

#[tokio::test]
async fn sql_errors_fail_with_duckdbs_message() {
    let env = Env::new();
    let s = run(&env, "SELEC 1", &[], vec![], "e1").await;
    assert_failed(&s, codes::SQL_ERROR, "Parser Error: syntax error at or near \"SELEC\"");
    let wire = s.clone().into_resource();
    assert_eq!(wire.agent_error.expect("agent_error").code, "TERN-Q001");
    let s = run(&env, "SELECT nope FROM range(1)", &[], vec![], "e2").await;
    assert_failed(&s, codes::SQL_ERROR, "Binder Error");
    let s = run(&env, "SELECT 1; SELECT 'x'::INT", &[], vec![], "e3").await;
    assert_failed(&s, codes::SQL_ERROR, "statement 2 of 2: Conversion Error");
    // The sandbox: other files are off limits.
    let s = run(&env, "SELECT * FROM read_text('/etc/hostname')", &[], vec![], "e4").await;
    assert_failed(&s, codes::SQL_ERROR, "Permission Error");
}

#[tokio::test]
async fn string_inputs_stay_data() {
    use core::SimpleType as T;
    let env = Env::new();
    let sql = "CREATE TABLE t AS SELECT 1 AS a; SELECT $x AS x, (SELECT count(*) FROM t) AS n, $x = '1; DROP TABLE t' AS same";
    let outs = [("x", simple(T::String)), ("n", simple(T::Integer)), ("same", simple(T::Boolean))];
    let s = run(&env, sql, &outs, vec![("x", string("1; DROP TABLE t"))], "s1").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(primitive(output(&s, "x")), &P::StringValue("1; DROP TABLE t".into()));
    assert_eq!(primitive(output(&s, "n")), &P::Integer(1));
    assert_eq!(primitive(output(&s, "same")), &P::Boolean(true));
    let quote = "'); DROP TABLE t; --";
    let s = run(&env, "CREATE TABLE t AS SELECT $x AS v; SELECT v AS x FROM t", &[("x", simple(T::String))], vec![("x", string(quote))], "s2").await;
    assert_eq!(primitive(output(&s, "x")), &P::StringValue(quote.into()));
}

#[tokio::test]
async fn parameter_errors_name_the_parameter() {
    let env = Env::new();
    let s = run(&env, "SELECT $nope AS a", &[], vec![("other", prim(P::Integer(1)))], "m1").await;
    assert_failed(&s, codes::MISSING_PARAMETER, "$nope");
    let s = run(&env, "SELECT ? AS a", &[], vec![], "m2").await;
    assert_failed(&s, codes::MISSING_PARAMETER, "positional");
    let s = run(&env, "SELECT $l AS a", &[], vec![("l", core::Literal { value: Some(LitValue::Collection(Default::default())), ..Default::default() })], "m3").await;
    assert_failed(&s, codes::BAD_INPUT, "\"l\" is a list");
}

#[tokio::test]
async fn dataframe_inputs_must_be_local_parquet() {
    let env = Env::new();
    let remote = lit(S::StructuredDataset(core::StructuredDataset { uri: "s3://bucket/df".into(), metadata: None }));
    let s = run(&env, "SELECT * FROM df", &[], vec![("df", remote)], "r1").await;
    assert_failed(&s, codes::UNSUPPORTED_LOCATION, "s3://bucket/df");
    let missing = lit(S::StructuredDataset(core::StructuredDataset { uri: "nowhere".into(), metadata: None }));
    let s = run(&env, "SELECT * FROM df", &[], vec![("df", missing)], "r2").await;
    assert_failed(&s, codes::BAD_INPUT, "nowhere");
}

#[tokio::test]
async fn create_without_sql_is_invalid() {
    let env = Env::new();
    let mut t = template("", &[]);
    let err = create(&env.client, t.clone(), Default::default(), "n1", None).await.unwrap_err();
    assert_eq!((err.code.as_ref(), err.class), (codes::NO_SQL, tern_agent_api::error::ErrorClass::InvalidArgument));
    t.target = None;
    let err = create(&env.client, t, Default::default(), "n1", None).await.unwrap_err();
    assert_eq!(err.code, codes::NO_SQL);
}

#[tokio::test]
async fn repeated_create_runs_the_query_once() {
    use core::SimpleType as T;
    let env = Env::new();
    let t = template("SELECT uuid()::VARCHAR AS run_id, (SELECT count(*) FROM range(3000000)) AS n", &[("run_id", simple(T::String))]);
    let m1 = create(&env.client, t.clone(), Default::default(), "i1", Some("n0")).await.expect("create");
    let m2 = create(&env.client, t.clone(), Default::default(), "i1", Some("n0")).await.expect("create again");
    assert_eq!(m1, m2);
    let s1 = wait(&env.client, &m1).await;
    assert_eq!(s1.phase, Phase::Succeeded, "{s1:?}");
    let pb = env.root().join("i1/outputs.pb");
    let written = std::fs::metadata(&pb).and_then(|m| m.modified()).expect("mtime");
    let m3 = create(&env.client, t.clone(), Default::default(), "i1", Some("n0")).await.expect("create after finish");
    assert_eq!(m1, m3);
    assert_eq!(wait(&env.client, &m3).await.outputs, s1.outputs);
    // After a restart, the finished attempt is not run again either.
    let restarted = env.restarted();
    let m4 = create(&restarted, t, Default::default(), "i1", Some("n0")).await.expect("create after restart");
    assert_eq!(m1, m4);
    assert_eq!(wait(&restarted, &m4).await.outputs, s1.outputs);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(std::fs::metadata(&pb).and_then(|m| m.modified()).expect("mtime"), written);
}

#[tokio::test]
async fn delete_aborts_a_running_query() {
    let env = Env::new();
    let t = template("SELECT count(*) FROM range(100000) a, range(1000000) b WHERE a.range + b.range = -1", &[]);
    let meta = create(&env.client, t, Default::default(), "d1", None).await.expect("create");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&env.client, &meta).await.phase, Phase::Running);
    env.client
        .delete_task(admin::DeleteTaskRequest { resource_meta: meta.clone(), task_category: category(), ..Default::default() })
        .await
        .expect("delete");
    assert_eq!(get(&env.client, &meta).await.phase, Phase::Aborted);
    // Deleting again, or a finished task, is fine.
    env.client
        .delete_task(admin::DeleteTaskRequest { resource_meta: meta, task_category: category(), ..Default::default() })
        .await
        .expect("delete again");
}

#[tokio::test]
async fn a_job_unknown_after_restart_is_lost_unless_it_left_outputs() {
    use core::SimpleType as T;
    let env = Env::new();
    let meta = create(&env.client, template("SELECT 7 AS x", &[("x", simple(T::Integer))]), Default::default(), "l1", None)
        .await
        .expect("create");
    let done = wait(&env.client, &meta).await;
    assert_eq!(done.phase, Phase::Succeeded);
    let restarted = env.restarted();
    let s = get(&restarted, &meta).await;
    assert_eq!((s.phase, &s.outputs), (Phase::Succeeded, &done.outputs));

    let lost = ResourceMeta::encode(&tern_agent_duckdb::JobMeta { job: "gone".into(), output_prefix: "l2".into() })
        .expect("meta")
        .into_bytes();
    let s = get(&restarted, &lost).await;
    assert_eq!(s.phase, Phase::RetryableFailed, "{s:?}");
    let e = s.error.expect("error");
    assert_eq!((e.code.as_ref(), e.origin, e.is_retryable()), (codes::JOB_LOST, ErrorOrigin::System, true));
    assert!(s.message.contains("job lost"), "{}", s.message);
}

#[tokio::test]
async fn a_repeated_create_after_a_restart_does_not_run_an_unfinished_query_again() {
    let env = Env::new();
    let t = template("SELECT count(*) FROM range(100000) a, range(1000000) b WHERE a.range + b.range = -1", &[]);
    let meta = create(&env.client, t.clone(), Default::default(), "r1", Some("n0")).await.expect("create");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let restarted = env.restarted();
    let again = create(&restarted, t, Default::default(), "r1", Some("n0")).await.expect("create after restart");
    assert_eq!(again, meta, "the same handle, byte for byte");
    // The new process started nothing: the job is the first process's, unknown here and without outputs.
    let s = get(&restarted, &again).await;
    assert_eq!(s.phase, Phase::RetryableFailed, "{s:?}");
    assert!(s.message.contains("job lost"), "{}", s.message);
    env.client
        .delete_task(admin::DeleteTaskRequest { resource_meta: meta, task_category: category(), ..Default::default() })
        .await
        .expect("delete");
}

#[tokio::test]
async fn tasks_without_outputs_and_multi_statement_params() {
    let env = Env::new();
    let sql = "CREATE TABLE t AS SELECT $a AS v; INSERT INTO t VALUES ($b); SELECT * FROM t";
    let s = run(&env, sql, &[], vec![("a", prim(P::Integer(1))), ("b", prim(P::Integer(2)))], "w1").await;
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(s.outputs, Some(core::LiteralMap::default()));
    assert!(env.root().join("w1/outputs.pb").is_file());
}
