//! Dataframe inputs and outputs in S3, as behind propeller with `s3://` output prefixes:
//! the agent reads its inputs and writes its outputs through the data store, against
//! moto's real S3 server (found and started by type-transformers' `tests/support/moto.rs`;
//! without it the test says why and passes, except under `CI=true`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use tern_agent_api::prelude::*;
use tern_agent_api::secrets::StaticSecrets;
use tern_agent_api::{admin, core};
use tern_agent_duckdb::DuckDbConfig;
use tern_type_transformers::s3::S3Config;
use tern_type_transformers::{read_parquet, write_parquet, DataStores, FlyteType, StructuredDataset};

#[allow(dead_code)]
#[path = "../../../type-transformers/tests/support/moto.rs"]
mod moto;

const BUCKET: &str = "tern-duckdb";

fn dataframe() -> core::LiteralType {
    core::LiteralType {
        r#type: Some(core::literal_type::Type::StructuredDatasetType(Default::default())),
        ..Default::default()
    }
}

fn template(sql: &str) -> core::TaskTemplate {
    let out = core::Variable { r#type: Some(dataframe()), ..Default::default() };
    core::TaskTemplate {
        r#type: "duckdb".into(),
        interface: Some(core::TypedInterface {
            inputs: None,
            outputs: Some(core::VariableMap { variables: [("older".to_owned(), out)].into() }),
        }),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 0 })),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataframes_are_read_from_and_written_to_s3() {
    let Some(moto) = moto::start_moto("dataframes_are_read_from_and_written_to_s3") else { return };
    let local = tempfile::tempdir().unwrap();
    let stores = DataStores::new(local.path()).with_s3(S3Config::emulator(&moto.endpoint));
    stores.s3().await.create_bucket(BUCKET).await.unwrap();
    let stores: Arc<dyn DataStore> = Arc::new(stores);

    // The input: a dataframe in flytekit's layout (`<dir>/00000`) in S3.
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("age", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["bo", "al", "cy"])) as ArrayRef,
            Arc::new(Int64Array::from(vec![30, 41, 7])),
        ],
    )
    .unwrap();
    let people = write_parquet(stores.as_ref(), &format!("s3://{BUCKET}/in/people"), schema, &[batch]).await.unwrap();

    let mut registry = AgentRegistry::new();
    let staging = tempfile::tempdir().unwrap();
    let config = DuckDbConfig { staging_directory: Some(staging.path().to_owned()), ..Default::default() };
    registry.register_async(tern_agent_duckdb::agent_with(config)).unwrap();
    let services = AgentServices::new(stores.clone(), Arc::new(StaticSecrets::new())).unwrap();
    let client = InProcessClient::new(Arc::new(registry), services);
    let prefix = format!("s3://{BUCKET}/runs/e1/n0/0");
    let meta = client
        .create_task(admin::CreateTaskRequest {
            inputs: Some(core::LiteralMap { literals: [("people".to_owned(), people.to_literal().unwrap())].into() }),
            template: Some(template("SELECT name, age + 1 AS age FROM people ORDER BY name").into()),
            output_prefix: prefix.clone(),
            task_execution_metadata: None,
        })
        .await
        .expect("create");
    let start = Instant::now();
    let status = loop {
        let get = admin::GetTaskRequest {
            resource_meta: meta.clone(),
            task_category: Some(admin::TaskCategory { name: "duckdb".into(), version: 0 }),
            output_prefix: prefix.clone(),
            ..Default::default()
        };
        let s = TaskStatus::from_resource(client.get_task(get).await.expect("get"));
        if s.is_terminal() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "still {:?}", s.phase);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");

    let outputs = status.outputs.expect("outputs");
    let older = StructuredDataset::from_literal(&outputs.literals["older"]).unwrap();
    assert_eq!(older.uri, format!("{prefix}/older"));
    assert!(stores.exists(&format!("{prefix}/older/00000")).await.unwrap(), "the parquet file is in S3");
    assert!(stores.exists(&format!("{prefix}/outputs.pb")).await.unwrap());
    let back = read_parquet(stores.as_ref(), &older, None).await.unwrap();
    let names = back[0].column(0).as_any().downcast_ref::<StringArray>().unwrap();
    let ages = back[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(names.iter().flatten().collect::<Vec<_>>(), ["al", "bo", "cy"]);
    assert_eq!(ages.values().to_vec(), [42, 31, 8]);
    let left: Vec<_> = std::fs::read_dir(staging.path()).unwrap().collect();
    assert!(left.is_empty(), "the job's staging directory outlived it: {left:?}");
}
