//! Task output caching through the real engine, real SQLite and real agent-api clients:
//! hits and misses, cache serialize across executions, stale reservations, eviction,
//! corrupt entries, and a flytekit-serialized template's cache metadata.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{as_int, client, engine, int, out_int, Double, Log};
use prost::Message;
use sqlx::sqlite::SqlitePoolOptions;
use tern_agent_api::prelude::*;
use tern_core_engine::{
    codes, AgentRouter, CacheKey, CachePolicy, CacheStatus, Engine, Eviction, ExecutionEvent, ExecutionOutcome,
    ExecutionPhase, WorkflowSpec,
};
use tokio::sync::{mpsc, Notify};

/// Sync agent that counts its calls. Each declared output gets the input of the same name,
/// else input `x`. With `gate`, the first call waits until the gate opens (then fails when
/// `fail_first`).
struct Counted {
    calls: AtomicUsize,
    gate: Option<Arc<Notify>>,
    fail_first: bool,
    started: Notify,
}

impl Counted {
    fn new() -> Arc<Self> {
        Arc::new(Self { calls: AtomicUsize::new(0), gate: None, fail_first: false, started: Notify::new() })
    }

    fn gated(fail_first: bool) -> (Arc<Self>, Arc<Notify>) {
        let gate = Arc::new(Notify::new());
        let c = Self { calls: AtomicUsize::new(0), gate: Some(gate.clone()), fail_first, started: Notify::new() };
        (Arc::new(c), gate)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl SyncAgent for Counted {
    fn name(&self) -> &str {
        "counted"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("counted", 0)]
    }
    async fn execute(&self, _ctx: &TaskContext, task: TaskRequest) -> Result<TaskStatus, AgentError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        if let (0, Some(gate)) = (n, &self.gate) {
            gate.notified().await;
            if self.fail_first {
                return Ok(TaskStatus::failed(AgentError::user("TEST-E009", "first run fails")));
            }
        }
        let names: Vec<String> = task
            .template
            .interface
            .as_ref()
            .and_then(|i| i.outputs.as_ref())
            .map(|o| o.variables.keys().cloned().collect())
            .unwrap_or_default();
        let literals = names
            .into_iter()
            .filter_map(|k| {
                let v = task.inputs.literals.get(&k).or_else(|| task.inputs.literals.get("x")).cloned()?;
                Some((k, v))
            })
            .collect();
        Ok(TaskStatus::succeeded(Some(core::LiteralMap { literals })))
    }
}

fn workflow(cache: &str) -> WorkflowSpec {
    let text = format!(
        r#"
name: cached
inputs:
  x: integer
  y: {{type: integer, default: 0}}
nodes:
  - id: sum
    task:
      type: counted
      cache: {cache}
      interface: {{inputs: {{x: integer, y: integer}}, outputs: {{x: integer}}}}
    inputs: {{x: "${{inputs.x}}", y: "${{inputs.y}}"}}
outputs:
  x: ${{sum.x}}
"#
    );
    WorkflowSpec::parse(&text, "cached.yaml").unwrap_or_else(|e| panic!("parse: {e}"))
}

async fn setup(dir: &std::path::Path, agent: Arc<Counted>) -> Engine {
    let c = client(dir, |r| r.register_sync(agent).unwrap());
    engine(dir, AgentRouter::new(c)).await
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f).await.expect("test timed out")
}

async fn run(engine: &Engine, spec: &WorkflowSpec, x: i64, y: i64) -> (ExecutionOutcome, Vec<ExecutionEvent>) {
    let wf = engine.compile(spec).await.unwrap_or_else(|e| panic!("compile: {e}"));
    let (tx, mut rx) = mpsc::channel(256);
    let inputs = vec![("x".to_owned(), x.to_string()), ("y".to_owned(), y.to_string())];
    let outcome = within(engine.run(&wf, inputs, Some(tx))).await.unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

fn hit(events: &[ExecutionEvent]) -> bool {
    events.iter().any(|e| matches!(e, ExecutionEvent::NodeCacheHit { .. }))
}

async fn cache_status(engine: &Engine, id: &str) -> Vec<Option<CacheStatus>> {
    engine.execution(id).await.unwrap().attempts.iter().map(|a| a.cache_status).collect()
}

async fn db(dir: &std::path::Path) -> sqlx::SqlitePool {
    let url = format!("sqlite:{}", dir.join("tern.db").display());
    SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_served_from_the_cache_without_calling_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Counted::new();
    let engine = setup(dir.path(), agent.clone()).await;
    let spec = workflow(r#"{version: "1"}"#);

    let (first, events) = run(&engine, &spec, 5, 0).await;
    assert_eq!(first.phase, ExecutionPhase::Succeeded, "{first:?}");
    assert!(!hit(&events));
    assert_eq!(cache_status(&engine, &first.id).await, [Some(CacheStatus::Populated)]);

    let (second, events) = run(&engine, &spec, 5, 0).await;
    assert_eq!(second.phase, ExecutionPhase::Succeeded, "{second:?}");
    assert_eq!(out_int(&second.outputs, "x"), 5);
    assert_eq!(agent.calls(), 1, "the agent ran once");
    let source = events.iter().find_map(|e| match e {
        ExecutionEvent::NodeCacheHit { node, source_execution, source_node, .. } => {
            Some((node.clone(), source_execution.clone(), source_node.clone()))
        }
        _ => None,
    });
    assert_eq!(source, Some(("sum".into(), first.id.clone(), "sum".into())), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, ExecutionEvent::NodeSucceeded { .. })), "{events:?}");
    let hit_line = events.iter().find(|e| matches!(e, ExecutionEvent::NodeCacheHit { .. })).unwrap().to_string();
    assert!(hit_line.contains("cache hit") && hit_line.contains(&first.id), "{hit_line}");

    // `tern show` reads this: the hit is an attempt of its own, SUCCEEDED, marked HIT, with
    // its outputs copied into this execution.
    let detail = engine.execution(&second.id).await.unwrap();
    let [a] = detail.attempts.as_slice() else { panic!("one attempt: {:?}", detail.attempts) };
    assert_eq!((a.cache_status, a.agent_endpoint.as_str()), (Some(CacheStatus::Hit), "cache"));
    assert!(a.output_uri.contains(&second.id), "{}", a.output_uri);
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["attempts"][0]["cache_status"], "HIT");
    let entries = engine.cache_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(json["attempts"][0]["cache_key"], entries[0].key.as_str());
    assert_eq!(
        (entries[0].task_name.as_str(), entries[0].cache_version.as_str(), entries[0].execution_id.as_str()),
        ("cached.sum", "1", first.id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_counted_inputs_miss_ignored_inputs_hit() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Counted::new();
    let engine = setup(dir.path(), agent.clone()).await;
    let v1 = workflow(r#"{version: "1", ignore_inputs: [y]}"#);
    run(&engine, &v1, 1, 1).await;
    assert_eq!(agent.calls(), 1);
    let (_, events) = run(&engine, &v1, 1, 2).await;
    assert!(hit(&events), "y is ignored: {events:?}");
    assert_eq!(agent.calls(), 1);
    let (o, events) = run(&engine, &v1, 2, 1).await;
    assert!(!hit(&events) && out_int(&o.outputs, "x") == 2);
    assert_eq!(agent.calls(), 2, "x counts");
    let (_, events) = run(&engine, &workflow(r#"{version: "2", ignore_inputs: [y]}"#), 1, 1).await;
    assert!(!hit(&events));
    assert_eq!(agent.calls(), 3, "a new cache version misses");
    // Without ignore_inputs, y counts.
    let all = workflow(r#"{version: "1"}"#);
    run(&engine, &all, 7, 1).await;
    run(&engine, &all, 7, 2).await;
    assert_eq!(agent.calls(), 5);
    // Not cacheable: always runs, never marked.
    let plain = workflow("null");
    let (o, _) = run(&engine, &plain, 7, 1).await;
    run(&engine, &plain, 7, 1).await;
    assert_eq!(agent.calls(), 7);
    assert_eq!(cache_status(&engine, &o.id).await, [None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_serialize_runs_a_key_once_for_concurrent_executions() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, gate) = Counted::gated(false);
    let engine = setup(dir.path(), agent.clone()).await;
    // A second engine on the same state directory: as another process sharing the database.
    let other = setup(dir.path(), agent.clone()).await;
    let spec = workflow(r#"{version: "1", serialize: true}"#);
    let first = tokio::spawn({
        let (engine, spec) = (engine.clone(), spec.clone());
        async move { run(&engine, &spec, 3, 0).await }
    });
    within(agent.started.notified()).await;
    let wf = other.compile(&spec).await.unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let second = tokio::spawn({
        let other = other.clone();
        async move { other.run(&wf, vec![("x".into(), "3".into())], Some(tx)).await }
    });
    // The second waits for the first's result…
    let waiting = within(async {
        loop {
            match rx.recv().await {
                Some(ExecutionEvent::NodeCacheWaiting { holder, .. }) => break holder,
                Some(_) => {}
                None => panic!("no waiting event"),
            }
        }
    })
    .await;
    gate.notify_one();
    let (a, _) = within(first).await.unwrap();
    assert!(waiting.starts_with(&a.id) && waiting.ends_with("/sum"), "{waiting}");
    let b = within(second).await.unwrap().unwrap();
    let mut rest = Vec::new();
    while let Some(e) = rx.recv().await {
        rest.push(e);
    }
    // …and is served from it: the task ran once.
    assert_eq!((a.phase, b.phase), (ExecutionPhase::Succeeded, ExecutionPhase::Succeeded));
    assert_eq!(out_int(&b.outputs, "x"), 3);
    assert!(hit(&rest), "{rest:?}");
    assert_eq!(agent.calls(), 1);
    assert_eq!(cache_status(&engine, &b.id).await, [Some(CacheStatus::Hit)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_serialized_runner_fails_a_waiter_runs_the_task_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, gate) = Counted::gated(true);
    let engine = setup(dir.path(), agent.clone()).await;
    let spec = workflow(r#"{version: "1", serialize: true}"#);
    let first = tokio::spawn({
        let (engine, spec) = (engine.clone(), spec.clone());
        async move { run(&engine, &spec, 4, 0).await }
    });
    within(agent.started.notified()).await;
    let wf = engine.compile(&spec).await.unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let second = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run(&wf, vec![("x".into(), "4".into())], Some(tx)).await }
    });
    within(async {
        while let Some(e) = rx.recv().await {
            if matches!(e, ExecutionEvent::NodeCacheWaiting { .. }) {
                return;
            }
        }
        panic!("no waiting event");
    })
    .await;
    gate.notify_one();
    let (a, _) = within(first).await.unwrap();
    let b = within(second).await.unwrap().unwrap();
    assert_eq!(a.phase, ExecutionPhase::Failed, "{a:?}");
    assert_eq!(b.phase, ExecutionPhase::Succeeded, "{b:?}");
    assert_eq!(agent.calls(), 2, "the waiter ran it");
    assert_eq!(cache_status(&engine, &a.id).await, [None], "failures are never cached");
    assert_eq!(cache_status(&engine, &b.id).await, [Some(CacheStatus::Populated)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_reservation_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Counted::new();
    let engine = setup(dir.path(), agent.clone()).await;
    let spec = workflow(r#"{version: "1", serialize: true}"#);
    let key = {
        let wf = engine.compile(&spec).await.unwrap();
        let inputs = core::LiteralMap { literals: [("x".to_owned(), int(8)), ("y".to_owned(), int(0))].into() };
        CacheKey::compute(&wf.nodes[0].template, &inputs).unwrap().key
    };
    let pool = db(dir.path()).await;
    let now = chrono::Utc::now().timestamp_millis();
    let reserve = |expires: i64| {
        sqlx::query("INSERT OR REPLACE INTO cache_reservations (cache_key, owner, expires_at, created_at) VALUES ($1, 'crashed/sum', $2, 'x')")
            .bind(key.clone())
            .bind(expires)
    };
    // Expired: taken over at once.
    reserve(now - 1_000).execute(&pool).await.unwrap();
    let (o, events) = run(&engine, &spec, 8, 0).await;
    assert_eq!(o.phase, ExecutionPhase::Succeeded);
    assert!(!events.iter().any(|e| matches!(e, ExecutionEvent::NodeCacheWaiting { .. })), "{events:?}");
    assert_eq!(agent.calls(), 1);

    // Live, but nobody heartbeats it (its holder died): waited for, then taken over.
    engine.evict_cache(&Eviction::All).await.unwrap();
    reserve(chrono::Utc::now().timestamp_millis() + 1_500).execute(&pool).await.unwrap();
    let (o, events) = run(&engine, &spec, 8, 0).await;
    assert_eq!(o.phase, ExecutionPhase::Succeeded);
    let holder = events.iter().find_map(|e| match e {
        ExecutionEvent::NodeCacheWaiting { holder, .. } => Some(holder.clone()),
        _ => None,
    });
    assert_eq!(holder.as_deref(), Some("crashed/sum"), "{events:?}");
    assert_eq!(agent.calls(), 2);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cache_reservations").fetch_one(&pool).await.unwrap();
    assert_eq!(left, 0, "released after storing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_execution_takes_its_own_reservation_back() {
    let dir = tempfile::tempdir().unwrap();
    let double = Arc::new(Double::new("double", Arc::new(Log::default())));
    double.release.store(false, Ordering::SeqCst);
    let c = client(dir.path(), |r| r.register_async(double.clone()).unwrap());
    let spec = WorkflowSpec::parse(
        r#"
name: recovered
inputs: {x: integer}
nodes:
  - id: doubled
    task: {type: double, cache: {version: "1", serialize: true}, interface: {inputs: {x: integer}, outputs: {y: integer}}}
    inputs: {x: "${inputs.x}"}
outputs: {y: "${doubled.y}"}
"#,
        "recovered.yaml",
    )
    .unwrap();
    let first = engine(dir.path(), AgentRouter::new(c.clone())).await;
    let wf = first.compile(&spec).await.unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let task = tokio::spawn(async move { first.run(&wf, vec![("x".into(), "5".into())], Some(tx)).await });
    within(double.get_called.notified()).await;
    task.abort(); // a crash: nothing is released
    let _ = task.await;
    let mut id = None;
    while let Ok(e) = rx.try_recv() {
        if let ExecutionEvent::Started { execution_id, .. } = e {
            id = Some(execution_id);
        }
    }
    let id = id.expect("started");
    // Only the lease is given up, in the background (a real crash leaves it to expire or to
    // the dead-process check, which this one process cannot show).
    let store = tern_core_engine::StateStore::open(dir.path()).await.unwrap();
    within(async {
        while store.lease(&id).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let pool = db(dir.path()).await;
    let owner: String = sqlx::query_scalar("SELECT owner FROM cache_reservations").fetch_one(&pool).await.unwrap();
    assert_eq!(owner, format!("{id}/doubled"));

    double.release.store(true, Ordering::SeqCst);
    let engine = engine(dir.path(), AgentRouter::new(c)).await;
    let outcome = within(engine.recover(&id, None)).await.unwrap();
    assert_eq!(outcome.phase, ExecutionPhase::Succeeded, "{outcome:?}");
    assert_eq!(out_int(&outcome.outputs, "y"), 10);
    assert_eq!(double.jobs_started.load(Ordering::SeqCst), 1);
    assert_eq!(cache_status(&engine, &id).await, [Some(CacheStatus::Populated)]);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cache_reservations").fetch_one(&pool).await.unwrap();
    assert_eq!(left, 0, "the recovered run held its reservation again and released it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_entries_miss() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Counted::new();
    let engine = setup(dir.path(), agent.clone()).await;
    let spec = workflow(r#"{version: "1"}"#);
    run(&engine, &spec, 1, 0).await;
    run(&engine, &spec, 2, 0).await;
    let keys: Vec<String> = engine.cache_entries().await.unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys.len(), 2);
    let evicted = engine.evict_cache(&Eviction::Keys(vec![keys[0].clone(), "0".repeat(64)])).await.unwrap();
    assert_eq!(evicted, [keys[0].clone()], "an unknown key is not counted");
    run(&engine, &spec, 1, 0).await;
    run(&engine, &spec, 2, 0).await;
    assert_eq!(agent.calls(), 3, "the evicted one ran again, the other hit");
    assert_eq!(engine.evict_cache(&Eviction::Task("other.task".into())).await.unwrap().len(), 0);
    assert_eq!(engine.evict_cache(&Eviction::Task("cached.sum".into())).await.unwrap().len(), 2);
    run(&engine, &spec, 1, 0).await;
    assert_eq!(agent.calls(), 4);
    assert_eq!(engine.evict_cache(&Eviction::All).await.unwrap().len(), 1);
    assert!(engine.cache_entries().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_lost_entries_are_misses_and_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Counted::new();
    let engine = setup(dir.path(), agent.clone()).await;
    let pool = db(dir.path()).await;
    let spec = workflow(r#"{version: "1"}"#);
    let corrupt = |outputs: String| sqlx::query("UPDATE cache_entries SET outputs = $1").bind(outputs);

    let (first, _) = run(&engine, &spec, 1, 0).await;
    // Not base64, not a LiteralMap, a LiteralMap that does not match the interface.
    let wrong = core::LiteralMap { literals: [("z".to_owned(), int(1))].into() };
    let mut calls = 1;
    for bad in ["%%% not base64".to_owned(), "AAAA////".to_owned(), b64(&wrong.encode_to_vec())] {
        corrupt(bad.clone()).execute(&pool).await.unwrap();
        let (o, events) = run(&engine, &spec, 1, 0).await;
        calls += 1;
        assert_eq!(o.phase, ExecutionPhase::Succeeded, "{bad}: {o:?}");
        assert!(!hit(&events), "{bad}");
        assert_eq!(agent.calls(), calls, "{bad}");
        let entries = engine.cache_entries().await.unwrap();
        assert_eq!(entries.len(), 1, "replaced by the new run's outputs");
        assert_ne!(entries[0].execution_id, first.id);
    }
    let (_, events) = run(&engine, &spec, 1, 0).await;
    assert!(hit(&events), "a good entry again");

    // Large outputs are kept by URI: a lost file is a miss too.
    let big = "b".repeat(100_000);
    let spec = WorkflowSpec::parse(
        r#"
name: big
inputs: {s: string}
nodes:
  - id: copy
    task: {type: counted, cache: {version: v1}, interface: {inputs: {s: string}, outputs: {s: string}}}
    inputs: {s: "${inputs.s}"}
outputs: {s: "${copy.s}"}
"#,
        "big.yaml",
    )
    .unwrap();
    let wf = engine.compile(&spec).await.unwrap();
    let first = within(engine.run(&wf, vec![("s".into(), big.clone())], None)).await.unwrap();
    assert_eq!(first.phase, ExecutionPhase::Succeeded);
    let entry = engine.cache_entries().await.unwrap().into_iter().find(|e| e.task_name == "big.copy").unwrap();
    assert!(entry.outputs.ends_with("outputs.pb"), "stored by URI: {}", entry.outputs);
    let path = entry.outputs.strip_prefix("file://").unwrap_or(&entry.outputs).to_owned();
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {path}: {e}"));
    let before = agent.calls();
    let again = within(engine.run(&wf, vec![("s".into(), big)], None)).await.unwrap();
    assert_eq!(again.phase, ExecutionPhase::Succeeded);
    assert_eq!(agent.calls(), before + 1);
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn cache_settings_are_checked_at_compile_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = setup(dir.path(), Counted::new()).await;
    let errors = |cache: &str| {
        let spec = workflow(cache);
        let engine = engine.clone();
        async move {
            match engine.compile(&spec).await {
                Err(e) => e.errors.iter().map(|e| (e.code, e.field.clone().unwrap_or_default())).collect::<Vec<_>>(),
                Ok(_) => Vec::new(),
            }
        }
    };
    let no_version = [(codes::CACHE_WITHOUT_VERSION, "task.cache.version".to_owned())];
    assert_eq!(errors(r#"{serialize: true}"#).await, no_version);
    assert_eq!(errors(r#"{version: " "}"#).await, no_version);
    assert_eq!(
        errors(r#"{version: "1", ignore_inputs: [y, nope]}"#).await,
        [(codes::UNKNOWN_CACHE_INPUT, "task.cache.ignore_inputs".to_owned())]
    );
    assert!(errors("{version: 3}").await.is_empty(), "a number is read as the version text");
    let unknown = WorkflowSpec::parse(
        "name: w\nnodes:\n  - id: a\n    task:\n      type: counted\n      cache: {version: '1', serialise: true}\n",
        "w.yaml",
    )
    .unwrap_err();
    assert_eq!(unknown.code, codes::UNKNOWN_KEY, "{unknown}");
    assert!(unknown.message.contains("serialise") && unknown.message.contains("ignore_inputs"), "{unknown}");
    // The template carries Flyte's cache metadata, as flytekit would write it.
    let wf = engine.compile(&workflow(r#"{version: "7", serialize: true, ignore_inputs: [y]}"#)).await.unwrap();
    let m = wf.nodes[0].template.metadata.clone().unwrap();
    assert!(m.discoverable && m.cache_serializable);
    assert_eq!((m.discovery_version.as_str(), m.cache_ignore_input_vars), ("7", vec!["y".to_owned()]));
}

/// flytekit writes the cache settings into the template's metadata (`@task(cache=True,
/// cache_version=…, cache_serialize=True, cache_ignore_input_vars=…)`); the engine keys and
/// serves them as Flyte would. Needs `TERN_PYTHON` (the test virtualenv with flytekit), like the
/// other flytekit cross-checks; skipped without it unless `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flytekit_cached_task_is_keyed_by_its_metadata() {
    let Some(python) = std::env::var_os("TERN_PYTHON").filter(|p| !p.is_empty()) else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "TERN_PYTHON is not set (CI=true)");
        eprintln!("SKIPPED a_flytekit_cached_task_is_keyed_by_its_metadata: TERN_PYTHON is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("cached_tasks.py");
    std::fs::write(&script, FLYTEKIT_TASKS).unwrap();
    let out = std::process::Command::new(&python).arg(&script).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "flytekit: {}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| {
        let bytes = std::fs::read(dir.path().join(format!("{name}.pb"))).unwrap();
        core::TaskTemplate::decode(bytes.as_slice()).unwrap()
    };
    let (serialized, plain) = (read("serialized"), read("plain"));

    let inputs = |x: i64, y: i64| core::LiteralMap { literals: [("x".into(), int(x)), ("y".into(), int(y))].into() };
    let key = CacheKey::compute(&serialized, &inputs(1, 2)).expect("cache=True is cacheable");
    assert_eq!((key.policy.version.as_str(), key.policy.serialize), ("1", true));
    assert_eq!(key.policy.ignored_inputs, ["y"]);
    assert_eq!((key.task_project.as_str(), key.task_name.as_str()), ("flytesnacks", "cached_tasks.add"));
    assert_eq!(CacheKey::compute(&serialized, &inputs(1, 99)).unwrap().key, key.key, "y is ignored");
    assert_ne!(CacheKey::compute(&serialized, &inputs(2, 2)).unwrap().key, key.key);
    assert!(CacheKey::compute(&plain, &inputs(1, 2)).is_none(), "no cache=True, not cacheable");
    let v2 = CachePolicy::of(&read("version2")).expect("Cache(...) is cacheable");
    assert_eq!(v2, CachePolicy { version: "2".into(), serialize: true, ignored_inputs: vec!["y".into()] });

    // Through the engine: flytekit's template on a node routed to the counting agent.
    let agent = Counted::new();
    let engine = setup(dir.path(), agent.clone()).await;
    let spec = WorkflowSpec::parse(
        r#"
name: fk
inputs: {x: integer, y: integer}
nodes:
  - id: add
    task: {type: counted, interface: {inputs: {x: integer, y: integer}, outputs: {o0: integer}}}
    inputs: {x: "${inputs.x}", y: "${inputs.y}"}
outputs: {o0: "${add.o0}"}
"#,
        "fk.yaml",
    )
    .unwrap();
    let mut wf = engine.compile(&spec).await.unwrap();
    // The agent registry dispatches on the template's type: route flytekit's `python-task` to
    // the counting agent; the cache metadata stays flytekit's.
    std::sync::Arc::make_mut(&mut wf.nodes[0]).template = core::TaskTemplate { r#type: "counted".into(), ..serialized };
    for y in [2, 3] {
        let o = within(engine.run_literals(&wf, inputs(1, y), None)).await.unwrap();
        assert_eq!(o.phase, ExecutionPhase::Succeeded, "{o:?}");
        assert_eq!(o.outputs.literals.get("o0").and_then(as_int), Some(1));
    }
    assert_eq!(agent.calls(), 1, "the second run (only y changed) hit");
    assert_eq!(engine.cache_entries().await.unwrap()[0].key, key.key);
}

const FLYTEKIT_TASKS: &str = r#"
import sys
from collections import OrderedDict

from flytekit import task
from flytekit.core.cache import Cache
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable


@task(cache=True, cache_version="1", cache_serialize=True, cache_ignore_input_vars=("y",))
def add(x: int, y: int) -> int:
    return x + y


@task(cache=Cache(version="2", serialize=True, ignored_inputs=("y",)))
def add_v2(x: int, y: int) -> int:
    return x + y


@task
def plain(x: int, y: int) -> int:
    return x + y


settings = SerializationSettings(image_config=ImageConfig.auto_default_image(), project="flytesnacks",
                                 domain="development", version="v1")
for name, t in [("serialized", add), ("version2", add_v2), ("plain", plain)]:
    template = get_serializable(OrderedDict(), settings, t).template.to_flyte_idl()
    with open(f"{sys.argv[1]}/{name}.pb", "wb") as f:
        f.write(template.SerializeToString())
"#;
