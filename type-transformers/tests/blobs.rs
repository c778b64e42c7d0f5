//! FlyteFile / FlyteDirectory: literals exactly as flytekit writes them (tests/fixtures/*.pb, made by
//! tests/fixtures/make_fixtures.py with flytekit 1.16.31), local upload/download round trips, bad input.
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use tern_agent_api::core::{self, SimpleType};
use tern_agent_api::datastore::{DataStore, DataStoreError, LocalDataStore};
use tern_type_transformers::msgpack::json_to_msgpack_literal;
use tern_type_transformers::{DataError, DataStores, FlyteDirectory, FlyteFile, FlyteType, StructuredDataset};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

fn literal(name: &str) -> core::Literal {
    core::Literal::decode(fixture(name).as_slice()).unwrap()
}

fn literal_type(name: &str) -> core::LiteralType {
    core::LiteralType::decode(fixture(name).as_slice()).unwrap()
}

#[test]
fn literals_and_types_are_flytekits_byte_for_byte() {
    // FlyteFile["csv"]
    let csv = FlyteFile::with_format("s3://bucket/prefix/x.csv", ".csv");
    assert_eq!(csv.to_literal().unwrap().encode_to_vec(), fixture("flytekit_file_csv.literal.pb"));
    assert_eq!(FlyteFile::from_literal(&literal("flytekit_file_csv.literal.pb")).unwrap(), csv);
    assert_eq!(FlyteFile::literal_type_for("csv"), literal_type("flytekit_file_csv.type.pb"));
    assert_eq!(FlyteFile::literal_type_for("~csv"), literal_type("flytekit_file_csv.type.pb"), "TypeVar(\"csv\")");
    // FlyteFile
    let plain = FlyteFile::new("s3://bucket/prefix/x.csv");
    assert_eq!(plain.to_literal().unwrap().encode_to_vec(), fixture("flytekit_file.literal.pb"));
    assert_eq!(FlyteFile::from_literal(&literal("flytekit_file.literal.pb")).unwrap(), plain);
    assert_eq!(FlyteFile::literal_type(), literal_type("flytekit_file.type.pb"));
    // FlyteDirectory
    let dir = FlyteDirectory::new("s3://bucket/prefix");
    assert_eq!(dir.to_literal().unwrap().encode_to_vec(), fixture("flytekit_dir.literal.pb"));
    assert_eq!(FlyteDirectory::from_literal(&literal("flytekit_dir.literal.pb")).unwrap(), dir);
    assert_eq!(FlyteDirectory::literal_type(), literal_type("flytekit_dir.type.pb"));
    // A plain StructuredDataset / pd.DataFrame: no columns, no format.
    let sdt = StructuredDataset::literal_type();
    assert!(matches!(
        sdt.r#type,
        Some(core::literal_type::Type::StructuredDatasetType(ref t)) if t.columns.is_empty() && t.format.is_empty()
    ));
}

#[test]
fn dataclass_attribute_forms_are_read_like_flytekit() {
    let lit = json_to_msgpack_literal(&serde_json::json!({"path": "s3://b/f.txt"}));
    assert_eq!(FlyteFile::from_literal(&lit).unwrap(), FlyteFile::new("s3://b/f.txt"));
    assert_eq!(FlyteDirectory::from_literal(&lit).unwrap(), FlyteDirectory::new("s3://b/f.txt"));
    let generic = core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Generic(tern_type_transformers::structs::json_to_struct(
                serde_json::json!({"path": "/tmp/d"}).as_object().unwrap(),
            ))),
        }))),
        ..Default::default()
    };
    assert_eq!(FlyteDirectory::from_literal(&generic).unwrap().uri, "/tmp/d");
    let sd_lit = json_to_msgpack_literal(&serde_json::json!({"uri": "s3://b/df", "file_format": "parquet"}));
    assert_eq!(StructuredDataset::from_literal(&sd_lit).unwrap().uri, "s3://b/df");
}

#[test]
fn wrong_literals_are_typed_errors() {
    let int =
        tern_type_transformers::parse::parse_literal("3", &tern_type_transformers::types::simple(SimpleType::Integer))
            .unwrap();
    for err in [
        FlyteFile::from_literal(&int).unwrap_err(),
        FlyteDirectory::from_literal(&int).unwrap_err(),
        StructuredDataset::from_literal(&int).unwrap_err(),
    ] {
        assert_eq!(err.code(), "TERN-T001", "{err}");
    }
    // A directory where a file is expected, and the reverse: named, with the uri.
    let err = FlyteFile::from_literal(&FlyteDirectory::new("s3://b/d").to_literal().unwrap()).unwrap_err();
    assert_eq!(err.code(), "TERN-T001");
    assert!(err.to_string().contains("s3://b/d") && err.to_string().contains("directory"), "{err}");
    let err = FlyteDirectory::from_literal(&FlyteFile::new("s3://b/f").to_literal().unwrap()).unwrap_err();
    assert!(err.to_string().contains("s3://b/f"), "{err}");
    // A dataset is not a blob.
    let err = FlyteFile::from_literal(&StructuredDataset::new("s3://b/df").to_literal().unwrap()).unwrap_err();
    assert!(err.to_string().contains("structured dataset"), "{err}");
    // A msgpack payload without a path; a Binary that is not msgpack.
    let err = FlyteFile::from_literal(&json_to_msgpack_literal(&serde_json::json!({"uri": 1}))).unwrap_err();
    assert_eq!(err.code(), "TERN-T003", "{err}");
    let junk = core::Literal {
        value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(core::scalar::Value::Binary(core::Binary { value: vec![0xc1], tag: "msgpack".into() })),
        }))),
        ..Default::default()
    };
    assert_eq!(FlyteFile::from_literal(&junk).unwrap_err().code(), "TERN-T003");
    assert!(FlyteFile::from_literal(&core::Literal::default()).is_err());
}

#[tokio::test]
async fn files_round_trip_through_a_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStores::new(tmp.path().join("store"));
    let src = tmp.path().join("in.txt");
    std::fs::write(&src, "hello").unwrap();
    let file = FlyteFile::upload(&store, &src, "raw/abc/in.txt").await.unwrap();
    assert_eq!(file.uri, tmp.path().join("store/raw/abc/in.txt").display().to_string());
    let back = FlyteFile::from_literal(&file.to_literal().unwrap()).unwrap();
    let dst = tmp.path().join("deep/out.txt");
    back.download(&store, &dst).await.unwrap();
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "hello");

    let err = FlyteFile::new("raw/missing.txt").download(&store, &dst).await.unwrap_err();
    assert!(matches!(err, DataError::Missing { what: "file", .. }));
    assert_eq!(err.code(), "TERN-T101");
    assert!(err.to_string().contains("raw/missing.txt"), "{err}");

    let err = FlyteFile::upload(&store, &tmp.path().join("nope"), "raw/x").await.unwrap_err();
    assert_eq!(err.code(), "TERN-T102");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = FlyteFile::upload(&store, tmp.path(), "raw/x").await.unwrap_err();
    assert_eq!(err.code(), "TERN-T102", "a directory is not a file: {err}");
}

#[tokio::test]
async fn directories_round_trip_through_a_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStores::new(tmp.path().join("store"));
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("top.txt"), "1").unwrap();
    std::fs::write(src.join("a/b/leaf.txt"), "2").unwrap();
    let dir = FlyteDirectory::upload_dir(&store, &src, "raw/dir").await.unwrap();
    let listed = dir.list(&store).await.unwrap();
    assert_eq!(listed, [format!("{}/a/b/leaf.txt", dir.uri), format!("{}/top.txt", dir.uri)]);
    let dst = tmp.path().join("dst");
    let mut got = dir.download_dir(&store, &dst).await.unwrap();
    got.sort();
    assert_eq!(got, [dst.join("a/b/leaf.txt"), dst.join("top.txt")]);
    assert_eq!(std::fs::read_to_string(dst.join("a/b/leaf.txt")).unwrap(), "2");

    // An empty directory exists and downloads as nothing; a missing one is an error naming it.
    std::fs::create_dir_all(tmp.path().join("store/raw/empty")).unwrap();
    assert!(FlyteDirectory::new("raw/empty").download_dir(&store, &dst).await.unwrap().is_empty());
    let err = FlyteDirectory::new("raw/absent").download_dir(&store, &dst).await.unwrap_err();
    assert_eq!(err.code(), "TERN-T101");
    assert!(err.to_string().contains("raw/absent"), "{err}");
    let err = FlyteDirectory::upload_dir(&store, &src.join("top.txt"), "raw/d2").await.unwrap_err();
    assert_eq!(err.code(), "TERN-T102", "a file is not a directory: {err}");
}

/// A store whose listing names an object outside the directory (a hostile or broken server).
#[derive(Debug)]
struct Escaping(LocalDataStore);

#[async_trait]
impl DataStore for Escaping {
    async fn read(&self, _uri: &str) -> Result<Bytes, DataStoreError> {
        Ok(Bytes::from_static(b"x"))
    }
    async fn write(&self, uri: &str, data: Bytes) -> Result<(), DataStoreError> {
        self.0.write(uri, data).await
    }
    async fn exists(&self, _uri: &str) -> Result<bool, DataStoreError> {
        Ok(true)
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, DataStoreError> {
        Ok(vec![format!("{prefix}/ok.txt"), format!("{prefix}/../../escaped.txt")])
    }
}

#[tokio::test]
async fn object_names_cannot_escape_the_download_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Escaping(LocalDataStore::new(tmp.path()));
    let dst: PathBuf = tmp.path().join("dst");
    let err = FlyteDirectory::new("s3://b/d").download_dir(&store, &dst).await.unwrap_err();
    assert_eq!(err.code(), "TERN-T108");
    assert!(err.to_string().contains("escaped.txt"), "{err}");
    assert!(!tmp.path().join("escaped.txt").exists());
}
