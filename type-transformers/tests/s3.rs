//! The S3 data store against a real S3-compatible server: moto's `moto_server`, started by the test.
//!
//! moto is found and started by `support/moto.rs` (shared with the AWS Batch agent's tests): at
//! `$TERN_MOTO_SERVER`, else next to `$TERN_PYTHON` (the test virtualenv's python, set by scripts/test.sh).
//! Without it the tests print why and pass, except under `CI=true`, where a missing peer is a failure.
#![cfg(feature = "s3")]

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use tern_agent_api::datastore::{DataStore, DataStoreError};
use tern_type_transformers::s3::{S3Config, S3DataStore};
use tern_type_transformers::{read_parquet, write_parquet, DataError, DataStores, FlyteDirectory, FlyteFile};

#[allow(dead_code)]
#[path = "support/moto.rs"]
mod moto;

use moto::{start_moto, Moto};

async fn stores(moto: &Moto, local: &Path) -> DataStores {
    // Lazily built from the config on first use, as in production.
    let stores = DataStores::new(local).with_s3(S3Config::emulator(&moto.endpoint));
    stores.s3().await.create_bucket("tern-test").await.unwrap();
    stores
}

#[tokio::test]
async fn s3_files_and_directories() {
    let Some(moto) = start_moto("s3_files_and_directories") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let stores = stores(&moto, tmp.path()).await;

    // A file: upload (streamed from disk), exists, download.
    let local = tmp.path().join("in.csv");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&local, &content).unwrap();
    let file = FlyteFile::upload(&stores, &local, "s3://tern-test/files/in.csv").await.unwrap();
    assert_eq!(file.uri, "s3://tern-test/files/in.csv");
    assert!(stores.exists(&file.uri).await.unwrap());
    let back = tmp.path().join("out/in.csv");
    file.download(&stores, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), content);

    // Missing objects: NotFound from the store, a typed error naming the uri from the blob.
    let missing = FlyteFile::new("s3://tern-test/files/nope.csv");
    assert!(!stores.exists(&missing.uri).await.unwrap());
    assert!(matches!(stores.read(&missing.uri).await, Err(DataStoreError::NotFound { .. })));
    let err = missing.download(&stores, &tmp.path().join("nope")).await.unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert_eq!(err.code(), "TERN-T101");
    assert!(err.to_string().contains("s3://tern-test/files/nope.csv"), "{err}");
    assert!(!err.is_retryable());
    let err = stores.read("s3://no-such-bucket/k").await.unwrap_err();
    assert!(matches!(err, DataStoreError::NotFound { .. }), "{err}");

    // A directory: upload, list (recursive, not siblings sharing the prefix), download.
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), "a").unwrap();
    std::fs::write(src.join("sub/b.txt"), "b").unwrap();
    std::fs::write(src.join("sub/deeper/c.bin"), [0u8, 1, 2]).unwrap();
    stores.write("s3://tern-test/dirx/sibling", Bytes::from_static(b"not mine")).await.unwrap();
    let dir = FlyteDirectory::upload_dir(&stores, &src, "s3://tern-test/dir/").await.unwrap();
    assert_eq!(dir.uri, "s3://tern-test/dir");
    assert_eq!(
        dir.list(&stores).await.unwrap(),
        ["s3://tern-test/dir/a.txt", "s3://tern-test/dir/sub/b.txt", "s3://tern-test/dir/sub/deeper/c.bin"]
    );
    let dst = tmp.path().join("dst");
    let files = dir.download_dir(&stores, &dst).await.unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(std::fs::read_to_string(dst.join("a.txt")).unwrap(), "a");
    assert_eq!(std::fs::read_to_string(dst.join("sub/b.txt")).unwrap(), "b");
    assert_eq!(std::fs::read(dst.join("sub/deeper/c.bin")).unwrap(), [0u8, 1, 2]);
    assert!(!dst.join("sibling").exists());

    let err = FlyteDirectory::new("s3://tern-test/absent").download_dir(&stores, &dst).await.unwrap_err();
    assert_eq!(err.code(), "TERN-T101");
    assert!(err.to_string().contains("s3://tern-test/absent"), "{err}");

    // Other schemes are refused by name; local paths still go to the local store.
    let err = stores.read("gs://bucket/key").await.unwrap_err();
    assert!(matches!(err, DataStoreError::UnsupportedUri { .. }) && err.to_string().contains("gs://bucket/key"));
    stores.write("local/x", Bytes::from_static(b"1")).await.unwrap();
    assert!(tmp.path().join("local/x").is_file());
}

#[tokio::test]
async fn s3_structured_datasets() {
    let Some(moto) = start_moto("s3_structured_datasets") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let stores = stores(&moto, tmp.path()).await;

    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
        ],
    )
    .unwrap();
    let sd = write_parquet(&stores, "s3://tern-test/df", schema, std::slice::from_ref(&batch)).await.unwrap();
    assert_eq!(sd.uri, "s3://tern-test/df");
    assert!(stores.exists("s3://tern-test/df/00000").await.unwrap());
    let back = read_parquet(&stores, &sd, None).await.unwrap();
    assert_eq!(back, std::slice::from_ref(&batch));
    let names = read_parquet(&stores, &sd, Some(&["name".to_owned()])).await.unwrap();
    assert_eq!(names[0].schema().field(0).name(), "name");
    assert_eq!(names[0].num_columns(), 1);

    // A pandas-written file in flytekit's layout, read from S3 with a declared subset.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pandas_index.parquet");
    stores.upload_file(&fixture, "s3://tern-test/pandas/00000").await.unwrap();
    let sd = tern_type_transformers::StructuredDataset::new("s3://tern-test/pandas").with_declared_columns(&[
        ("name".to_owned(), tern_type_transformers::types::simple(tern_agent_api::core::SimpleType::String)),
        ("id".to_owned(), tern_type_transformers::types::simple(tern_agent_api::core::SimpleType::Integer)),
    ]);
    let batches = read_parquet(&stores, &sd, None).await.unwrap();
    let schema = batches[0].schema();
    let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(cols, ["name", "id"]);

    let err = read_parquet(&stores, &tern_type_transformers::StructuredDataset::new("s3://tern-test/none"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TERN-T101", "{err}");
}

#[tokio::test]
async fn s3_store_direct_api() {
    let Some(moto) = start_moto("s3_store_direct_api") else { return };
    let s3 = S3DataStore::connect(&S3Config::emulator(&moto.endpoint)).await;
    s3.create_bucket("direct").await.unwrap();
    s3.create_bucket("direct").await.unwrap(); // already ours: fine
    s3.write("s3://direct/k/v.txt", Bytes::from_static(b"v")).await.unwrap();
    assert_eq!(s3.read("s3://direct/k/v.txt").await.unwrap(), Bytes::from_static(b"v"));
    assert!(s3.exists("s3://direct/k/v.txt").await.unwrap());
    assert!(!s3.exists("s3://direct/k/w.txt").await.unwrap());
    assert_eq!(s3.list("s3://direct/k").await.unwrap(), ["s3://direct/k/v.txt"]);
    assert_eq!(s3.list("s3://direct").await.unwrap(), ["s3://direct/k/v.txt"]);
    assert!(s3.list("s3://direct/none").await.unwrap().is_empty());
    assert!(matches!(s3.read("s3://direct/k/w.txt").await, Err(DataStoreError::NotFound { .. })));
    assert!(matches!(s3.read("s3:///nobucket").await, Err(DataStoreError::UnsupportedUri { .. })));
}
