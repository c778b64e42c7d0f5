//! The Snowflake agent against the emulator (fakesnow + the test-side shim, `support`): what it
//! sends, what it reports, and that a task execution submits exactly one query.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use serde_json::Value;
use support::{execution, services, template, wait, PASSWORD};
use tern_agent_api::error::codes as api_codes;
use tern_agent_api::prelude::*;
use tern_agent_snowflake::{codes, QueryMeta, SnowflakeAgent, SnowflakeConfig, LEDGER_FILE};
use tern_type_transformers::render::json_to_struct;
use tern_type_transformers::{read_parquet, FlyteType, LiteralMapBuilder, StructuredDataset};

const BY_REGION: &str = "SELECT ID, REGION, AMOUNT FROM ORDERS WHERE REGION = %(region)s AND AMOUNT > %(min)s ORDER BY ID";

fn region_inputs(region: &str, min: f64) -> core::LiteralMap {
    LiteralMapBuilder::new().with("region", &region.to_owned()).unwrap().with("min", &min).unwrap().build()
}

fn region_template() -> core::TaskTemplate {
    template(BY_REGION, &[("region", String::literal_type()), ("min", f64::literal_type())], true)
}

fn request(template: core::TaskTemplate, inputs: core::LiteralMap) -> TaskRequest {
    TaskRequest { template: Box::new(template), inputs }
}

#[tokio::test]
async fn a_flytekit_task_runs_with_typed_parameters_and_reports_flytekits_output() {
    let Some(emu) = support::start("a_flytekit_task_runs").await else { return };
    emu.seed().await;
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let store = tempfile::tempdir().unwrap();
    let ctx = services(store.path()).task_context("runs/e1/n0/0", Some(execution("e1", "n0", 0)), None);
    let meta = agent.create(&ctx, request(region_template(), region_inputs("north", 1.5))).await.unwrap();

    // The handle: flytekit's fields plus Tern's, no secret.
    let text = String::from_utf8(meta.as_bytes().to_vec()).unwrap();
    assert!(!text.contains(PASSWORD), "{text}");
    let q: QueryMeta = meta.decode().unwrap();
    assert_eq!((q.user.as_str(), q.account.as_str(), q.warehouse.as_str(), q.database.as_str(), q.schema.as_str()), ("TESTER", "myorg-myaccount", "WH", "DB", "S"));
    assert!(q.has_output);

    // What reached Snowflake: one asynchronous, tagged submission with typed bind variables.
    let sent = emu.requests().await;
    let login = sent.iter().find(|r| r["kind"] == "login").expect("a login");
    assert_eq!(login["login_name"], "TESTER", "{login}");
    assert_eq!(login["has_password"], true);
    assert_eq!(login["query"]["databaseName"], "DB");
    let subs: Vec<&Value> = sent.iter().filter(|r| r["kind"] == "query" && r["async"] == true).collect();
    assert_eq!(subs.len(), 1, "{sent:#?}");
    let sub = subs[0];
    assert_eq!(sub["sql"], "SELECT ID, REGION, AMOUNT FROM ORDERS WHERE REGION = :1 AND AMOUNT > :2 ORDER BY ID");
    assert_eq!(sub["bindings"]["1"], serde_json::json!({"type": "TEXT", "value": "north"}));
    assert_eq!(sub["bindings"]["2"], serde_json::json!({"type": "REAL", "value": "1.5"}));
    let key = ctx.idempotency_key.as_ref().unwrap().as_str().to_owned();
    assert_eq!(sub["parameters"]["QUERY_TAG"], format!("tern:{key}"));
    assert_eq!(sub["query_id"], q.query_id.as_str());

    // Polled by query id until SUCCESS; the output is flytekit's URI naming the query.
    let status = wait(&agent, &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{}", status.message);
    let results = &status.outputs.as_ref().unwrap().literals["results"];
    let sd = StructuredDataset::from_dataset_literal(results).unwrap();
    assert_eq!(sd.uri, format!("snowflake://TESTER:myorg-myaccount/WH/DB/S/{}", q.query_id));
    assert_eq!((sd.format.as_str(), sd.columns.len()), ("", 0));
    check_outputs(region_template().interface.as_ref(), status.outputs.as_ref().unwrap()).unwrap();
    assert_eq!(status.log_links.len(), 1);
    assert_eq!(
        status.log_links[0].uri,
        format!("https://app.snowflake.com/myorg/myaccount/#/compute/history/queries/{}/detail", q.query_id)
    );
    assert!(emu.requests().await.iter().any(|r| r["kind"] == "monitoring" && r["query_id"] == q.query_id.as_str()));
}

#[tokio::test]
async fn a_repeated_create_is_one_query_also_after_a_restart() {
    let Some(emu) = support::start("a_repeated_create_is_one_query").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let ctx = svc.task_context("runs/e2/n0/0", Some(execution("e2", "n0", 0)), None);
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let (a, b) = tokio::join!(
        agent.create(&ctx, request(region_template(), region_inputs("north", 0.0))),
        agent.create(&ctx, request(region_template(), region_inputs("north", 0.0)))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "two creates at once, one handle");
    let first: QueryMeta = a.decode().unwrap();
    assert!(store.path().join("runs/e2/n0/0").join(LEDGER_FILE).is_file(), "the submission is recorded in the output prefix");

    // "Restart": a new agent (no memory), the same attempt.
    drop(agent);
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let c = agent.create(&ctx, request(region_template(), region_inputs("north", 0.0))).await.unwrap();
    assert_eq!(c.decode::<QueryMeta>().unwrap().query_id, first.query_id);
    let sql = "SELECT ID, REGION, AMOUNT FROM ORDERS WHERE REGION = :1 AND AMOUNT > :2 ORDER BY ID";
    assert_eq!(emu.submissions(sql).await.len(), 1, "one query at the emulator for three creates of one attempt");

    // The next retry attempt is another query.
    let retry = svc.task_context("runs/e2/n0/1", Some(execution("e2", "n0", 1)), None);
    let d = agent.create(&retry, request(region_template(), region_inputs("north", 0.0))).await.unwrap();
    assert_ne!(d.decode::<QueryMeta>().unwrap().query_id, first.query_id);
    assert_eq!(emu.submissions(sql).await.len(), 2);
}

#[tokio::test]
async fn rows_materialize_as_parquet_a_dataframe_reader_reads() {
    let Some(emu) = support::start("rows_materialize_as_parquet").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let agent = SnowflakeAgent::new(SnowflakeConfig { materialize: tern_agent_snowflake::Materialize::Parquet, ..emu.config() }).unwrap();
    let prefix = store.path().join("runs/e3/n0/0").display().to_string();
    let ctx = svc.task_context(prefix.clone(), Some(execution("e3", "n0", 0)), None);
    let sql = "SELECT ID, REGION, AMOUNT, CREATED_AT, AMOUNT * 2 > 30 AS BIG FROM ORDERS WHERE REGION = %(region)s ORDER BY ID";
    let t = template(sql, &[("region", String::literal_type())], true);
    let inputs = LiteralMapBuilder::new().with("region", &"north".to_owned()).unwrap().build();
    let meta = agent.create(&ctx, request(t.clone(), inputs)).await.unwrap();
    let status = wait(&agent, &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{}", status.message);
    let outputs = status.outputs.unwrap();
    check_outputs(t.interface.as_ref(), &outputs).unwrap();
    let sd = StructuredDataset::from_dataset_literal(&outputs.literals["results"]).unwrap();
    assert_eq!(sd.uri, format!("{prefix}/results"));
    assert_eq!(sd.format, "parquet");
    let batches = read_parquet(ctx.data_store().as_ref(), &sd, None).await.unwrap();
    let schema = batches[0].schema();
    let types: Vec<String> = schema.fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
    assert_eq!(types, ["ID:Int64", "REGION:Utf8", "AMOUNT:Decimal128(10, 2)", "CREATED_AT:Timestamp(µs)", "BIG:Boolean"]);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2);
    let show = |c: usize, r: usize| arrow_cast::display::array_value_to_string(batches[0].column(c), r).unwrap();
    assert_eq!((show(0, 1), show(1, 1), show(2, 1), show(3, 1), show(4, 0)), ("3".into(), "north".into(), "5.00".into(), "2024-01-03T12:00:00".into(), "false".into()));
    // Stored once: a second poll reads outputs.pb instead of running RESULT_SCAN again.
    let scans = |r: &[Value]| r.iter().filter(|r| r["sql"].as_str().is_some_and(|s| s.contains("RESULT_SCAN"))).count();
    let before = scans(&emu.requests().await);
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().outputs.unwrap(), outputs);
    assert_eq!(scans(&emu.requests().await), before);
    // A torn outputs.pb is not the end of the task: the rows are still in Snowflake, materialized again.
    std::fs::write(format!("{prefix}/outputs.pb"), b"\xff torn").unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().outputs.unwrap(), outputs);
    assert_eq!(scans(&emu.requests().await), before + 1);

    // No rows: an empty dataset with the columns Snowflake describes.
    let ctx = svc.task_context(store.path().join("runs/e3/n1/0").display().to_string(), Some(execution("e3", "n1", 0)), None);
    let mut t = template("SELECT ID, REGION FROM ORDERS WHERE ID < 0", &[], true);
    t.custom = Some(json_to_struct(serde_json::json!({"materialize": "parquet"}).as_object().unwrap()));
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let meta = agent.create(&ctx, request(t, core::LiteralMap::default())).await.unwrap();
    let status = wait(&agent, &ctx, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{}", status.message);
    let sd = StructuredDataset::from_dataset_literal(&status.outputs.unwrap().literals["results"]).unwrap();
    let cols: Vec<&str> = sd.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(cols, ["ID", "REGION"]);
    let batches = read_parquet(ctx.data_store().as_ref(), &sd, None).await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
}

#[tokio::test]
async fn bad_sql_fails_permanently_with_snowflakes_code_in_both_answer_styles() {
    let Some(emu) = support::start("bad_sql_fails_permanently").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    for (i, asynchronous) in [true, false].into_iter().enumerate() {
        // true: Snowflake's asynchronous answer (333334, then FAILED_WITH_ERROR on the status
        // endpoint); false: fakesnow's own synchronous refusal at submission.
        emu.async_replies(asynchronous).await;
        let ctx = svc.task_context(format!("runs/e4/n{i}/0"), Some(execution("e4", &format!("n{i}"), 0)), None);
        let meta = agent.create(&ctx, request(template("SELECT NOPE FROM ORDERS", &[], false), core::LiteralMap::default())).await.unwrap();
        let status = wait(&agent, &ctx, &meta).await;
        assert_eq!(status.phase, Phase::Failed, "async={asynchronous}: {}", status.message);
        let e = status.error.unwrap();
        assert_eq!(e.code, codes::QUERY_FAILED, "async={asynchronous}: {e}");
        assert!(!e.is_retryable());
        assert!(e.message.contains("Snowflake error") && e.message.contains("NOPE"), "{}", e.message);
        assert!(!e.message.contains(PASSWORD));
        // The query's Snowsight page, refused at submission or failed later alike.
        let q: QueryMeta = meta.decode().unwrap();
        assert!(!q.query_id.is_empty(), "async={asynchronous}: Snowflake named the query");
        assert_eq!(status.log_links.len(), 1, "async={asynchronous}");
        assert!(status.log_links[0].uri.contains(&q.query_id), "{}", status.log_links[0].uri);
    }
}

#[tokio::test]
async fn delete_cancels_a_running_query_idempotently() {
    let Some(emu) = support::start("delete_cancels").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let ctx = svc.task_context("runs/e5/n0/0", Some(execution("e5", "n0", 0)), None);
    emu.drive(Some("RUNNING")).await;
    let meta = agent.create(&ctx, request(template("SELECT 1", &[], false), core::LiteralMap::default())).await.unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Running);
    agent.delete(&ctx, &meta).await.unwrap();
    agent.delete(&ctx, &meta).await.unwrap();
    let q: QueryMeta = meta.decode().unwrap();
    let cancels: Vec<Value> = emu
        .requests()
        .await
        .into_iter()
        .filter(|r| r["sql"] == format!("SELECT SYSTEM$CANCEL_QUERY('{}')", q.query_id).as_str())
        .collect();
    assert_eq!(cancels.len(), 2, "each DeleteTask asks Snowflake to cancel");
    let status = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(status.phase, Phase::Aborted, "{}", status.message);
    // A finished query: cancelling is a no-op, and OK.
    emu.drive(None).await;
    let ctx = svc.task_context("runs/e5/n1/0", Some(execution("e5", "n1", 0)), None);
    let meta = agent.create(&ctx, request(template("SELECT 1", &[], false), core::LiteralMap::default())).await.unwrap();
    assert_eq!(wait(&agent, &ctx, &meta).await.phase, Phase::Succeeded);
    agent.delete(&ctx, &meta).await.unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Succeeded);
}

#[tokio::test]
async fn a_query_snowflake_never_knew_fails_retryably_after_the_grace() {
    let Some(emu) = support::start("no_data_grace").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let agent = SnowflakeAgent::new(SnowflakeConfig { no_data_grace: Duration::from_secs(1), ..emu.config() }).unwrap();
    emu.drive(Some("NO_DATA")).await;
    let ctx = svc.task_context("runs/e6/n0/0", Some(execution("e6", "n0", 0)), None);
    let meta = agent.create(&ctx, request(template("SELECT 1", &[], false), core::LiteralMap::default())).await.unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Queued, "within the grace: not yet registered");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(status.phase, Phase::RetryableFailed, "{}", status.message);
    assert_eq!(status.error.unwrap().code, codes::QUERY_UNKNOWN);
}

#[tokio::test]
async fn refusals_before_anything_is_sent() {
    let Some(emu) = support::start("refusals").await else { return };
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let ctx = svc.task_context("runs/e7/n0/0", Some(execution("e7", "n0", 0)), None);
    let t = template("SELECT 1", &[], false);
    // An account outside allowed_accounts: PERMISSION_DENIED, nothing sent.
    let agent = SnowflakeAgent::new(SnowflakeConfig { allowed_accounts: vec!["other-account".into()], ..emu.config() }).unwrap();
    let e = agent.create(&ctx, request(t.clone(), core::LiteralMap::default())).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.class), (codes::ACCOUNT_NOT_ALLOWED, tern_agent_api::error::ErrorClass::PermissionDenied));
    // No credentials configured.
    let agent = SnowflakeAgent::new(SnowflakeConfig { password: None, ..emu.config() }).unwrap();
    let e = agent.create(&ctx, request(t.clone(), core::LiteralMap::default())).await.unwrap_err();
    assert_eq!(e.code, codes::NO_CREDENTIALS);
    // A parameter with no input.
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let inputs = LiteralMapBuilder::new().with("a", &1i64).unwrap().build();
    let e = agent.create(&ctx, request(template("SELECT %(b)s", &[("a", i64::literal_type())], false), inputs)).await.unwrap_err();
    assert_eq!(e.code, codes::BAD_INPUT);
    assert!(emu.requests().await.is_empty(), "nothing reached Snowflake: {:?}", emu.requests().await);
    // A garbled handle.
    let e = agent.get(&ctx, &ResourceMeta::from_bytes(b"{\"v\":1,\"query_id\":1}".to_vec())).await.unwrap_err();
    assert_eq!(e.code, api_codes::BAD_RESOURCE_META);
}

#[tokio::test]
async fn a_rotated_password_is_used_without_a_restart() {
    let Some(emu) = support::start("rotated_password").await else { return };
    emu.seed().await;
    let store = tempfile::tempdir().unwrap();
    let svc = services(store.path());
    let agent = SnowflakeAgent::new(emu.config()).unwrap();
    let logins = || async { emu.requests().await.into_iter().filter(|r| r["kind"] == "login").count() };
    for (node, rotate, expected_logins) in [("n0", false, 1), ("n1", false, 1), ("n2", true, 2)] {
        if rotate {
            // The secret file changes (a Kubernetes Secret update): the pooled session's login is not reused.
            std::fs::write(emu.dir.path().join("password"), "rotated-Pa55word-that-must-never-leak\n").unwrap();
        }
        let ctx = svc.task_context(format!("runs/e9/{node}/0"), Some(execution("e9", node, 0)), None);
        let meta = agent.create(&ctx, request(template("SELECT 1", &[], false), core::LiteralMap::default())).await.unwrap();
        assert_eq!(wait(&agent, &ctx, &meta).await.phase, Phase::Succeeded, "{node}");
        assert_eq!(logins().await, expected_logins, "{node}: one login per credentials, sessions pooled");
    }
}

#[tokio::test]
async fn key_pair_login_sends_a_jwt_not_a_password() {
    let Some(emu) = support::start("key_pair_login").await else { return };
    emu.seed().await;
    // An RSA key made by the emulator's Python (cryptography is one of its dependencies).
    let python = std::env::var_os("TERN_FAKESNOW_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(format!("{}-fakesnow/bin/python", std::env::var("TERN_VENV").unwrap())));
    let key = emu.dir.path().join("key.p8");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys; from cryptography.hazmat.primitives.asymmetric import rsa; from cryptography.hazmat.primitives import serialization as s; \
             k = rsa.generate_private_key(public_exponent=65537, key_size=2048); \
             open(sys.argv[1], 'wb').write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = SnowflakeConfig { password: None, private_key: Some(format!("file:{}", key.display()).parse().unwrap()), ..emu.config() };
    let agent = SnowflakeAgent::new(config).unwrap();
    let store = tempfile::tempdir().unwrap();
    let ctx = services(store.path()).task_context("runs/e8/n0/0", Some(execution("e8", "n0", 0)), None);
    let meta = agent.create(&ctx, request(template("SELECT 1", &[], false), core::LiteralMap::default())).await.unwrap();
    assert_eq!(wait(&agent, &ctx, &meta).await.phase, Phase::Succeeded);
    let login = emu.requests().await.into_iter().find(|r| r["kind"] == "login").unwrap();
    assert_eq!(login["authenticator"], "SNOWFLAKE_JWT");
    assert_eq!((login["has_token"].as_bool(), login["has_password"].as_bool()), (Some(true), Some(false)));
    assert_eq!(login["account_name"], "MYORG-MYACCOUNT");
}
