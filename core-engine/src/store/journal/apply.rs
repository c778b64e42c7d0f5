//! One batch of writes, one transaction: the node-attempt rows go in as multi-row statements.
//!
//! A wave of nodes produces one intent, one handle and one final phase per node. Sent one
//! statement each, every write costs a round trip to the database (for SQLite, a hop to sqlx's
//! connection thread and back); grouped by kind, a batch of a hundred writes costs a handful.
//! Grouping reorders writes only across kinds, in the order a row receives them (an intent,
//! then its handle, then its final phase — `Write::Phase` is only ever an attempt's last
//! write), and the batch is one transaction, so the result is the same as in submission order.
use super::{Job, Write};
use crate::store::records::origin_str;
use crate::store::{b64, q, AttemptPhase, Pool, StoreError};

/// Rows per statement: a kind's rows are cut greedily into these sizes, so each kind needs at
/// most four statement texts (sqlx keeps prepared statements by text).
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The attempt rows of a batch by kind, and the other writes in order.
#[derive(Default)]
struct Plan<'a> {
    intents: Vec<&'a Job>,
    metas: Vec<&'a Job>,
    phases: Vec<&'a Job>,
    others: Vec<&'a Job>,
}

impl<'a> Plan<'a> {
    fn of(batch: &'a [Job]) -> Self {
        let mut plan = Plan::default();
        for job in batch {
            match job.write {
                Write::Intent { .. } => plan.intents.push(job),
                Write::ResourceMeta { .. } => plan.metas.push(job),
                Write::Phase { .. } => plan.phases.push(job),
                Write::Barrier => {}
                Write::Cache { .. } | Write::Finish { .. } => plan.others.push(job),
            }
        }
        plan
    }
}

/// `rows` cut into pieces of the sizes in [`CHUNKS`].
fn chunks<'s, T>(mut rows: &'s [T]) -> impl Iterator<Item = &'s [T]> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|&c| c <= rows.len())?;
        let (head, tail) = rows.split_at(size);
        rows = tail;
        Some(head)
    })
}

/// `($1, $2, …), (…)` for `rows` rows of `cols` parameters; column `bigint` (0-based) is cast
/// (a VALUES list gives PostgreSQL no column type to infer it from).
fn values(rows: usize, cols: usize, bigint: Option<usize>) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            let n = r * cols + c + 1;
            if c > 0 {
                out.push_str(", ");
            }
            if Some(c) == bigint {
                out.push_str(&format!("CAST(${n} AS BIGINT)"));
            } else {
                out.push_str(&format!("${n}"));
            }
        }
        out.push(')');
    }
    out
}

fn intents_sql(rows: usize) -> String {
    format!(
        "INSERT INTO node_attempts (execution_id, node_id, attempt, phase, task_type, task_version,
            agent_endpoint, intent, output_uri, created_at, updated_at)
         VALUES {} ON CONFLICT (execution_id, node_id, attempt) DO NOTHING",
        values(rows, 11, None)
    )
}

/// An UPDATE of many attempt rows from a VALUES list `v` whose first three columns are the key.
fn update_sql(rows: usize, columns: &[&str], set: &str) -> String {
    format!(
        "WITH v (e, n, a, {}) AS (VALUES {})
         UPDATE node_attempts SET {set} FROM v
         WHERE node_attempts.execution_id = v.e AND node_attempts.node_id = v.n AND node_attempts.attempt = v.a",
        columns.join(", "),
        values(rows, 3 + columns.len(), Some(2))
    )
}

fn metas_sql(rows: usize) -> String {
    update_sql(rows, &["m", "p", "t"], "resource_meta = v.m, phase = v.p, updated_at = v.t")
}

fn phases_sql(rows: usize) -> String {
    update_sql(
        rows,
        &["p", "ec", "em", "t", "f", "o", "out"],
        "phase = v.p, error_code = v.ec, error_message = v.em, updated_at = v.t, finished_at = v.f,
         error_origin = v.o, outputs = v.out",
    )
}

/// The statement texts of one kind, one per size in [`CHUNKS`], built once.
struct Texts(std::sync::OnceLock<Vec<String>>, fn(usize) -> String);

impl Texts {
    const fn new(build: fn(usize) -> String) -> Self {
        Self(std::sync::OnceLock::new(), build)
    }

    fn get(&self, rows: usize) -> std::borrow::Cow<'_, str> {
        let texts = self.0.get_or_init(|| CHUNKS.iter().map(|&n| (self.1)(n)).collect());
        match CHUNKS.iter().position(|&n| n == rows) {
            Some(i) => std::borrow::Cow::Borrowed(texts[i].as_str()),
            None => std::borrow::Cow::Owned((self.1)(rows)),
        }
    }
}

static INTENTS: Texts = Texts::new(intents_sql);
static METAS: Texts = Texts::new(metas_sql);
static PHASES: Texts = Texts::new(phases_sql);

/// Runs the attempt rows of a plan as multi-row statements on a transaction.
macro_rules! apply_rows {
    ($conn:expr, $plan:expr) => {{
        for rows in chunks(&$plan.intents) {
            let sql = INTENTS.get(rows.len());
            let mut query = sqlx::query(&sql);
            for job in rows {
                if let Write::Intent {
                    exec,
                    node,
                    attempt,
                    phase,
                    task_type,
                    task_version,
                    agent_endpoint,
                    intent,
                    output_uri,
                } = &job.write
                {
                    query = query
                        .bind(exec.as_str())
                        .bind(node.as_str())
                        .bind(i64::from(*attempt))
                        .bind(phase.as_str())
                        .bind(task_type.as_str())
                        .bind(i64::from(*task_version))
                        .bind(agent_endpoint.as_str())
                        .bind(intent.as_str())
                        .bind(output_uri.as_str())
                        .bind(job.at.as_str())
                        .bind(job.at.as_str());
                }
            }
            query.execute(&mut *$conn).await.map_err(q("record intents"))?;
        }
        for rows in chunks(&$plan.metas) {
            let sql = METAS.get(rows.len());
            let mut query = sqlx::query(&sql);
            for job in rows {
                if let Write::ResourceMeta { exec, node, attempt, meta } = &job.write {
                    query = query
                        .bind(exec.as_str())
                        .bind(node.as_str())
                        .bind(i64::from(*attempt))
                        .bind(b64(meta))
                        .bind(AttemptPhase::Running.as_str())
                        .bind(job.at.as_str());
                }
            }
            query.execute(&mut *$conn).await.map_err(q("record resource_meta"))?;
        }
        for rows in chunks(&$plan.phases) {
            let sql = PHASES.get(rows.len());
            let mut query = sqlx::query(&sql);
            for job in rows {
                if let Write::Phase { exec, node, attempt, phase, error, outputs } = &job.write {
                    query = query
                        .bind(exec.as_str())
                        .bind(node.as_str())
                        .bind(i64::from(*attempt))
                        .bind(phase.as_str())
                        .bind(error.as_ref().map(|e| e.code.clone()))
                        .bind(error.as_ref().map(|e| e.message.clone()))
                        .bind(job.at.as_str())
                        .bind(phase.is_terminal().then(|| job.at.clone()))
                        .bind(error.as_ref().and_then(|e| e.origin).map(origin_str))
                        .bind(outputs.as_deref().map(b64));
                }
            }
            query.execute(&mut *$conn).await.map_err(q("update attempts"))?;
        }
    }};
}

/// Applies one of the other writes on a transaction of either backend.
macro_rules! apply_other {
    ($conn:expr, $job:expr) => {{
        let t = &$job.at;
        match &$job.write {
            Write::Cache { exec, node, attempt, status, key } => {
                sqlx::query(
                    "UPDATE node_attempts SET cache_status = $4, cache_key = $5
                     WHERE execution_id = $1 AND node_id = $2 AND attempt = $3",
                )
                .bind(exec)
                .bind(node)
                .bind(i64::from(*attempt))
                .bind(status.as_str())
                .bind(key)
                .execute(&mut *$conn)
                .await
                .map_err(q("set attempt cache status"))?;
            }
            Write::Finish { exec, phase, failed_node, error, outputs_uri } => {
                sqlx::query(
                    "UPDATE executions SET phase = $2, failed_node = $3, error_code = $4, error_message = $5,
                     outputs_uri = $6, updated_at = $7, finished_at = $7 WHERE id = $1",
                )
                .bind(exec)
                .bind(phase.as_str())
                .bind(failed_node.as_deref())
                .bind(error.as_ref().map(|e| e.code.as_str()))
                .bind(error.as_ref().map(|e| e.message.as_str()))
                .bind(outputs_uri.as_deref())
                .bind(t)
                .execute(&mut *$conn)
                .await
                .map_err(q("finish execution"))?;
            }
            Write::Intent { .. } | Write::ResourceMeta { .. } | Write::Phase { .. } | Write::Barrier => {}
        }
    }};
}

/// Applies `batch` in one transaction and commits it.
pub(super) async fn commit(pool: &Pool, batch: &[Job]) -> Result<(), StoreError> {
    let plan = Plan::of(batch);
    match pool {
        Pool::Sqlite(p) => {
            let mut tx = p.begin().await.map_err(q("begin a batch"))?;
            apply_rows!(tx, plan);
            for job in &plan.others {
                apply_other!(tx, job);
            }
            tx.commit().await.map_err(q("commit a batch"))
        }
        Pool::Postgres(p) => {
            let mut tx = p.begin().await.map_err(q("begin a batch"))?;
            apply_rows!(tx, plan);
            for job in &plan.others {
                apply_other!(tx, job);
            }
            tx.commit().await.map_err(q("commit a batch"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_the_fixed_sizes() {
        let rows: Vec<usize> = (0..91).collect();
        let sizes: Vec<usize> = chunks(&rows).map(<[usize]>::len).collect();
        assert_eq!(sizes, [64, 16, 4, 4, 1, 1, 1]);
        assert_eq!(chunks(&rows).flatten().copied().collect::<Vec<_>>(), rows);
        assert_eq!(chunks::<usize>(&[]).count(), 0);
    }

    #[test]
    fn values_number_every_parameter_and_cast_the_key_attempt() {
        assert_eq!(values(2, 3, Some(2)), "($1, $2, CAST($3 AS BIGINT)), ($4, $5, CAST($6 AS BIGINT))");
        assert_eq!(values(1, 2, None), "($1, $2)");
    }
}
