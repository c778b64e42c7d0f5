//! The BigQuery agent against the BigQuery emulator (crucible-emulator): typed parameters as
//! BigQuery receives them, materialized Parquet results, one job per attempt across agent
//! restarts, error classes, cancellation, credentials and unreachable endpoints.
mod emulator;

use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_bigquery::{agent_with, AuthMode, BigQueryConfig, JobMeta, TASK_TYPE};
use tern_type_transformers::structs::json_to_struct;
use tern_type_transformers::{read_parquet, FlyteType, LiteralMapBuilder, StructuredDataset};

const PROJECT: &str = "tern-agent-test";

fn template(sql: &str, inputs: &[(&str, core::LiteralType)], results: bool, extra: serde_json::Value) -> core::TaskTemplate {
    let var = |t: &core::LiteralType| core::Variable { r#type: Some(t.clone()), ..Default::default() };
    let mut custom = serde_json::json!({"ProjectID": PROJECT, "Location": null, "Domain": "development"});
    custom.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    core::TaskTemplate {
        r#type: TASK_TYPE.into(),
        interface: Some(core::TypedInterface {
            inputs: Some(core::VariableMap { variables: inputs.iter().map(|(n, t)| (n.to_string(), var(t))).collect() }),
            outputs: results.then(|| core::VariableMap {
                variables: [("results".to_owned(), var(&StructuredDataset::literal_type_for(&[], "")))].into(),
            }),
        }),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
        ..Default::default()
    }
}

fn execution(node: &str, attempt: u32) -> Box<admin::TaskExecutionMetadata> {
    Box::new(admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "bq.task".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: "p".into(),
                    domain: "d".into(),
                    name: format!("exec-{}", uuid_like()),
                    org: String::new(),
                }),
            }),
            retry_attempt: attempt,
        }),
        ..Default::default()
    })
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

struct Setup {
    emulator: emulator::Emulator,
    store: tempfile::TempDir,
}

impl Setup {
    fn start() -> Option<Self> {
        Some(Self { emulator: emulator::Emulator::start()?, store: tempfile::tempdir().unwrap() })
    }

    fn agent(&self, config: BigQueryConfig) -> Arc<dyn AsyncAgent> {
        agent_with(config, &AgentInit::for_tests(self.store.path())).unwrap()
    }

    fn ctx(&self, execution: Option<Box<admin::TaskExecutionMetadata>>) -> TaskContext {
        AgentServices::local(self.store.path()).task_context(
            self.store.path().join("out").display().to_string(),
            execution,
            None,
        )
    }
}

async fn wait(agent: &dyn AsyncAgent, ctx: &TaskContext, meta: &ResourceMeta) -> TaskStatus {
    for _ in 0..200 {
        let status = agent.get(ctx, meta).await.unwrap();
        if status.is_terminal() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job did not finish");
}

fn request(template: core::TaskTemplate, inputs: core::LiteralMap) -> TaskRequest {
    TaskRequest { template: Box::new(template), inputs }
}

#[tokio::test]
async fn inputs_reach_bigquery_as_typed_named_parameters_and_results_materialize_as_parquet() {
    let Some(s) = Setup::start() else { return };
    let agent = s.agent(s.emulator.config());
    let dt = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:30:15.123456Z").unwrap().with_timezone(&chrono::Utc);
    let inputs = LiteralMapBuilder::new()
        .with("n", &41i64).unwrap()
        .with("f", &1.5f64).unwrap()
        .with("s", &"it's; DROP TABLE x".to_owned()).unwrap()
        .with("b", &true).unwrap()
        .with("d", &dt).unwrap()
        .with("ids", &vec![3i64, 4]).unwrap()
        .build();
    let types = [
        ("n", i64::literal_type()),
        ("f", f64::literal_type()),
        ("s", String::literal_type()),
        ("b", bool::literal_type()),
        ("d", chrono::DateTime::<chrono::Utc>::literal_type()),
        ("ids", Vec::<i64>::literal_type()),
    ];
    let sql = "SELECT @n + 1 AS answer, @f * 2 AS twice, @s AS s, NOT @b AS nb, @d AS d, ARRAY_LENGTH(@ids) AS k";
    let ctx = s.ctx(Some(execution("params", 0)));
    let meta = agent
        .create(&ctx, request(template(sql, &types, true, serde_json::json!({"materialize": "parquet"})), inputs))
        .await
        .unwrap();
    let handle: JobMeta = meta.decode().unwrap();

    // What BigQuery received: flytekit's parameter forms (INT64 "41", DATETIME without zone, ...).
    let job = s.emulator.job(PROJECT, &handle.job_id).await;
    let query = &job["configuration"]["query"];
    assert_eq!(query["parameterMode"], "NAMED");
    assert_eq!(query["useLegacySql"], false);
    let params: serde_json::Value = query["queryParameters"].clone();
    let by_name = |n: &str| params.as_array().unwrap().iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(by_name("n")["parameterType"]["type"], "INT64");
    assert_eq!(by_name("n")["parameterValue"]["value"], "41");
    assert_eq!(by_name("d")["parameterType"]["type"], "DATETIME");
    assert_eq!(by_name("d")["parameterValue"]["value"], "2024-05-01T12:30:15.123456");
    assert_eq!(by_name("ids")["parameterType"], serde_json::json!({"type": "ARRAY", "arrayType": {"type": "INT64"}}));

    let status = wait(agent.as_ref(), &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.log_links[0].name, "BigQuery Console");
    assert!(status.log_links[0].uri.contains(&format!("j=bq:US:{}", handle.job_id)), "{}", status.log_links[0].uri);
    let sd = StructuredDataset::from_dataset_literal(&status.outputs.unwrap().literals["results"]).unwrap();
    assert!(sd.uri.ends_with("/out/results"), "{}", sd.uri);
    assert_eq!(sd.format, "parquet");
    let names: Vec<&str> = sd.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["answer", "twice", "s", "nb", "d", "k"]);
    let store = LocalDataStore::shared(s.store.path());
    let batches = read_parquet(store.as_ref(), &sd, None).await.unwrap();
    let b = &batches[0];
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 42);
    assert_eq!(b.column(1).as_primitive::<Float64Type>().value(0), 3.0);
    assert_eq!(b.column(2).as_string::<i32>().value(0), "it's; DROP TABLE x", "a string input stays data");
    assert!(!b.column(3).as_boolean().value(0));
    assert_eq!(b.column(4).as_primitive::<TimestampMicrosecondType>().value(0), dt.timestamp_micros());
    assert_eq!(b.column(5).as_primitive::<Int64Type>().value(0), 2);
}

#[tokio::test]
async fn without_materialization_results_is_flytekits_bq_uri_of_the_destination_table() {
    let Some(s) = Setup::start() else { return };
    let agent = s.agent(s.emulator.config());
    let ctx = s.ctx(Some(execution("uri", 0)));
    let meta = agent.create(&ctx, request(template("SELECT 1 AS one", &[], true, serde_json::json!({})), Default::default())).await.unwrap();
    let handle: JobMeta = meta.decode().unwrap();
    let status = wait(agent.as_ref(), &ctx, &meta).await;
    let table = &s.emulator.job(PROJECT, &handle.job_id).await["configuration"]["query"]["destinationTable"];
    let want = format!("bq://{}:{}.{}", table["projectId"].as_str().unwrap(), table["datasetId"].as_str().unwrap(), table["tableId"].as_str().unwrap());
    let sd = StructuredDataset::from_dataset_literal(&status.outputs.unwrap().literals["results"]).unwrap();
    assert_eq!((sd.uri, sd.format, sd.columns.len()), (want, String::new(), 0));
    assert!(std::str::from_utf8(meta.as_bytes()).unwrap().starts_with("{\"job_id\":\"tern_"), "{meta:?}");
}

#[tokio::test]
async fn results_too_large_to_materialize_fail_the_task_instead_of_every_get() {
    let Some(s) = Setup::start() else { return };
    let agent = s.agent(BigQueryConfig { max_materialized_rows: 1, ..s.emulator.config() });
    let ctx = s.ctx(Some(execution("too-many-rows", 0)));
    let sql = "SELECT 1 AS n UNION ALL SELECT 2 AS n";
    let meta = agent
        .create(&ctx, request(template(sql, &[], true, serde_json::json!({"materialize": "parquet"})), Default::default()))
        .await
        .unwrap();
    // The job itself succeeds; its rows cannot become the output: a terminal, user failure with the
    // console link, not an error answered to every GetTask.
    let status = wait(agent.as_ref(), &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    let error = status.error.as_ref().unwrap();
    assert_eq!((error.code.as_ref(), error.origin), ("TERN-J012", ErrorOrigin::User), "{status:?}");
    assert!(status.message.contains("max_materialized_rows"), "{}", status.message);
    assert_eq!(status.log_links[0].name, "BigQuery Console");
}

#[tokio::test]
async fn one_job_per_attempt_even_across_agent_restarts() {
    let Some(s) = Setup::start() else { return };
    let t = template("SELECT 2 AS two", &[], true, serde_json::json!({}));
    let exec = execution("restart", 0);
    let first = s.agent(s.emulator.config());
    let a = first.create(&s.ctx(Some(exec.clone())), request(t.clone(), Default::default())).await.unwrap();
    let b = first.create(&s.ctx(Some(exec.clone())), request(t.clone(), Default::default())).await.unwrap();
    drop(first);
    // A new agent (a restarted gateway) with the same attempt: attaches to the job (HTTP 409 → jobs.get).
    let second = s.agent(s.emulator.config());
    let c = second.create(&s.ctx(Some(exec.clone())), request(t.clone(), Default::default())).await.unwrap();
    assert_eq!((a.clone(), b), (c.clone(), a.clone()));
    assert_eq!(s.emulator.count_jobs(PROJECT).await, 1, "one job at the emulator");
    assert_eq!(s.emulator.stats().await["inserts"], 3, "three jobs.insert calls reached it");
    let mut retry = exec.clone();
    retry.task_execution_id.as_mut().unwrap().retry_attempt = 1;
    second.create(&s.ctx(Some(retry)), request(t, Default::default())).await.unwrap();
    assert_eq!(s.emulator.count_jobs(PROJECT).await, 2, "a new retry attempt is a new job");
}

#[tokio::test]
async fn user_errors_fail_permanently_backend_errors_are_retryable() {
    let Some(s) = Setup::start() else { return };
    let agent = s.agent(s.emulator.config());
    let run = |sql: &'static str| {
        let agent = agent.clone();
        let ctx = s.ctx(Some(execution(sql, 0)));
        async move {
            let meta = agent.create(&ctx, request(template(sql, &[], false, serde_json::json!({})), Default::default())).await.unwrap();
            wait(agent.as_ref(), &ctx, &meta).await
        }
    };
    let bad_sql = run("SELEC 1").await;
    assert_eq!(bad_sql.phase, Phase::Failed);
    assert_eq!(bad_sql.error.as_ref().unwrap().code, "TERN-J003");
    let missing = run("SELECT * FROM nowhere.missing_table").await;
    assert_eq!(missing.phase, Phase::Failed, "{missing:?}");
    assert_eq!(missing.error.as_ref().unwrap().code, "TERN-J004", "{missing:?}");
    assert!(missing.message.contains("nowhere"), "{}", missing.message);
    s.emulator.drive(Some("DONE:backendError")).await;
    let backend = run("SELECT 3").await;
    assert_eq!(backend.phase, Phase::RetryableFailed);
    assert_eq!(backend.error.as_ref().unwrap().code, "TERN-J007");
    assert_eq!(backend.error.as_ref().unwrap().origin, ErrorOrigin::System);
    s.emulator.drive(Some("DONE:rateLimitExceeded")).await;
    assert_eq!(run("SELECT 4").await.error.unwrap().code, "TERN-J008");
    s.emulator.drive(Some("DONE:accessDenied")).await;
    assert_eq!(run("SELECT 5").await.error.unwrap().code, "TERN-J005");
}

#[tokio::test]
async fn delete_cancels_the_running_job_once_and_is_idempotent() {
    let Some(s) = Setup::start() else { return };
    let agent = s.agent(s.emulator.config());
    let ctx = s.ctx(Some(execution("cancel", 0)));
    let meta = agent
        .create(&ctx, request(template("SELECT 1 /* TERN_HOLD */", &[], false, serde_json::json!({})), Default::default()))
        .await
        .unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Running);
    agent.delete(&ctx, &meta).await.unwrap();
    assert_eq!(s.emulator.stats().await["cancels"], 1, "jobs.cancel reached BigQuery");
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Aborted);
    agent.delete(&ctx, &meta).await.unwrap();
    let gone = ResourceMeta::encode(&JobMeta {
        job_id: "tern_never_created".into(),
        project: PROJECT.into(),
        location: Some("US".into()),
        results: false,
        output_prefix: None,
    })
    .unwrap();
    agent.delete(&ctx, &gone).await.expect("cancelling an unknown job is OK");
    let e = agent.get(&ctx, &gone).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.class), ("TERN-J011", tern_agent_api::error::ErrorClass::NotFound));
}

#[tokio::test]
async fn credentials_and_endpoints_fail_cleanly_without_leaking_the_key() {
    let Some(s) = Setup::start() else { return };
    let t = template("SELECT 1", &[], false, serde_json::json!({}));
    // No credentials configured, not anonymous.
    let agent = s.agent(BigQueryConfig { endpoint: s.emulator.root(), ..Default::default() });
    let e = agent.create(&s.ctx(Some(execution("nocreds", 0))), request(t.clone(), Default::default())).await.unwrap_err();
    assert_eq!(e.code, "TERN-J010");
    assert!(!e.is_retryable());
    // A key file that is not a service-account key: named by reference, never echoed.
    let key = s.store.path().join("key.json");
    std::fs::write(&key, "{\"private_key\": \"-----BEGIN PRIVATE KEY----- s3cr3t\"}").unwrap();
    let agent = s.agent(BigQueryConfig {
        endpoint: s.emulator.root(),
        auth: AuthMode::ServiceAccount,
        credentials: Some(SecretRef::File(key.clone())),
        ..Default::default()
    });
    let e = agent.create(&s.ctx(Some(execution("badkey", 0))), request(t.clone(), Default::default())).await.unwrap_err();
    assert_eq!(e.code, "TERN-J010");
    assert!(e.message.contains(&key.display().to_string()) && !e.message.contains("s3cr3t"), "{e}");
    // Nothing listens there: a retryable transport error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let agent = s.agent(BigQueryConfig {
        endpoint: format!("http://127.0.0.1:{closed}"),
        auth: AuthMode::Anonymous,
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    let e = agent.create(&s.ctx(Some(execution("down", 0))), request(t, Default::default())).await.unwrap_err();
    assert_eq!(e.code, "TERN-J009");
    assert!(e.is_retryable());
    assert_eq!(s.emulator.count_jobs(PROJECT).await, 0);
}
