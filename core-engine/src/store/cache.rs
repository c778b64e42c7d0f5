//! The cache tables (migrations `*/0003_cache.sql`): entries, serialize reservations, and the cache status of
//! node attempts. Portable SQL with `$n` placeholders, like the rest of the store.
use std::fmt;

use super::records::Columns;
use super::{b64, now, q, unb64, with_pool, AttemptPhase, StateStore, StoreError};

/// How the cache was involved in a node attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CacheStatus {
    /// Served from the cache: no agent was called.
    Hit,
    /// Ran and stored its outputs.
    Populated,
    /// Ran; storing the outputs failed (logged, the node still succeeded).
    PutFailure,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Populated => "POPULATED",
            Self::PutFailure => "PUT_FAILURE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Hit, Self::Populated, Self::PutFailure].into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a cache entry's outputs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedOutputs {
    /// The LiteralMap's protobuf bytes, in the database.
    Inline(Vec<u8>),
    /// The URI of a LiteralMap in the data store.
    Uri(String),
}

/// A cache entry as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheEntry {
    pub key: String,
    pub task_project: String,
    pub task_domain: String,
    pub task_name: String,
    pub cache_version: String,
    /// `inline` or the data store URI of the outputs.
    pub outputs: String,
    #[serde(skip)]
    pub stored: CachedOutputs,
    /// The execution, node and attempt that produced the outputs.
    pub execution_id: String,
    pub node_id: String,
    pub attempt: u32,
    pub created_at: String,
}

/// A new cache entry.
pub(crate) struct NewCacheEntry<'a> {
    pub key: &'a str,
    pub task_project: &'a str,
    pub task_domain: &'a str,
    pub task_name: &'a str,
    pub cache_version: &'a str,
    pub outputs: CachedOutputs,
    pub execution_id: &'a str,
    pub node_id: &'a str,
    pub attempt: u32,
}

/// The attempt row of a node served from the cache.
pub(crate) struct HitAttempt<'a> {
    pub execution_id: &'a str,
    pub node_id: &'a str,
    pub attempt: u32,
    pub task_type: &'a str,
    pub task_version: i32,
    pub intent: &'a str,
    pub output_uri: &'a str,
    pub cache_key: &'a str,
}

/// Which entries to evict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    Keys(Vec<String>),
    Task(String),
    All,
}

const ENTRY_COLUMNS: &str = "cache_key, task_project, task_domain, task_name, cache_version, outputs, outputs_uri, \
     execution_id, node_id, attempt, created_at";

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

fn entry_from_row(row: &impl Columns) -> Result<CacheEntry, StoreError> {
    let text = |col: &'static str| row.text_opt(col).map(Option::unwrap_or_default);
    let key = text("cache_key")?;
    let stored = match (row.text_opt("outputs")?, row.text_opt("outputs_uri")?) {
        (Some(inline), _) => CachedOutputs::Inline(unb64(&inline, &format!("outputs of cache entry {key}"))?),
        (None, Some(uri)) => CachedOutputs::Uri(uri),
        (None, None) => return Err(corrupt(format!("cache entry {key} has no outputs"))),
    };
    let attempt = row.int("attempt")?;
    Ok(CacheEntry {
        outputs: match &stored {
            CachedOutputs::Inline(_) => "inline".into(),
            CachedOutputs::Uri(u) => u.clone(),
        },
        stored,
        task_project: text("task_project")?,
        task_domain: text("task_domain")?,
        task_name: text("task_name")?,
        cache_version: text("cache_version")?,
        execution_id: text("execution_id")?,
        node_id: text("node_id")?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt(format!("cache entry {key} attempt {attempt}")))?,
        created_at: text("created_at")?,
        key,
    })
}

/// Milliseconds since the Unix epoch (reservation expiry; comparable across processes).
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl StateStore {
    pub(crate) async fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        let row = with_pool!(self, p => sqlx::query(&format!("SELECT {ENTRY_COLUMNS} FROM cache_entries WHERE cache_key = $1"))
            .bind(key)
            .fetch_optional(p)
            .await
            .map_err(q("get cache entry"))?.as_ref().map(entry_from_row).transpose()?);
        Ok(row)
    }

    /// Stores (or replaces) the entry of a key.
    pub(crate) async fn cache_put(&self, e: &NewCacheEntry<'_>) -> Result<(), StoreError> {
        let (inline, uri) = match &e.outputs {
            CachedOutputs::Inline(bytes) => (Some(b64(bytes)), None),
            CachedOutputs::Uri(u) => (None, Some(u.as_str())),
        };
        with_pool!(self, p => sqlx::query(
            "INSERT INTO cache_entries (cache_key, task_project, task_domain, task_name, cache_version, outputs,
                outputs_uri, execution_id, node_id, attempt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (cache_key) DO UPDATE SET task_project = excluded.task_project,
                task_domain = excluded.task_domain, task_name = excluded.task_name,
                cache_version = excluded.cache_version, outputs = excluded.outputs, outputs_uri = excluded.outputs_uri,
                execution_id = excluded.execution_id, node_id = excluded.node_id, attempt = excluded.attempt,
                created_at = excluded.created_at",
        )
        .bind(e.key)
        .bind(e.task_project)
        .bind(e.task_domain)
        .bind(e.task_name)
        .bind(e.cache_version)
        .bind(inline)
        .bind(uri)
        .bind(e.execution_id)
        .bind(e.node_id)
        .bind(i64::from(e.attempt))
        .bind(now())
        .execute(p)
        .await
            .map(|r| r.rows_affected())
        .map_err(q("put cache entry"))?);
        Ok(())
    }

    /// Removes an unreadable entry, unless it was replaced since it was read.
    pub(crate) async fn cache_evict_stale(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("DELETE FROM cache_entries WHERE cache_key = $1 AND created_at = $2 AND execution_id = $3")
            .bind(&entry.key)
            .bind(&entry.created_at)
            .bind(&entry.execution_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(q("evict cache entry"))?);
        Ok(())
    }

    /// Every entry, newest first.
    pub async fn cache_list(&self) -> Result<Vec<CacheEntry>, StoreError> {
        let rows = with_pool!(self, p => sqlx::query(&format!("SELECT {ENTRY_COLUMNS} FROM cache_entries ORDER BY created_at DESC, cache_key"))
                .fetch_all(p)
                .await
                .map_err(q("list cache entries"))?.iter().map(entry_from_row).collect::<Result<Vec<_>, StoreError>>()?);
        Ok(rows)
    }

    /// Evicts entries; returns the keys evicted.
    pub async fn cache_evict(&self, which: &Eviction) -> Result<Vec<String>, StoreError> {
        let mut evicted = Vec::new();
        match which {
            Eviction::Keys(keys) => {
                for key in keys {
                    let done = with_pool!(self, p => sqlx::query("DELETE FROM cache_entries WHERE cache_key = $1")
                        .bind(key)
                        .execute(p)
                        .await
            .map(|r| r.rows_affected())
                        .map_err(q("evict cache entry"))?);
                    if done > 0 {
                        evicted.push(key.clone());
                    }
                }
            }
            Eviction::Task(name) => {
                let rows = with_pool!(self, p => sqlx::query("DELETE FROM cache_entries WHERE task_name = $1 RETURNING cache_key")
                    .bind(name)
                    .fetch_all(p)
                    .await
                    .map_err(q("evict cache entries of a task"))?.iter().map(|r| r.text("cache_key")).collect::<Result<Vec<_>, StoreError>>()?);
                evicted = rows;
            }
            Eviction::All => {
                let rows = with_pool!(self, p => sqlx::query("DELETE FROM cache_entries RETURNING cache_key")
                    .fetch_all(p)
                    .await
                    .map_err(q("evict all cache entries"))?.iter().map(|r| r.text("cache_key")).collect::<Result<Vec<_>, StoreError>>()?);
                evicted = rows;
            }
        }
        Ok(evicted)
    }

    /// Takes the reservation of `key` for `owner` until `expires_at` (unix ms) when it is
    /// free, already `owner`'s, or expired. True when `owner` holds it now.
    pub(crate) async fn cache_reserve(&self, key: &str, owner: &str, expires_at: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, p => sqlx::query(
            "INSERT INTO cache_reservations (cache_key, owner, expires_at, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (cache_key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                created_at = excluded.created_at
             WHERE cache_reservations.owner = excluded.owner OR cache_reservations.expires_at < $5",
        )
        .bind(key)
        .bind(owner)
        .bind(expires_at)
        .bind(now())
        .bind(now_millis())
        .execute(p)
        .await
            .map(|r| r.rows_affected())
        .map_err(q("reserve cache key"))?);
        Ok(done > 0)
    }

    /// The holder of a reservation and its expiry (unix ms).
    pub(crate) async fn cache_reservation(&self, key: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = with_pool!(self, p => sqlx::query("SELECT owner, expires_at FROM cache_reservations WHERE cache_key = $1")
            .bind(key)
            .fetch_optional(p)
            .await
            .map_err(q("get cache reservation"))?
            .as_ref()
            .map(|r| Ok::<_, StoreError>((r.text("owner")?, r.int("expires_at")?)))
            .transpose()?);
        Ok(row)
    }

    /// Extends `owner`'s reservation; false when it is no longer `owner`'s.
    pub(crate) async fn cache_heartbeat(&self, key: &str, owner: &str, expires_at: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, p => sqlx::query("UPDATE cache_reservations SET expires_at = $3 WHERE cache_key = $1 AND owner = $2")
            .bind(key)
            .bind(owner)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(q("heartbeat cache reservation"))?);
        Ok(done > 0)
    }

    pub(crate) async fn cache_release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        with_pool!(self, p => sqlx::query("DELETE FROM cache_reservations WHERE cache_key = $1 AND owner = $2")
            .bind(key)
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            .map_err(q("release cache reservation"))?);
        Ok(())
    }

    /// Records a node attempt served from the cache (SUCCEEDED, cache status HIT).
    pub(crate) async fn record_cache_hit(&self, a: &HitAttempt<'_>) -> Result<(), StoreError> {
        let t = now();
        with_pool!(self, p => sqlx::query(
            "INSERT INTO node_attempts (execution_id, node_id, attempt, phase, task_type, task_version,
                agent_endpoint, intent, output_uri, created_at, updated_at, finished_at, cache_status, cache_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11, $12)
             ON CONFLICT (execution_id, node_id, attempt) DO NOTHING",
        )
        .bind(a.execution_id)
        .bind(a.node_id)
        .bind(i64::from(a.attempt))
        .bind(AttemptPhase::Succeeded.as_str())
        .bind(a.task_type)
        .bind(i64::from(a.task_version))
        .bind("cache")
        .bind(a.intent)
        .bind(a.output_uri)
        .bind(&t)
        .bind(CacheStatus::Hit.as_str())
        .bind(a.cache_key)
        .execute(p)
        .await
            .map(|r| r.rows_affected())
        .map_err(q("record cache hit"))?);
        Ok(())
    }

    /// Marks how the cache was involved in an attempt that ran.
    pub(crate) async fn set_attempt_cache(
        &self,
        exec: &str,
        node: &str,
        attempt: u32,
        status: CacheStatus,
        key: &str,
    ) -> Result<(), StoreError> {
        // Through the journal: the attempt's row may still be queued there.
        let w =
            super::Write::Cache { exec: exec.to_owned(), node: node.to_owned(), attempt, status, key: key.to_owned() };
        self.submit(w).durable().await
    }
}
