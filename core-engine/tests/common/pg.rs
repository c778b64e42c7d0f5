//! A real PostgreSQL for tests: `TERN_TEST_POSTGRES_URL` names a server (scripts/test.sh
//! starts one and sets it: `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`); every
//! test gets a fresh database of its own, so tests run in parallel. Without the variable a
//! PostgreSQL test prints why and passes, except under `CI=true`, where it fails.
//!
//! Shared by the store's unit tests (`src/store/tests.rs`, through `#[path]`) and the
//! engine's integration tests.
#![allow(dead_code)]
use sqlx::Connection;

pub const VAR: &str = "TERN_TEST_POSTGRES_URL";

/// The server's URL, or `None`: skip this test (a panic under `CI=true`).
pub fn server_url(test: &str) -> Option<String> {
    let ci = std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    match std::env::var(VAR).ok().filter(|v| !v.trim().is_empty()) {
        Some(url) => Some(url),
        None if ci => panic!("{test}: {VAR} is not set (CI=true: a missing PostgreSQL is a failure)"),
        None => {
            eprintln!("SKIPPED {test}: {VAR} is not set; scripts/test.sh starts a PostgreSQL server and sets it");
            None
        }
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut u = url::Url::parse(url).unwrap_or_else(|e| panic!("{VAR} is not a URL: {e}"));
    u.set_path(database);
    u.to_string()
}

/// The URL of a new, empty database on the test server, or `None` (skip).
pub async fn fresh_database(test: &str) -> Option<String> {
    let server = server_url(test)?;
    let name = format!("tern_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn =
        sqlx::PgConnection::connect(&server).await.unwrap_or_else(|e| panic!("{test}: cannot connect to {VAR}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{test}: CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
    Some(with_database(&server, &name))
}
