//! Opening each backend: connection options, a first connection that reports why it
//! failed (refused, credentials, missing database), and the backend's migrations.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Connection;

use super::location::{PostgresUrl, StateLocation};
use super::StoreError;

/// Versions and meaning match across backends; an existing `tern.db` keeps the checksums
/// of the migrations it was created with (`sqlite/0001` is byte-for-byte the original).
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long the first PostgreSQL connection may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn sqlite(state_dir: &Path) -> Result<SqlitePool, StoreError> {
    let path = state_dir.join("tern.db");
    let open_err = |reason: String| StoreError::Open { location: path.display().to_string(), reason };
    std::fs::create_dir_all(state_dir).map_err(|e| open_err(e.to_string()))?;
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| open_err(e.to_string()))?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    // Two processes opening a fresh state at once (`tern run` and `tern show` polling it)
    // collide: switching a new file to WAL can answer "database is locked", and sqlx takes
    // no lock around SQLite migrations, so both may apply one and one fails (a duplicate
    // column, a taken version). Trying again finds the other process's work; a state that
    // is really unusable still fails every time.
    let mut tries = 0u32;
    loop {
        let opened = async {
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
                .map_err(|e| open_err(e.to_string()))?;
            SQLITE_MIGRATIONS
                .run(&pool)
                .await
                .map_err(|e| StoreError::Migrate { location: path.display().to_string(), reason: e.to_string() })?;
            Ok::<_, StoreError>(pool)
        }
        .await;
        match opened {
            Ok(pool) => return Ok(pool),
            Err(e) if tries < 8 => {
                tries += 1;
                tracing::debug!(error = %e, tries, "opening the state database failed; another process may be opening it");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(tries))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

pub(super) async fn postgres(location: &StateLocation, url: &PostgresUrl) -> Result<PgPool, StoreError> {
    let shown = location.to_string();
    let redactor = location.redactor();
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Location { location: shown.clone(), reason: redactor.scrub(&e.to_string()) })?
        .application_name("tern");
    // One connection first, without the pool's retry-until-timeout on a refused
    // connection, so the error says what is wrong.
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(classify(&shown, redactor.scrub(&e.to_string()), &e)),
        Err(_) => {
            return Err(StoreError::Open {
                location: shown,
                reason: format!("no answer from the server within {}s", CONNECT_TIMEOUT.as_secs()),
            })
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| classify(&shown, redactor.scrub(&e.to_string()), &e))?;
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| StoreError::Migrate { location: shown.clone(), reason: redactor.scrub(&e.to_string()) })?;
    Ok(pool)
}

/// A connection error as the user should read it (`reason` is already scrubbed).
fn classify(shown: &str, reason: String, e: &sqlx::Error) -> StoreError {
    let location = shown.to_owned();
    match e {
        // SQLSTATE class 28: invalid authorization (wrong password, unknown role, pg_hba).
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("28")) => {
            StoreError::Auth { location, reason }
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => StoreError::Open {
            location,
            reason: format!("{reason} (create it first, e.g. `createdb`; Tern creates the tables, not the database)"),
        },
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Open { location, reason: format!("cannot reach the server: {reason}") }
        }
        sqlx::Error::Configuration(_) => StoreError::Location { location, reason },
        _ => StoreError::Open { location, reason },
    }
}
