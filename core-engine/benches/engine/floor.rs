//! The disk's floor under the state dir: what one durable step costs before any engine
//! work. A node today pays several of these (docs/benchmarks.md), so they bound what
//! batching can win.
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tern_agent_api::datastore::{DataStore, LocalDataStore};

const N: usize = 500;

fn us_each(t: Instant, n: usize) -> f64 {
    t.elapsed().as_secs_f64() / n as f64 * 1e6
}

/// fdatasync after a 100-byte append (what a SQLite WAL commit does at least once).
fn fdatasync_us(dir: &Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).unwrap_or_else(|e| crate::fail(e));
    let t = Instant::now();
    for _ in 0..N {
        let _ = f.write_all(&[b'x'; 100]);
        let _ = f.sync_data();
    }
    let us = us_each(t, N);
    let _ = std::fs::remove_file(path);
    us
}

/// One-row INSERT commits in WAL mode with sqlx's defaults (synchronous FULL), as the
/// engine's store opens `tern.db`; and the same rows in one transaction.
async fn sqlite_us(dir: &Path) -> (f64, f64) {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .unwrap_or_else(|e| crate::fail(e))
        .filename(dir.join("floor.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool =
        SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap_or_else(|e| crate::fail(e));
    let q = |sql: &'static str| sqlx::query(sql);
    q("CREATE TABLE t (a TEXT, b INTEGER, c TEXT)").execute(&pool).await.unwrap_or_else(|e| crate::fail(e));
    let row = "x".repeat(200);
    let t = Instant::now();
    for i in 0..N {
        sqlx::query("INSERT INTO t VALUES ($1, $2, $3)")
            .bind("node")
            .bind(i as i64)
            .bind(&row)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| crate::fail(e));
    }
    let single = us_each(t, N);
    let t = Instant::now();
    let mut tx = pool.begin().await.unwrap_or_else(|e| crate::fail(e));
    for i in 0..N {
        sqlx::query("INSERT INTO t VALUES ($1, $2, $3)")
            .bind("node")
            .bind(i as i64)
            .bind(&row)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| crate::fail(e));
    }
    tx.commit().await.unwrap_or_else(|e| crate::fail(e));
    (single, us_each(t, N))
}

/// A 20-byte object written through the local data store (create_dir_all, write a
/// temporary file, rename), each in its own directory like a node attempt's `outputs.pb`.
async fn datastore_us(dir: &Path) -> (f64, f64) {
    let store = LocalDataStore::new(dir.join("floor-data"));
    let t = Instant::now();
    for i in 0..N {
        let uri = format!("e/n{i}/0/outputs.pb");
        store.write(&uri, Bytes::from_static(&[7; 20])).await.unwrap_or_else(|e| crate::fail(e));
    }
    let write = us_each(t, N);
    let t = Instant::now();
    for i in 0..N {
        let _ = store.exists(&format!("e/n{i}/0/outputs.pb")).await;
    }
    (write, us_each(t, N))
}

pub async fn run(dir: &Path) -> serde_json::Value {
    let fdatasync = fdatasync_us(dir);
    let (commit, batched) = sqlite_us(dir).await;
    let (write, exists) = datastore_us(dir).await;
    json!({
        "fdatasync_us": fdatasync,
        "sqlite_commit_us": commit,
        "sqlite_row_in_one_tx_us": batched,
        "datastore_write_us": write,
        "datastore_exists_us": exists,
    })
}
