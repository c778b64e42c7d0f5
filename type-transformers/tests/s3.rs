//! The S3 data store against a real S3-compatible server: moto's `moto_server`, started by the test.
//!
//! moto is found at `$TERN_MOTO_SERVER`, else next to `$TERN_PYTHON` (the test virtualenv's python,
//! set by scripts/test.sh). Without it the tests print why and pass, except under `CI=true`, where a
//! missing peer is a failure.
#![cfg(feature = "s3")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use tern_agent_api::datastore::{DataStore, DataStoreError};
use tern_type_transformers::s3::{S3Config, S3DataStore};
use tern_type_transformers::{read_parquet, write_parquet, DataError, DataStores, FlyteDirectory, FlyteFile};

/// A running moto server, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TERN_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let python = PathBuf::from(std::env::var_os("TERN_PYTHON").filter(|p| !p.is_empty())?);
    Some(python.parent()?.join("moto_server"))
}

/// Starts moto, or explains why not: `None` means skip (a failure under `CI=true`).
fn start_moto(test: &str) -> Option<Moto> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = |why: String| {
        if ci {
            panic!("{test}: {why} (CI=true: a missing peer is a failure)");
        }
        eprintln!("SKIPPED {test}: {why}; set TERN_MOTO_SERVER to moto_server (pip install \"moto[server]==5.2.5\")");
        None
    };
    let Some(bin) = moto_binary() else {
        return missing("neither TERN_MOTO_SERVER nor TERN_PYTHON is set".to_owned());
    };
    if !bin.is_file() {
        return missing(format!("{} does not exist", bin.display()));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::env::temp_dir().join(format!("tern-moto-{}-{port}.log", std::process::id()));
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot start {}: {e}", bin.display()));
    let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if answers(port) {
            return Some(moto);
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{test}: moto_server exited ({status}) before answering:\n{out}");
        }
        assert!(Instant::now() < deadline, "{test}: moto_server did not answer on port {port} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether moto answers `GET /moto-api/` on `port`.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

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
