//! Configured agents: which agents `tern serve` and `tern run` get from `tern.toml`, the
//! environment layers, secrets by reference, and admission limits.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_agent_api::factory::HostResources;
use tern_agent_api::prelude::*;
use tern_gateway::config::show;
use tern_gateway::registry::{self, compiled, AgentEntry, Decision};
use tern_gateway::{GatewayConfig, Mode};

fn config(text: &str, env: &[(&str, &str)]) -> Result<GatewayConfig, tern_gateway::GatewayError> {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    GatewayConfig::parse_with_env(text, Some(Path::new("tern.toml")), Arc::new(env))
}

fn host() -> HostResources {
    HostResources { cpus: 4, memory_bytes: Some(16 << 30), ..HostResources::detect() }
}

fn served(text: &str, mode: Mode) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(text, &[]).unwrap();
    c.data_store.root = dir.path().to_owned();
    let (_, built) = tern_gateway::in_process_client(&c, mode).unwrap();
    built.served.iter().map(|a| a.name.clone()).collect()
}

/// Agents behind cargo features of their own, checked apart so these lists do not depend on the features
/// built: the warehouse agents, batch and ray (they only reach their backend: served by default like echo),
/// dask and gpu (they run code on this host: like shell, `tern serve` needs `enabled = true`; see their own tests
/// below), spark (served only once its section picks a `mode`) and lepton (it only reaches Lepton's API: served by
/// default).
const BACKEND_AGENTS: &[&str] = &["snowflake", "bigquery", "databricks", "batch", "ray", "dask", "spark", "lepton", "gpu"];

fn core(names: Vec<String>) -> Vec<String> {
    names.into_iter().filter(|n| !BACKEND_AGENTS.contains(&n.as_str())).collect()
}

#[test]
fn serve_without_config_exposes_only_safe_agents() {
    let all = served("", Mode::Serve);
    #[cfg(feature = "agent-snowflake")]
    assert!(all.iter().any(|n| n == "snowflake"), "{all:?}");
    #[cfg(feature = "agent-bigquery")]
    assert!(all.iter().any(|n| n == "bigquery"), "{all:?}");
    #[cfg(feature = "agent-ray")]
    assert!(all.iter().any(|n| n == "ray"), "{all:?}");
    let names = core(all);
    assert_eq!(names, ["echo", "sleep", "webhook", "duckdb"]);
    let c = config("", &[]).unwrap();
    let planned = registry::plan(&c, Mode::Serve, &host(), &compiled::compiled_in()).unwrap();
    let shell = planned.iter().find(|p| p.entry.name == "shell").unwrap();
    match &shell.decision {
        Decision::Off(reason) => assert!(reason.contains("enabled = true") && reason.contains("arbitrary commands"), "{reason}"),
        Decision::Serve => panic!("shell must not be served by default"),
    }
}

#[test]
fn embedded_runs_keep_every_local_agent() {
    assert_eq!(core(served("", Mode::Embedded)), ["echo", "sleep", "webhook", "duckdb", "shell"]);
    assert_eq!(core(served("[agents.shell]\nenabled = false\n", Mode::Embedded)), ["echo", "sleep", "webhook", "duckdb"]);
}

#[test]
fn a_config_that_lists_agents_serves_exactly_those() {
    assert_eq!(served("[agents.echo]\n[agents.webhook]\n", Mode::Serve), ["echo", "webhook"]);
    assert_eq!(served("[agents.shell]\nenabled = true\n", Mode::Serve), ["shell"]);
    assert_eq!(served("[agents.echo]\n[agents.sleep]\nenabled = false\n", Mode::Serve), ["echo"]);
}

#[cfg(feature = "agent-dask")]
#[test]
fn dask_runs_code_so_serve_needs_it_enabled() {
    assert!(!served("", Mode::Serve).iter().any(|n| n == "dask"));
    assert!(served("", Mode::Embedded).iter().any(|n| n == "dask"));
    assert_eq!(served("[agents.dask]\nenabled = true\n", Mode::Serve), ["dask"]);
    let c = config("[agents.dask]\n", &[]).unwrap();
    let err = match tern_gateway::in_process_client(&c, Mode::Serve) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("dask served without enabled = true"),
    };
    assert!(err.contains("TERN-G009") && err.contains("enabled = true"), "{err}");
}

#[cfg(feature = "agent-gpu")]
#[test]
fn gpu_runs_code_so_serve_needs_it_enabled() {
    assert!(!served("", Mode::Serve).iter().any(|n| n == "gpu"));
    assert!(served("", Mode::Embedded).iter().any(|n| n == "gpu"));
    assert_eq!(served("[agents.gpu]\nenabled = true\n", Mode::Serve), ["gpu"]);
    let c = config("[agents.gpu]\n", &[]).unwrap();
    let err = match tern_gateway::in_process_client(&c, Mode::Serve) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("gpu served without enabled = true"),
    };
    assert!(err.contains("TERN-G009") && err.contains("enabled = true"), "{err}");
}

#[test]
fn dangerous_agents_must_be_enabled_explicitly() {
    for text in ["[agents.shell]\n", "[agents.duckdb]\nunrestricted_file_access = true\n", "[agents.duckdb]\nallowed_directories = [\"/srv\"]\n"] {
        let c = config(text, &[]).unwrap();
        let err = match tern_gateway::in_process_client(&c, Mode::Serve) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{text}: served without enabled = true"),
        };
        assert!(err.contains("TERN-G009") && err.contains("enabled = true"), "{text}: {err}");
    }
    let c = config("[agents.duckdb]\nenabled = true\nallowed_directories = [\"/srv\"]\n", &[]).unwrap();
    assert!(tern_gateway::in_process_client(&c, Mode::Serve).is_ok());
}

#[test]
fn unknown_agents_and_keys_are_refused_by_name() {
    let err = config("[agents.bigqeury]\n", &[]).map(|c| tern_gateway::in_process_client(&c, Mode::Serve).err()).unwrap().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("TERN-G003") && msg.contains("bigqeury") && msg.contains("duckdb"), "{msg}");

    let c = config("[agents.duckdb]\nthread = 2\n", &[]).unwrap();
    let msg = tern_gateway::in_process_client(&c, Mode::Serve).err().unwrap().to_string();
    assert!(msg.contains("TERN-G002") && msg.contains("[agents.duckdb]") && msg.contains("thread") && msg.contains("tern.toml"), "{msg}");

    let c = config("[agents.echo]\nmax_concurrency = \"many\"\n", &[]).unwrap();
    let msg = tern_gateway::in_process_client(&c, Mode::Serve).err().unwrap().to_string();
    assert!(msg.contains("[agents.echo]") && msg.contains("many"), "{msg}");

    let c = config("[agents.webhook]\nallowed_hosts = \"example.com\"\n", &[]).unwrap();
    let msg = tern_gateway::in_process_client(&c, Mode::Serve).err().unwrap().to_string();
    assert!(msg.contains("[agents.webhook]") && msg.contains("sequence"), "{msg}");
}

#[test]
fn environment_overrides_reach_agent_sections_and_are_named_in_errors() {
    let c = config("[agents.duckdb]\nthreads = 1\n", &[("TERN_AGENTS__DUCKDB__THREADS", "3")]).unwrap();
    let planned = registry::plan(&c, Mode::Serve, &host(), &compiled::compiled_in()).unwrap();
    let table = show::effective(&c, &planned).unwrap();
    assert_eq!(table["agents"]["duckdb"]["threads"].as_integer(), Some(3), "the override wins over the file");

    let c = config("", &[("TERN_AGENTS__DUCKDB__THREADZ", "3")]).unwrap();
    let msg = tern_gateway::in_process_client(&c, Mode::Serve).err().unwrap().to_string();
    assert!(msg.contains("threadz") && msg.contains("TERN_AGENTS__DUCKDB__THREADZ"), "{msg}");
}

#[test]
fn duckdb_gets_safe_threads_and_memory_by_default() {
    let c = config("[agents.duckdb]\nmax_concurrency = 2\n", &[]).unwrap();
    let planned = registry::plan(&c, Mode::Serve, &host(), &compiled::compiled_in()).unwrap();
    let table = show::effective(&c, &planned).unwrap();
    let duck = table["agents"]["duckdb"].as_table().unwrap();
    assert_eq!(duck["threads"].as_integer(), Some(2), "4 CPUs shared by 2 queries");
    assert_eq!(duck["memory_limit"].as_str(), Some("4096MiB"), "half of 16 GiB shared by 2 queries");
    assert_eq!(duck["max_concurrency"].as_integer(), Some(2));
    let c = config("[agents.duckdb]\n", &[]).unwrap();
    let planned = registry::plan(&c, Mode::Serve, &host(), &compiled::compiled_in()).unwrap();
    assert_eq!(planned.iter().find(|p| p.entry.name == "duckdb").unwrap().max_concurrency, Some(4), "one query per CPU");
}

// --- an agent of the test's own, to observe what the gateway hands an agent ---------------

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProbeConfig {
    address: Option<String>,
    token: Option<SecretRef>,
    delay_ms: u64,
}

struct Probe {
    config: ProbeConfig,
}

#[async_trait::async_trait]
impl SyncAgent for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn task_categories(&self) -> Vec<TaskCategory> {
        vec![TaskCategory::new("probe", 0)]
    }
    async fn execute(&self, ctx: &TaskContext, _task: TaskRequest) -> Result<TaskStatus, AgentError> {
        tokio::time::sleep(Duration::from_millis(self.config.delay_ms)).await;
        let token = match &self.config.token {
            Some(t) => ctx.secrets().resolve(t)?.expose().len(),
            None => 0,
        };
        Ok(TaskStatus::succeeded(None).with_message(format!("address={:?} token_len={token}", self.config.address)))
    }
}

struct ProbeFactory;

impl AgentFactory for ProbeFactory {
    type Config = ProbeConfig;
    const NAME: &'static str = "probe";
    const DESCRIPTION: &'static str = "test probe";
    fn standard_env() -> &'static [StandardEnv] {
        const ENV: &[StandardEnv] = &[StandardEnv::value("PROBE_ADDRESS", "address"), StandardEnv::secret("PROBE_TOKEN", "token")];
        ENV
    }
    fn build(config: ProbeConfig, _init: &AgentInit) -> Result<AgentHandle, AgentError> {
        Ok(AgentHandle::Sync(Arc::new(Probe { config })))
    }
}

fn probe_client(c: &GatewayConfig) -> InProcessClient {
    let services = tern_gateway::services(c, Mode::Serve, Default::default()).unwrap();
    let built = registry::build(c, Mode::Serve, &services, &host(), &[AgentEntry::of::<ProbeFactory>()]).unwrap();
    InProcessClient::new(built.registry, services)
}

fn probe_header() -> admin::CreateRequestHeader {
    admin::CreateRequestHeader {
        template: Some((core::TaskTemplate { r#type: "probe".into(), ..Default::default() }).into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn standard_variables_fill_unset_keys_and_the_file_wins() {
    let env = [("PROBE_ADDRESS", "ray://from-env:10001"), ("PROBE_TOKEN", "s3cr3t-value")];
    let c = config("[agents.probe]\n", &env).unwrap();
    let r = probe_client(&c).execute_task_sync(probe_header(), Default::default()).await.unwrap();
    assert_eq!(r.message, "address=Some(\"ray://from-env:10001\") token_len=12", "PROBE_TOKEN became `env:PROBE_TOKEN`, resolved at use");

    let c = config("[agents.probe]\naddress = \"ray://from-file:10001\"\n", &env).unwrap();
    let r = probe_client(&c).execute_task_sync(probe_header(), Default::default()).await.unwrap();
    assert!(r.message.starts_with("address=Some(\"ray://from-file:10001\")"), "{}", r.message);

    // What `tern config show` prints: the reference, never the value.
    let planned = registry::plan(&c, Mode::Serve, &host(), &[AgentEntry::of::<ProbeFactory>()]).unwrap();
    let text = show::render_toml(&c, &planned, Mode::Serve).unwrap();
    assert!(text.contains("token = \"env:PROBE_TOKEN\"") && !text.contains("s3cr3t-value"), "{text}");
}

#[test]
fn secret_values_in_config_are_refused_without_echoing_them() {
    let c = config("[agents.probe]\ntoken = \"dapi-0123456789abcdef\"\n", &[]).unwrap();
    let err = registry::plan(&c, Mode::Serve, &host(), &[AgentEntry::of::<ProbeFactory>()]).err().unwrap().to_string();
    assert!(err.contains("env:NAME") && err.contains("[agents.probe]"), "{err}");
    assert!(!err.contains("0123456789abcdef"), "the refused value is echoed: {err}");
}

#[tokio::test]
async fn call_admission_rejects_or_queues_beyond_the_limit() {
    let c = config("[agents.probe]\ndelay_ms = 300\nmax_concurrency = 1\non_full = \"reject\"\n", &[]).unwrap();
    let client = probe_client(&c);
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.execute_task_sync(probe_header(), Default::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = client.execute_task_sync(probe_header(), Default::default()).await.unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::ResourceExhausted);
    assert_eq!(err.code, codes::RESOURCE_EXHAUSTED);
    assert!(err.retry_after.is_some() && err.message.contains("max_concurrency = 1"), "{err}");
    assert_eq!(first.await.unwrap().unwrap().phase, Phase::Succeeded as i32);

    let c = config("[agents.probe]\ndelay_ms = 200\nmax_concurrency = 1\nqueue_timeout = \"5s\"\n", &[]).unwrap();
    let client = probe_client(&c);
    let started = std::time::Instant::now();
    let results = futures::future::join_all((0..3).map(|_| client.execute_task_sync(probe_header(), Default::default()))).await;
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|r| r.phase == Phase::Succeeded as i32)), "{results:?}");
    assert!(started.elapsed() >= Duration::from_millis(600), "queued calls ran one at a time: {:?}", started.elapsed());
}

#[tokio::test]
async fn duckdb_queries_beyond_the_limit_wait_queued_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("[agents.duckdb]\nmax_concurrency = 1\n", &[]).unwrap();
    c.data_store.root = dir.path().to_owned();
    let (client, _) = tern_gateway::in_process_client(&c, Mode::Serve).unwrap();
    let slow = "SELECT count(*) FROM range(100000) a, range(1000000) b WHERE a.range + b.range = -1";
    let create = |prefix: &str| admin::CreateTaskRequest {
        template: Some((core::TaskTemplate {
            r#type: "duckdb".into(),
            target: Some(core::task_template::Target::Sql(core::Sql { statement: slow.into(), dialect: 0 })),
            ..Default::default()
        }).into()),
        output_prefix: dir.path().join(prefix).display().to_string(),
        ..Default::default()
    };
    let get = |meta: Vec<u8>| admin::GetTaskRequest {
        task_category: Some(admin::TaskCategory { name: "duckdb".into(), version: 0 }),
        resource_meta: meta,
        ..Default::default()
    };
    let first = client.create_task(create("a")).await.unwrap();
    let second = client.create_task(create("b")).await.unwrap();
    let status = client.get_task(get(second.clone())).await.unwrap();
    assert_eq!(status.phase, Phase::Queued as i32, "{status:?}");
    assert!(status.message.contains("max_concurrency"), "{}", status.message);
    assert_eq!(client.get_task(get(first.clone())).await.unwrap().phase, Phase::Running as i32);

    let delete = |meta: Vec<u8>| admin::DeleteTaskRequest {
        task_category: Some(admin::TaskCategory { name: "duckdb".into(), version: 0 }),
        resource_meta: meta,
        ..Default::default()
    };
    client.delete_task(delete(first)).await.unwrap();
    let mut phase = Phase::Queued as i32;
    for _ in 0..200 {
        phase = client.get_task(get(second.clone())).await.unwrap().phase;
        if phase != Phase::Queued as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(phase, Phase::Running as i32, "the queued query starts once the slot frees");
    client.delete_task(delete(second)).await.unwrap();
}
