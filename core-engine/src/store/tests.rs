//! The state store against real databases: every test runs on SQLite (a temp dir) and on
//! PostgreSQL (a fresh database on `TERN_TEST_POSTGRES_URL`'s server).
use std::collections::HashMap;
use std::sync::Arc;

use super::*;

#[path = "../../tests/common/pg.rs"]
mod pg;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh state location for one test (`None`: no PostgreSQL, skip), and the temp dir
/// that must outlive it.
async fn location(backend: Backend, test: &str) -> Option<(StateLocation, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let loc = match backend {
        Backend::Sqlite => StateLocation::Sqlite(dir.path().join("state")),
        Backend::Postgres => StateLocation::parse(&pg::fresh_database(test).await?),
    };
    Some((loc, dir))
}

/// Generates `<name>::sqlite` and `<name>::postgres` from `async fn <name>(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    records_round_trip,
    reopening_applies_nothing_twice,
    racing_acquirers_exactly_one_wins,
    racing_takeovers_exactly_one_wins,
    an_expired_lease_is_taken_over_and_its_owner_cannot_renew,
    renew_extends_and_release_frees,
    lease_of_an_unknown_execution_is_an_error,
);

async fn new_execution(store: &StateStore, id: &str) {
    store
        .insert_execution(&NewExecution {
            id,
            workflow_name: "wf",
            workflow_yaml: "name: wf\n",
            workflow_ir: r#"{"nodes":2}"#,
            inputs: &[0, 1, 2, 255],
        })
        .await
        .expect("insert execution");
}

fn attempt<'a>(exec: &'a str, node: &'a str, attempt: u32, intent: &'a str) -> NewAttempt<'a> {
    NewAttempt {
        execution_id: exec,
        node_id: node,
        attempt,
        task_type: "double",
        task_version: 1,
        agent_endpoint: "in-process",
        intent,
        output_uri: "file:///x/out",
    }
}

async fn records_round_trip(backend: Backend) {
    let Some((loc, _dir)) = location(backend, "records_round_trip").await else { return };
    let store = StateStore::connect(&loc).await.expect("open");
    assert_eq!(store.backend(), loc.backend());
    new_execution(&store, "e1").await;
    new_execution(&store, "e2").await;
    store.record_intent(&attempt("e1", "a", 0, r#"{"retry_attempt":0}"#)).await.unwrap();
    // Recovery re-records the same intent: the first row stays.
    store.record_intent(&attempt("e1", "a", 0, r#"{"retry_attempt":99}"#)).await.unwrap();
    store.record_resource_meta("e1", "a", 0, b"\x00handle\xff").await.unwrap();
    let err = RecordedError::new("TEST-E1", "it's \"bad\"");
    store.set_attempt_phase("e1", "a", 0, AttemptPhase::RetryableFailed, Some(&err)).await.unwrap();
    store.record_intent(&attempt("e1", "a", 1, r#"{"retry_attempt":1}"#)).await.unwrap();
    store.set_attempt_phase("e1", "a", 1, AttemptPhase::Succeeded, None).await.unwrap();
    store.finish_execution("e1", ExecutionPhase::Failed, Some("a"), Some(&err), None).await.unwrap();

    let (exec, attempts) = store.get_execution("e1").await.unwrap().expect("e1 recorded");
    assert_eq!(exec.id, "e1");
    assert_eq!(exec.phase, ExecutionPhase::Failed);
    assert_eq!(exec.failed_node.as_deref(), Some("a"));
    assert_eq!(exec.error.as_ref(), Some(&err));
    assert_eq!(exec.workflow_ir["nodes"], 2);
    assert!(exec.finished_at.is_some());
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].intent["retry_attempt"], 0, "the original intent is kept");
    assert_eq!(attempts[0].resource_meta.as_deref(), Some(&b"\x00handle\xff"[..]));
    assert_eq!((attempts[0].phase, attempts[0].error.as_ref()), (AttemptPhase::RetryableFailed, Some(&err)));
    assert!(attempts[0].finished_at.is_some());
    assert_eq!((attempts[1].attempt, attempts[1].phase), (1, AttemptPhase::Succeeded));
    assert_eq!(store.execution_source("e1").await.unwrap(), Some(("name: wf\n".into(), vec![0, 1, 2, 255])));

    let listed: Vec<String> = store.list_executions().await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(listed, ["e2", "e1"], "newest first");
    assert!(store.get_execution("nope").await.unwrap().is_none());
    assert!(store.execution_source("nope").await.unwrap().is_none());
    store.close().await;
}

async fn reopening_applies_nothing_twice(backend: Backend) {
    let Some((loc, _dir)) = location(backend, "reopening_applies_nothing_twice").await else { return };
    let first = StateStore::connect(&loc).await.expect("open");
    new_execution(&first, "kept").await;
    // Two more processes opening the same state at once.
    let (a, b) = tokio::join!(StateStore::connect(&loc), StateStore::connect(&loc));
    let (a, b) = (a.expect("reopen"), b.expect("reopen"));
    assert!(a.get_execution("kept").await.unwrap().is_some());
    assert_eq!(b.list_executions().await.unwrap().len(), 1);
    for s in [first, a, b] {
        s.close().await;
    }
}

const TTL: i64 = 10_000;

async fn racing_acquirers_exactly_one_wins(backend: Backend) {
    let Some((loc, _dir)) = location(backend, "racing_acquirers_exactly_one_wins").await else { return };
    let setup = StateStore::connect(&loc).await.expect("open");
    new_execution(&setup, "race").await;
    // Several stores (pools: like separate processes), several tasks each, one instant.
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(StateStore::connect(&loc).await.expect("open"));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(stores.len() * 5));
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for j in 0..5 {
            let (store, barrier, owner) = (store.clone(), barrier.clone(), format!("owner-{i}-{j}"));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome = store.acquire_lease("race", &owner, 1_000, TTL).await.expect("acquire");
                (owner, outcome)
            }));
        }
    }
    let mut winners = Vec::new();
    let mut held_by = HashMap::new();
    for t in tasks {
        let (owner, outcome) = t.await.unwrap();
        match outcome {
            LeaseOutcome::Acquired { how, expires_at_ms } => {
                assert_eq!((how, expires_at_ms), (LeaseGrant::Free, 1_000 + TTL));
                winners.push(owner);
            }
            LeaseOutcome::Held { owner: holder, expires_at_ms } => {
                assert_eq!(expires_at_ms, 1_000 + TTL);
                *held_by.entry(holder).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(held_by.len(), 1, "every loser saw the same holder: {held_by:?}");
    assert_eq!(held_by.get(&winners[0]), Some(&29));
    let lease = setup.lease("race").await.unwrap().expect("held");
    assert_eq!(lease.owner, winners[0]);
    for s in stores.iter().chain([&setup]) {
        s.close().await;
    }
}

async fn racing_takeovers_exactly_one_wins(backend: Backend) {
    let Some((loc, _dir)) = location(backend, "racing_takeovers_exactly_one_wins").await else { return };
    let store = StateStore::connect(&loc).await.expect("open");
    new_execution(&store, "stale").await;
    let first = store.acquire_lease("stale", "crashed", 0, 100).await.unwrap();
    assert!(matches!(first, LeaseOutcome::Acquired { how: LeaseGrant::Free, .. }), "{first:?}");
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.acquire_lease("stale", &format!("recoverer-{i}"), 5_000, TTL).await.expect("acquire")
            })
        })
        .collect();
    let mut takeovers = 0;
    for t in tasks {
        match t.await.unwrap() {
            LeaseOutcome::Acquired { how, .. } => {
                assert_eq!(how, LeaseGrant::TakenOver { previous_owner: "crashed".into(), expired_at_ms: 100 });
                takeovers += 1;
            }
            LeaseOutcome::Held { owner, .. } => assert!(owner.starts_with("recoverer-"), "{owner}"),
        }
    }
    assert_eq!(takeovers, 1);
    store.close().await;
}

async fn an_expired_lease_is_taken_over_and_its_owner_cannot_renew(backend: Backend) {
    let test = "an_expired_lease_is_taken_over_and_its_owner_cannot_renew";
    let Some((loc, _dir)) = location(backend, test).await else { return };
    let store = StateStore::connect(&loc).await.expect("open");
    new_execution(&store, "e").await;
    let a = store.acquire_lease("e", "A", 0, 1_000).await.unwrap();
    assert_eq!(a, LeaseOutcome::Acquired { how: LeaseGrant::Free, expires_at_ms: 1_000 });
    // Not expired yet: held.
    let b = store.acquire_lease("e", "B", 999, 1_000).await.unwrap();
    assert_eq!(b, LeaseOutcome::Held { owner: "A".into(), expires_at_ms: 1_000 });
    // At the expiry instant it is taken over, and B is told from whom.
    let b = store.acquire_lease("e", "B", 1_000, 1_000).await.unwrap();
    assert_eq!(
        b,
        LeaseOutcome::Acquired {
            how: LeaseGrant::TakenOver { previous_owner: "A".into(), expired_at_ms: 1_000 },
            expires_at_ms: 2_000
        }
    );
    // A lost it: renewing says so, and so does trying to take it back.
    assert!(!store.renew_lease("e", "A", 1_100, 1_000).await.unwrap());
    let a = store.acquire_lease("e", "A", 1_100, 1_000).await.unwrap();
    assert_eq!(a, LeaseOutcome::Held { owner: "B".into(), expires_at_ms: 2_000 });
    assert!(!store.release_lease("e", "A").await.unwrap(), "A cannot release B's lease");
    assert_eq!(store.lease("e").await.unwrap().map(|l| l.owner).as_deref(), Some("B"));
    store.close().await;
}

async fn renew_extends_and_release_frees(backend: Backend) {
    let Some((loc, _dir)) = location(backend, "renew_extends_and_release_frees").await else { return };
    let store = StateStore::connect(&loc).await.expect("open");
    new_execution(&store, "e").await;
    store.acquire_lease("e", "A", 0, 1_000).await.unwrap();
    assert!(store.renew_lease("e", "A", 900, 1_000).await.unwrap());
    assert_eq!(store.lease("e").await.unwrap().map(|l| l.expires_at_ms), Some(1_900));
    let b = store.acquire_lease("e", "B", 1_500, 1_000).await.unwrap();
    assert_eq!(b, LeaseOutcome::Held { owner: "A".into(), expires_at_ms: 1_900 }, "renewed: not expired");
    // Acquiring again as the holder extends it.
    let a = store.acquire_lease("e", "A", 1_600, 1_000).await.unwrap();
    assert_eq!(a, LeaseOutcome::Acquired { how: LeaseGrant::AlreadyOurs, expires_at_ms: 2_600 });

    assert!(store.release_lease("e", "A").await.unwrap());
    assert!(!store.release_lease("e", "A").await.unwrap(), "released once");
    assert_eq!(store.lease("e").await.unwrap(), None);
    assert!(!store.renew_lease("e", "A", 1_700, 1_000).await.unwrap(), "a released lease is not renewed");
    let b = store.acquire_lease("e", "B", 1_700, 1_000).await.unwrap();
    assert_eq!(b, LeaseOutcome::Acquired { how: LeaseGrant::Free, expires_at_ms: 2_700 });
    store.close().await;
}

async fn lease_of_an_unknown_execution_is_an_error(backend: Backend) {
    let Some((loc, _dir)) = location(backend, "lease_of_an_unknown_execution_is_an_error").await else { return };
    let store = StateStore::connect(&loc).await.expect("open");
    let err = store.acquire_lease("nope", "A", 0, 1_000).await.unwrap_err();
    assert!(matches!(err, StoreError::NoExecution { .. }), "{err}");
    assert_eq!(err.code(), codes::EXECUTION_NOT_FOUND);
    assert!(!store.renew_lease("nope", "A", 0, 1_000).await.unwrap());
    assert!(!store.release_lease("nope", "A").await.unwrap());
    store.close().await;
}

/// A `tern.db` created by the first schema (the migration as shipped before PostgreSQL
/// support, kept verbatim in tests/fixtures/sqlite-v1) opens, keeps its rows, and gains
/// the lease columns.
#[tokio::test]
async fn a_sqlite_db_created_by_the_first_schema_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.db");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sqlite-v1");
        sqlx::migrate::Migrator::new(fixture).await.unwrap().run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO executions (id, workflow_name, workflow_yaml, workflow_ir, inputs, phase, created_at, updated_at)
             VALUES ('old', 'wf', 'name: wf', '{}', '', 'RUNNING', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = StateStore::open(dir.path()).await.expect("the old database opens");
    let (old, _) = store.get_execution("old").await.unwrap().expect("its row is still there");
    assert_eq!(old.phase, ExecutionPhase::Running);
    let taken = store.acquire_lease("old", "A", 0, 1_000).await.unwrap();
    assert!(matches!(taken, LeaseOutcome::Acquired { how: LeaseGrant::Free, .. }), "{taken:?}");
    store.close().await;
}

fn assert_no_secret(err: &StoreError, secret: &str) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(secret), "the password leaked: {shown}");
}

#[tokio::test]
async fn a_malformed_postgres_url_is_a_location_error() {
    let loc = StateLocation::parse("postgres://tern:hunter2@db:notaport/x");
    let err = StateStore::connect(&loc).await.unwrap_err();
    assert_eq!(err.code(), codes::STORE_LOCATION, "{err}");
    assert!(err.is_user_error());
    assert_no_secret(&err, "hunter2");
}

#[tokio::test]
async fn an_unreachable_server_is_an_open_error_naming_it() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let loc = StateLocation::parse(&format!("postgres://tern:hunter2@127.0.0.1:{port}/tern"));
    let err = StateStore::connect(&loc).await.unwrap_err();
    assert_eq!(err.code(), codes::STORE_OPEN, "{err}");
    let text = err.to_string();
    assert!(text.contains("cannot reach the server") && text.contains(&port.to_string()), "{text}");
    assert!(text.contains("tern:***@"), "{text}");
    assert_no_secret(&err, "hunter2");
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_without_the_password() {
    let Some(server) = pg::server_url("a_wrong_password_is_an_auth_error_without_the_password") else { return };
    let mut url = url::Url::parse(&server).unwrap();
    url.set_password(Some("not-the-password-x7")).unwrap();
    let err = StateStore::connect(&StateLocation::parse(url.as_str())).await.unwrap_err();
    assert_eq!(err.code(), codes::STORE_AUTH, "{err}");
    assert!(err.is_user_error());
    assert_no_secret(&err, "not-the-password-x7");
    // The same password as a parameter.
    url.set_password(None).unwrap();
    url.query_pairs_mut().append_pair("password", "not-the-password-x7");
    let err = StateStore::connect(&StateLocation::parse(url.as_str())).await.unwrap_err();
    assert_eq!(err.code(), codes::STORE_AUTH, "{err}");
    assert_no_secret(&err, "not-the-password-x7");
}

#[tokio::test]
async fn a_missing_database_says_to_create_it() {
    let Some(server) = pg::server_url("a_missing_database_says_to_create_it") else { return };
    let loc = StateLocation::parse(&pg::with_database(&server, "tern_no_such_db"));
    let err = StateStore::connect(&loc).await.unwrap_err();
    assert_eq!(err.code(), codes::STORE_OPEN, "{err}");
    assert!(err.to_string().contains("createdb"), "{err}");
    if let Some(pw) = url::Url::parse(&server).unwrap().password() {
        assert_no_secret(&err, pw);
    }
}

/// `tern run` and a `tern show` polling it open a fresh state at the same moment: both
/// must succeed (sqlx does not lock SQLite migrations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_a_fresh_sqlite_state_at_once_all_succeed() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let opens = (0..6).map(|_| {
            let d = dir.path().to_owned();
            tokio::spawn(async move { StateStore::open(&d).await.map(|_| ()) })
        });
        for r in futures::future::join_all(opens).await {
            r.unwrap().unwrap_or_else(|e| panic!("a concurrent open failed: {e}"));
        }
    }
}
