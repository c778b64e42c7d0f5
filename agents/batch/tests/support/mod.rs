//! The real emulator for the AWS Batch agent's tests: moto 5.2.5's server with Batch in its
//! docker-less mode, started on a free port by `tests/interop/peers/moto_batch_peer.py`
//! (moto's own server, plus the test hooks moto lacks: jobs left in a chosen state, and
//! TerminateJob stopping a job that has not finished), with a job queue and the S3 bucket
//! `tern-batch` set up. Stopped when dropped.
//!
//! moto is found and started by type-transformers' `tests/support/moto.rs` (shared with the
//! S3 data store's tests). Without it a test prints why and passes, except under `CI=true`.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_batch::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_batch::types::KeyValuesPair;
use serde_json::json;
use tern_agent_api::core;
use tern_agent_batch::BatchConfig;

#[path = "../../../../type-transformers/tests/support/moto.rs"]
pub mod moto;

/// The job queue the peer sets up.
pub const QUEUE: &str = "tern-q";
/// The S3 bucket the peer sets up.
pub const BUCKET: &str = "tern-batch";

pub struct BatchPeer {
    pub moto: moto::Moto,
    pub dir: tempfile::TempDir,
    pub batch: aws_sdk_batch::Client,
}

fn peer_script() -> PathBuf {
    let rel = "tests/interop/peers/moto_batch_peer.py";
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start.ancestors().map(|d| d.join(rel)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{rel} not found above {}", start.display()))
}

/// A Batch client of the test itself (counting jobs, reading what was submitted).
pub fn batch_client(endpoint: &str) -> aws_sdk_batch::Client {
    let conf = aws_sdk_batch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(tern_agent_batch::client::https())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tern-test"))
        .build();
    aws_sdk_batch::Client::from_conf(conf)
}

/// Starts moto with the Batch hooks, or explains why not: `None` means skip (a failure under `CI=true`).
pub async fn start(test: &str) -> Option<BatchPeer> {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let drive = dir.path().join("drive");
    let env = [("TERN_MOTO_READY_FILE", ready.clone().into_os_string()), ("TERN_MOTO_DRIVE_FILE", drive.into_os_string())];
    let script = peer_script();
    let moto = tokio::task::block_in_place(|| moto::start_with_args(test, Some(&script), &["--setup", QUEUE], &env))?;
    let started = Instant::now();
    while !ready.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "{test}: the moto peer did not set up within 60 s:\n{}", moto.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batch = batch_client(&moto.endpoint);
    std::fs::write(dir.path().join("access_key_id"), "test\n").unwrap();
    std::fs::write(dir.path().join("secret_access_key"), "tern-secret-access-key-value\n").unwrap();
    Some(BatchPeer { moto, dir, batch })
}

impl BatchPeer {
    /// The agent's section for this peer: credentials as `file:` references.
    pub fn config(&self) -> BatchConfig {
        BatchConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(self.moto.endpoint.clone()),
            access_key_id: Some(format!("file:{}", self.dir.path().join("access_key_id").display()).parse().unwrap()),
            secret_access_key: Some(format!("file:{}", self.dir.path().join("secret_access_key").display()).parse().unwrap()),
            job_queue: Some(QUEUE.into()),
            request_timeout: Duration::from_secs(10),
            ..Default::default()
        }
    }

    /// The same as a `[agents.batch]` section.
    pub fn config_toml(&self) -> String {
        format!(
            "[agents.batch]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\naccess_key_id = \"file:{}\"\nsecret_access_key = \"file:{}\"\njob_queue = \"{QUEUE}\"\n",
            self.moto.endpoint,
            self.dir.path().join("access_key_id").display(),
            self.dir.path().join("secret_access_key").display()
        )
    }

    pub fn remote(&self) -> Remote {
        Remote { batch: self.batch.clone(), drive: Arc::new(self.dir.path().join("drive")) }
    }
}

/// What closures handed to the conformance kit need.
#[derive(Clone)]
pub struct Remote {
    pub batch: aws_sdk_batch::Client,
    drive: Arc<PathBuf>,
}

impl Remote {
    /// Every job (not array children) in the queue, of any status: the real count of submissions.
    pub async fn jobs(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .batch
                .list_jobs()
                .job_queue(QUEUE)
                .filters(KeyValuesPair::builder().name("JOB_NAME").values("*").build())
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for j in page.job_summary_list() {
                let (id, name) = (j.job_id().unwrap_or_default(), j.job_name().unwrap_or_default());
                if !id.contains(':') {
                    out.push((id.to_owned(), name.to_owned(), j.status().map(|s| s.as_str().to_owned()).unwrap_or_default()));
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        out
    }

    pub async fn count_jobs(&self) -> u64 {
        self.jobs().await.len() as u64
    }

    /// Jobs named `name`.
    pub async fn count_named(&self, name: &str) -> usize {
        self.jobs().await.iter().filter(|(_, n, _)| n == name).count()
    }

    /// From now on every submitted job is left in `state` (`None`: moto's own behaviour, SUCCEEDED).
    pub fn drive(&self, state: Option<&str>) {
        std::fs::write(self.drive.as_path(), state.unwrap_or("")).unwrap();
    }
}

/// An `aws-batch` template as flytekitplugins-awsbatch 1.16.31 serializes it, with rendered args.
/// `state`: the peer leaves the job in that state (`TERN_MOTO_STATE`).
pub fn template(args: &[&str], state: Option<&str>) -> core::TaskTemplate {
    let custom = json!({"platformCapabilities": "EC2", "tags": {"team": "tern"}, "parameters": {"p": "1"}});
    let mut env = vec![core::KeyValuePair { key: "TERN_CONFORMANCE".into(), value: "1".into() }];
    if let Some(s) = state {
        env.push(core::KeyValuePair { key: "TERN_MOTO_STATE".into(), value: s.into() });
    }
    core::TaskTemplate {
        r#type: "aws-batch".into(),
        id: Some(core::Identifier { name: "tests.batch_task".into(), ..Default::default() }),
        custom: Some(tern_type_transformers::render::json_to_struct(custom.as_object().expect("an object"))),
        config: [("platformCapabilities".to_owned(), "EC2".to_owned())].into_iter().collect(),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
            ..Default::default()
        })),
        metadata: Some(core::TaskMetadata {
            retries: Some(core::RetryStrategy { retries: 2 }),
            timeout: Some(prost_types::Duration { seconds: 600, nanos: 0 }),
            ..Default::default()
        }),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

/// The conformance kit's case against the moto peer, shared by the in-process run
/// (agents/batch/tests/conformance.rs) and the gRPC one (gateway/tests/batch_conformance.rs):
/// jobs counted at moto, states driven with the peer's hook. The caller binds the agent.
pub fn conformance_case(peer: &BatchPeer) -> tern_agent_api::testkit::Case {
    use tern_agent_api::core::LiteralMap;
    let (counter, driver) = (peer.remote(), peer.remote());
    tern_agent_api::testkit::Case::new(template(&["echo", "tern-ok"], None), LiteralMap::default())
        // The container "exits 1": FAILED, "Essential container in task exited" → FAILED with TERN-V008.
        .failing(template(&["false"], Some("FAILED")), LiteralMap::default())
        // Stays RUNNING until TerminateJob stops it (FAILED with this agent's reason → ABORTED).
        .long_running(template(&["sleep", "3600"], Some("RUNNING")), LiteralMap::default())
        .count_jobs(move || {
            let c = counter.clone();
            async move { c.count_jobs().await }
        })
        .drive_state(move |state| {
            let d = driver.clone();
            async move { d.drive(Some(&state)) }
        })
        .poll_interval(Duration::from_millis(100))
        .settle(Duration::from_millis(300))
        .poll_timeout(Duration::from_secs(30))
}
