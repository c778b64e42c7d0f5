//! Literal offloading through a local data store: thresholds, layout, inferred types,
//! transparent (recursive) loading, and the errors of a missing or corrupt object.
use prost::Message;
use tern_agent_api::datastore::{DataStore, LocalDataStore};
use tern_type_transformers::__core as core;
use tern_type_transformers::error::codes;
use tern_type_transformers::offload::{self, offloaded_uri, OffloadPolicy};
use tern_type_transformers::{literal_map_get, literals, FlyteType, LiteralMapBuilder};

fn store() -> (tempfile::TempDir, LocalDataStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalDataStore::new(dir.path());
    (dir, store)
}

fn offloaded(lit: &core::Literal) -> &core::LiteralOffloadedMetadata {
    match lit.value.as_ref() {
        Some(core::literal::Value::OffloadedMetadata(m)) => m,
        other => panic!("not offloaded: {other:?}"),
    }
}

#[tokio::test]
async fn large_literals_are_stored_and_loaded_back() {
    let (_dir, store) = store();
    let big: Vec<i64> = (0..1000).collect();
    let lit = big.to_literal().unwrap();
    let size = lit.encoded_len() as u64;

    // Below the threshold: unchanged.
    let same = offload::offload(lit.clone(), &store, "o/small.pb", &OffloadPolicy::new(size + 1)).await.unwrap();
    assert_eq!(same, lit);
    assert!(!store.exists("o/small.pb").await.unwrap());

    // At the threshold (flytekit offloads when size >= min): offloaded.
    let off = offload::offload(lit.clone(), &store, "o/big.pb", &OffloadPolicy::new(size)).await.unwrap();
    let meta = offloaded(&off);
    assert_eq!(meta.uri, "o/big.pb");
    assert_eq!(meta.size_bytes, size);
    assert_eq!(meta.inferred_type, Some(Vec::<i64>::literal_type()));
    assert!(!off.hash.is_empty(), "a content hash is set for cache keys");
    // The object is the Literal protobuf itself.
    let stored = store.read("o/big.pb").await.unwrap();
    assert_eq!(core::Literal::decode(stored).unwrap(), lit);
    // Reading it back is transparent, and idempotent on literals with nothing offloaded.
    let loaded = offload::load(off.clone(), &store).await.unwrap();
    assert_eq!(Vec::<i64>::from_literal(&loaded).unwrap(), big);
    assert_eq!(offload::load(loaded.clone(), &store).await.unwrap(), loaded);
    // An already offloaded literal is left alone.
    assert_eq!(offload::offload(off.clone(), &store, "o/again.pb", &OffloadPolicy::new(0)).await.unwrap(), off);
}

#[tokio::test]
async fn task_outputs_use_flytekits_layout_and_declared_types() {
    let (_dir, store) = store();
    let outputs =
        LiteralMapBuilder::new().with("small", &1i64).unwrap().with("big", &vec!["x".repeat(100); 50]).unwrap().build();
    let declared = core::VariableMap {
        variables: [("big".to_string(), tern_type_transformers::transformer::variable::<Vec<String>>("rows"))]
            .into_iter()
            .collect(),
    };
    let policy = OffloadPolicy::new(1024);
    let out = offload::offload_map(outputs.clone(), &store, "run/n0/0", &policy, Some(&declared)).await.unwrap();
    assert_eq!(out.literals["small"], outputs.literals["small"]);
    let meta = offloaded(&out.literals["big"]);
    assert_eq!(meta.uri, "run/n0/0/big_offloaded_metadata.pb");
    assert_eq!(meta.uri, offloaded_uri("run/n0/0/", "big"));
    assert_eq!(meta.inferred_type, Some(Vec::<String>::literal_type()));
    let back = offload::load_map(out, &store).await.unwrap();
    assert_eq!(back, outputs);
    assert_eq!(literal_map_get::<Vec<String>>(&back, "big").unwrap().len(), 50);
}

#[tokio::test]
async fn offloaded_literals_inside_collections_maps_and_unions_load_too() {
    let (_dir, store) = store();
    let policy = OffloadPolicy::new(0);
    let inner = offload::offload(7i64.to_literal().unwrap(), &store, "o/inner.pb", &policy).await.unwrap();
    let in_union = literals::union_value(inner.clone(), i64::literal_type());
    let nested =
        literals::collection(vec![inner.clone(), literals::map([("k".to_string(), in_union)].into_iter().collect())]);
    // Offloading the outer literal too: loading follows both levels.
    let outer = offload::offload(nested, &store, "o/outer.pb", &policy).await.unwrap();
    let loaded = offload::load(outer, &store).await.unwrap();
    let want = literals::collection(vec![
        7i64.to_literal().unwrap(),
        literals::map(
            [("k".to_string(), literals::union_value(7i64.to_literal().unwrap(), i64::literal_type()))]
                .into_iter()
                .collect(),
        ),
    ]);
    assert_eq!(loaded, want);
}

#[tokio::test]
async fn missing_truncated_and_cyclic_objects_are_errors() {
    let (_dir, store) = store();
    let pointer = |uri: &str, size: u64| core::Literal {
        value: Some(core::literal::Value::OffloadedMetadata(core::LiteralOffloadedMetadata {
            uri: uri.into(),
            size_bytes: size,
            inferred_type: None,
        })),
        ..Default::default()
    };
    let e = offload::load(pointer("o/missing.pb", 3), &store).await.unwrap_err();
    assert_eq!(e.code(), codes::DATA_STORE);
    assert!(!e.is_retryable());

    let lit = "hello".to_string().to_literal().unwrap();
    let bytes = lit.encode_to_vec();
    store.write("o/cut.pb", bytes[..bytes.len() - 2].to_vec().into()).await.unwrap();
    let e = offload::load(pointer("o/cut.pb", bytes.len() as u64), &store).await.unwrap_err();
    assert_eq!(e.code(), codes::OFFLOAD);
    assert!(e.to_string().contains("truncated"), "{e}");

    store.write("o/junk.pb", b"\xff\xff\xff".to_vec().into()).await.unwrap();
    let e = offload::load(pointer("o/junk.pb", 0), &store).await.unwrap_err();
    assert!(e.to_string().contains("not a Literal protobuf"), "{e}");

    // A literal whose object points at itself.
    store.write("o/loop.pb", pointer("o/loop.pb", 0).encode_to_vec().into()).await.unwrap();
    let e = offload::load(pointer("o/loop.pb", 0), &store).await.unwrap_err();
    assert!(e.to_string().contains("nest deeper"), "{e}");
}
