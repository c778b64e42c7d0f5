//! The execution lease: which process drives an execution, until when.
//!
//! Times are epoch milliseconds of the callers' clocks (`now_ms`), never the database's,
//! so the SQL is portable and tests control time. Taking the lease is a compare-and-set:
//! the lease as read is the condition of the one UPDATE that changes it, so of two
//! processes racing, the database lets exactly one UPDATE match and the other sees the
//! winner on its next read.
use super::records::Columns;
use super::{q, with_pool, StateStore, StoreError};

/// How [`StateStore::acquire_lease`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease until `expires_at_ms`.
    Acquired { how: LeaseGrant, expires_at_ms: i64 },
    /// Another owner holds an unexpired lease.
    Held { owner: String, expires_at_ms: i64 },
}

/// Why the lease could be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// Nobody held it.
    Free,
    /// The caller held it already (now extended).
    AlreadyOurs,
    /// Another owner's lease had expired at `expired_at_ms`: taken over from it.
    TakenOver { previous_owner: String, expired_at_ms: i64 },
}

/// A lease as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires_at_ms: i64,
}

/// The lease columns as stored: the compare part of the compare-and-set.
struct Recorded {
    owner: Option<String>,
    expires: Option<i64>,
}

impl Recorded {
    /// An owner without an expiry (never written by Tern) counts as long expired.
    fn held(&self) -> Option<Lease> {
        let owner = self.owner.clone()?;
        Some(Lease { owner, expires_at_ms: self.expires.unwrap_or(i64::MIN) })
    }
}

/// Failed compare-and-sets in a row before giving up: each one means another process
/// changed the lease in between, so this is only reached under pathological churn.
const MAX_CAS_ROUNDS: usize = 16;

impl StateStore {
    /// The current lease of an execution (`None`: nobody holds one), or `NoExecution`.
    pub async fn lease(&self, exec_id: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.read_lease(exec_id).await?.held())
    }

    async fn read_lease(&self, exec_id: &str) -> Result<Recorded, StoreError> {
        const SQL: &str = "SELECT lease_owner, lease_expires_at FROM executions WHERE id = $1";
        let row = with_pool!(self, p => {
            let row = sqlx::query(SQL).bind(exec_id).fetch_optional(p).await.map_err(q("read lease"))?;
            row.map(|r| Ok::<_, StoreError>(Recorded { owner: r.text_opt("lease_owner")?, expires: r.int_opt("lease_expires_at")? }))
                .transpose()?
        });
        row.ok_or_else(|| StoreError::NoExecution { id: exec_id.to_owned() })
    }

    /// Takes the lease of `exec_id` for `owner` until `now_ms + ttl_ms`: when nobody holds
    /// it, when `owner` holds it already, or when the holder's lease expired (`<= now_ms`).
    pub async fn acquire_lease(
        &self,
        exec_id: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<LeaseOutcome, StoreError> {
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let mut seen = self.read_lease(exec_id).await?;
        for _ in 0..MAX_CAS_ROUNDS {
            let how = match seen.held() {
                None => LeaseGrant::Free,
                Some(l) if l.owner == owner => LeaseGrant::AlreadyOurs,
                Some(l) if l.expires_at_ms <= now_ms => {
                    LeaseGrant::TakenOver { previous_owner: l.owner, expired_at_ms: l.expires_at_ms }
                }
                Some(l) => return Ok(LeaseOutcome::Held { owner: l.owner, expires_at_ms: l.expires_at_ms }),
            };
            if self.compare_and_set(exec_id, &seen, owner, expires_at_ms).await? {
                return Ok(LeaseOutcome::Acquired { how, expires_at_ms });
            }
            seen = self.read_lease(exec_id).await?;
        }
        Err(StoreError::LeaseContended { id: exec_id.to_owned(), rounds: MAX_CAS_ROUNDS })
    }

    /// Sets the lease to (`owner`, `expires_at_ms`) only if it still is `seen`.
    async fn compare_and_set(
        &self,
        exec_id: &str,
        seen: &Recorded,
        owner: &str,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE executions SET lease_owner = $2, lease_expires_at = $3
             WHERE id = $1 AND lease_owner IS NOT DISTINCT FROM $4 AND lease_expires_at IS NOT DISTINCT FROM $5";
        let done = with_pool!(self, p => sqlx::query(SQL)
            .bind(exec_id)
            .bind(owner)
            .bind(expires_at_ms)
            .bind(seen.owner.as_deref())
            .bind(seen.expires)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(q("take lease"))?;
        Ok(done == 1)
    }

    /// Extends `owner`'s lease to `now_ms + ttl_ms`. `false`: `owner` no longer holds it
    /// (taken over or released), and must stop driving the execution. A lease past its
    /// expiry that nobody took over is still the owner's.
    pub async fn renew_lease(&self, exec_id: &str, owner: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE executions SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2";
        let done = with_pool!(self, p => sqlx::query(SQL)
            .bind(exec_id)
            .bind(owner)
            .bind(now_ms.saturating_add(ttl_ms))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(q("renew lease"))?;
        Ok(done == 1)
    }

    /// Gives the lease up if `owner` holds it; `false`: it did not.
    pub async fn release_lease(&self, exec_id: &str, owner: &str) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2";
        let done = with_pool!(self, p => sqlx::query(SQL)
            .bind(exec_id)
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(q("release lease"))?;
        Ok(done == 1)
    }
}
