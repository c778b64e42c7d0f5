//! The shell agent through `InProcessClient` (the gateway's dispatch path), running real
//! processes.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{json, Value};
use tern_agent_api::core::primitive::Value as P;
use tern_agent_api::prelude::*;
use tern_agent_shell::{codes, ShellAgent, ShellSettings};
use tern_type_transformers::render::{json_to_struct, struct_to_json};

struct Harness {
    client: InProcessClient,
    store: LocalDataStore,
    store_dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

fn harness_on(store_dir: tempfile::TempDir) -> Harness {
    let scratch = tempfile::tempdir().unwrap();
    let config = ShellSettings {
        scratch_root: scratch.path().to_owned(),
        inherited_env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))],
        log_lines_in_memory: 1000,
    };
    let mut registry = AgentRegistry::new();
    registry.register_async(Arc::new(ShellAgent::new(config))).unwrap();
    let client = InProcessClient::new(Arc::new(registry), AgentServices::local(store_dir.path()));
    Harness { client, store: LocalDataStore::new(store_dir.path()), store_dir, scratch }
}

fn harness() -> Harness {
    harness_on(tempfile::tempdir().unwrap())
}

fn simple(t: core::SimpleType) -> core::LiteralType {
    core::LiteralType { r#type: Some(core::literal_type::Type::Simple(t as i32)), ..Default::default() }
}

fn file_type(format: &str) -> core::LiteralType {
    core::LiteralType {
        r#type: Some(core::literal_type::Type::Blob(core::BlobType { format: format.into(), dimensionality: 0 })),
        ..Default::default()
    }
}

struct Task {
    command: Vec<String>,
    env: Vec<(String, String)>,
    custom: Value,
    outputs: Vec<(String, core::LiteralType)>,
    timeout: Option<u64>,
    inputs: core::LiteralMap,
}

fn task(command: &[&str]) -> Task {
    Task {
        command: command.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        custom: json!({}),
        outputs: vec![],
        timeout: None,
        inputs: core::LiteralMap::default(),
    }
}

impl Task {
    fn custom(mut self, custom: Value) -> Self {
        self.custom = custom;
        self
    }

    fn output(mut self, name: &str, t: core::LiteralType) -> Self {
        self.outputs.push((name.into(), t));
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn input(mut self, name: &str, v: P) -> Self {
        let lit = core::Literal {
            value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
                value: Some(core::scalar::Value::Primitive(core::Primitive { value: Some(v) })),
            }))),
            ..Default::default()
        };
        self.inputs.literals.insert(name.into(), lit);
        self
    }

    fn metadata_timeout(mut self, secs: u64) -> Self {
        self.timeout = Some(secs);
        self
    }

    fn template(&self) -> core::TaskTemplate {
        core::TaskTemplate {
            r#type: "shell".into(),
            target: Some(core::task_template::Target::Container(core::Container {
                command: self.command.clone(),
                env: self.env.iter().map(|(k, v)| core::KeyValuePair { key: k.clone(), value: v.clone() }).collect(),
                ..Default::default()
            })),
            custom: Some(json_to_struct(self.custom.as_object().unwrap())),
            interface: Some(core::TypedInterface {
                inputs: None,
                outputs: Some(core::VariableMap {
                    variables: self
                        .outputs
                        .iter()
                        .map(|(n, t)| (n.clone(), core::Variable { r#type: Some(t.clone()), ..Default::default() }))
                        .collect(),
                }),
            }),
            metadata: self.timeout.map(|s| core::TaskMetadata {
                timeout: Some(prost_types::Duration { seconds: s as i64, nanos: 0 }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn execution(node: &str) -> admin::TaskExecutionMetadata {
    admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "sh".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier { name: "e1".into(), ..Default::default() }),
            }),
            retry_attempt: 0,
        }),
        ..Default::default()
    }
}

fn category() -> admin::TaskCategory {
    admin::TaskCategory { name: "shell".into(), version: 0 }
}

const PREFIX: &str = "runs/n0/0";

impl Harness {
    async fn create(&self, task: &Task, node: &str) -> Result<Vec<u8>, AgentError> {
        self.client
            .create_task(admin::CreateTaskRequest {
                inputs: Some(task.inputs.clone()),
                template: Some(task.template().into()),
                output_prefix: PREFIX.into(),
                task_execution_metadata: Some(execution(node).into()),
            })
            .await
    }

    async fn get(&self, meta: &[u8]) -> TaskStatus {
        let r = self
            .client
            .get_task(admin::GetTaskRequest { resource_meta: meta.to_vec(), task_category: Some(category()), ..Default::default() })
            .await
            .unwrap();
        TaskStatus::from_resource(r)
    }

    async fn wait(&self, meta: &[u8]) -> TaskStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.get(meta).await;
            if status.is_terminal() {
                return status;
            }
            assert!(Instant::now() < deadline, "task did not finish: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn run(&self, task: &Task, node: &str) -> TaskStatus {
        let meta = self.create(task, node).await.unwrap();
        self.wait(&meta).await
    }

    async fn logs(&self, meta: &[u8], lines: u64) -> Vec<admin::LogLine> {
        let parts = self
            .client
            .get_task_logs(admin::GetTaskLogsRequest {
                resource_meta: meta.to_vec(),
                lines,
                task_category: Some(category()),
                ..Default::default()
            })
            .await
            .unwrap();
        parts
            .into_iter()
            .filter_map(|p| match p.part {
                Some(admin::get_task_logs_response::Part::Body(b)) => Some(b.structured_lines),
                _ => None,
            })
            .flatten()
            .collect()
    }

    async fn delete(&self, meta: &[u8]) {
        self.client
            .delete_task(admin::DeleteTaskRequest { resource_meta: meta.to_vec(), task_category: Some(category()), ..Default::default() })
            .await
            .unwrap();
    }

    fn scratch_is_empty(&self) -> bool {
        std::fs::read_dir(self.scratch.path()).unwrap().next().is_none()
    }
}

fn output<'a>(status: &'a TaskStatus, name: &str) -> &'a core::scalar::Value {
    let lit = &status.outputs.as_ref().expect("outputs").literals[name];
    match lit.value.as_ref() {
        Some(core::literal::Value::Scalar(s)) => s.value.as_ref().expect("scalar value"),
        other => panic!("{name} is not a scalar: {other:?}"),
    }
}

fn primitive(status: &TaskStatus, name: &str) -> P {
    match output(status, name) {
        core::scalar::Value::Primitive(p) => p.value.clone().unwrap(),
        other => panic!("{name} is not a primitive: {other:?}"),
    }
}

/// True once the process is gone (or a zombie waiting to be reaped).
async fn process_gone(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).unwrap().trim().to_owned();
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    for _ in 0..60 {
        match std::fs::read_to_string(&stat) {
            Err(_) => return true,
            Ok(s) if s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) => return true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

async fn wait_for_file(path: &Path) {
    for _ in 0..100 {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn templated_args_and_env_reach_the_program() {
    let h = harness();
    let t = task(&["sh", "-c", "printf '%s-%s|%s|%s' \"$1\" \"$GREETING\" \"$(pwd)\" \"$2\"", "argv0", "{{.inputs.n}}", "{{ .outputPrefix }}"])
        .env("GREETING", "{{.inputs.greeting}} from {{.workdir}}")
        .input("n", P::Integer(3))
        .input("greeting", P::StringValue("hello".into()))
        .custom(json!({"outputs": {"text": {"from": "stdout"}}}))
        .output("text", simple(core::SimpleType::String));
    let status = h.run(&t, "args").await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let P::StringValue(text) = primitive(&status, "text") else { panic!() };
    let parts: Vec<&str> = text.split('|').collect();
    let workdir = parts[1];
    assert!(parts[0].starts_with("3-hello from /"), "{text}");
    assert!(parts[0].ends_with(workdir), "{{{{.workdir}}}} is where the command runs: {text}");
    assert!(workdir.starts_with(h.scratch.path().to_str().unwrap()), "{text}");
    assert_eq!(parts[2], PREFIX);
    assert!(h.scratch_is_empty(), "the fresh working directory is removed after the run");
}

#[tokio::test]
async fn file_struct_and_integer_outputs_are_typed_and_stored() {
    let h = harness();
    let t = task(&["sh", "-c", "mkdir -p res && printf 'a,b\\n1,2\\n' > res/data.csv && echo '{\"k\": 1, \"s\": \"x\"}' > meta.json && echo ' 42 '"])
        .custom(json!({"outputs": {
            "data": {"from": "file", "path": "res/data.csv"},
            "meta": {"from": "file", "path": "meta.json"},
            "n": {"from": "stdout"},
        }}))
        .output("data", file_type("csv"))
        .output("meta", simple(core::SimpleType::Struct))
        .output("n", simple(core::SimpleType::Integer));
    let status = h.run(&t, "files").await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");

    assert_eq!(primitive(&status, "n"), P::Integer(42));
    let core::scalar::Value::Generic(meta) = output(&status, "meta") else { panic!() };
    assert_eq!(Value::Object(struct_to_json(meta)), json!({"k": 1.0, "s": "x"}));
    let core::scalar::Value::Blob(blob) = output(&status, "data") else { panic!() };
    assert_eq!(blob.uri, format!("{PREFIX}/data/data.csv"));
    assert_eq!(blob.metadata.as_ref().unwrap().r#type.as_ref().unwrap().format, "csv");
    assert_eq!(&h.store.read(&blob.uri).await.unwrap()[..], b"a,b\n1,2\n");

    let stored = h.store.read(&format!("{PREFIX}/outputs.pb")).await.unwrap();
    assert_eq!(Some(core::LiteralMap::decode(stored).unwrap()), status.outputs);
    assert_eq!(&h.store.read(&format!("{PREFIX}/logs/stdout.txt")).await.unwrap()[..], b" 42 \n");
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let h = harness();
    let work = tempfile::tempdir().unwrap();
    // metadata.timeout (1 s) is smaller than timeout_sec (30 s): it wins.
    let t = task(&["sh", "-c", "sleep 30 & echo $! > child.pid; echo $$ > shell.pid; wait"])
        .custom(json!({"timeout_sec": 30, "workdir": work.path().to_str().unwrap()}))
        .metadata_timeout(1);
    let started = Instant::now();
    let status = h.run(&t, "timeout").await;
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    let error = status.error.as_ref().unwrap();
    assert_eq!(error.code, codes::TIMED_OUT);
    assert_eq!(error.origin, ErrorOrigin::User);
    assert!(!error.is_retryable());
    assert!(status.message.contains("timed out after 1 s"), "{}", status.message);
    assert!(process_gone(&work.path().join("shell.pid")).await, "the shell survived");
    assert!(process_gone(&work.path().join("child.pid")).await, "the background child survived");
    assert!(work.path().exists(), "a given workdir is never deleted");
}

#[tokio::test]
async fn nonzero_exit_reports_the_code_and_the_end_of_stderr() {
    let h = harness();
    let t = task(&["sh", "-c", "for i in $(seq 1 30); do echo \"line$i\" >&2; done; exit 3"]);
    let status = h.run(&t, "exit").await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(status.error.as_ref().unwrap().code, codes::COMMAND_FAILED);
    assert_eq!(status.error.as_ref().unwrap().origin, ErrorOrigin::User);
    let m = &status.message;
    assert!(m.contains("exit code 3"), "{m}");
    assert!(m.contains("line11") && m.contains("line30") && !m.contains("line10"), "{m}");
}

#[tokio::test]
async fn a_missing_program_fails_naming_it() {
    let h = harness();
    let status = h.run(&task(&["tern-no-such-program-xyz", "--flag"]), "missing").await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(status.error.as_ref().unwrap().code, codes::CANNOT_START);
    assert!(status.message.contains("\"tern-no-such-program-xyz\" not found"), "{}", status.message);
}

#[tokio::test]
async fn unparseable_output_fails_naming_it() {
    let h = harness();
    let t = task(&["echo", "abc"])
        .custom(json!({"outputs": {"n": {"from": "stdout"}}}))
        .output("n", simple(core::SimpleType::Integer));
    let status = h.run(&t, "badout").await;
    assert_eq!(status.phase, Phase::Failed, "{status:?}");
    assert_eq!(status.error.as_ref().unwrap().code, codes::BAD_OUTPUT);
    assert!(status.message.contains("\"n\"") && status.message.contains("\"abc\""), "{}", status.message);
}

#[tokio::test]
async fn logs_are_live_while_running_and_stored_afterwards() {
    let h = harness();
    let running = task(&["sh", "-c", "echo first; echo oops >&2; sleep 30"]);
    let meta = h.create(&running, "logs-live").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = h.logs(&meta, 0).await;
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        if messages.contains(&"first") && messages.contains(&"[stderr] oops") {
            assert!(lines.iter().all(|l| l.originator == admin::LogLineOriginator::User as i32));
            assert!(lines.iter().all(|l| l.timestamp.is_some()));
            break;
        }
        assert!(Instant::now() < deadline, "live logs never showed up: {messages:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.delete(&meta).await;

    let done = task(&["sh", "-c", "for i in 1 2 3 4 5; do echo out$i; done; echo err >&2"]);
    let meta = h.create(&done, "logs-stored").await.unwrap();
    assert_eq!(h.wait(&meta).await.phase, Phase::Succeeded);
    let last_two: Vec<String> = h.logs(&meta, 2).await.into_iter().map(|l| l.message).collect();
    assert_eq!(last_two, ["out5", "[stderr] err"]);
    assert_eq!(h.logs(&meta, 0).await.len(), 6);
}

#[tokio::test]
async fn delete_aborts_and_kills_the_process_group() {
    let h = harness();
    let work = tempfile::tempdir().unwrap();
    let t = task(&["sh", "-c", "sleep 30 & echo $! > child.pid; echo $$ > shell.pid; wait"])
        .custom(json!({"workdir": work.path().to_str().unwrap()}));
    let meta = h.create(&t, "delete").await.unwrap();
    wait_for_file(&work.path().join("shell.pid")).await;
    assert_eq!(h.get(&meta).await.phase, Phase::Running);
    h.delete(&meta).await;
    assert_eq!(h.get(&meta).await.phase, Phase::Aborted);
    assert!(process_gone(&work.path().join("shell.pid")).await, "the shell survived");
    assert!(process_gone(&work.path().join("child.pid")).await, "the background child survived");
    // Deleting again, or a finished task, is fine.
    h.delete(&meta).await;
}

#[tokio::test]
async fn a_repeated_create_does_not_start_a_second_process() {
    let h = harness();
    let work = tempfile::tempdir().unwrap();
    let t = task(&["sh", "-c", "echo run >> runs.txt; sleep 0.5"]).custom(json!({"workdir": work.path().to_str().unwrap()}));
    let first = h.create(&t, "idem").await.unwrap();
    let second = h.create(&t, "idem").await.unwrap();
    assert_eq!(first, second);
    assert_eq!(h.wait(&first).await.phase, Phase::Succeeded);
    let third = h.create(&t, "idem").await.unwrap();
    assert_eq!(first, third);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(work.path().join("runs.txt")).unwrap(), "run\n");
    let other = h.create(&t, "idem-other-node").await.unwrap();
    assert_ne!(first, other);
}

#[tokio::test]
async fn a_repeated_create_after_a_restart_starts_nothing_and_reports_the_job_lost() {
    let first = harness();
    let work = tempfile::tempdir().unwrap();
    let t = task(&["sh", "-c", "echo run >> runs.txt; sleep 2"]).custom(json!({"workdir": work.path().to_str().unwrap()}));
    let meta = first.create(&t, "idem-restart").await.unwrap();
    wait_for_file(&work.path().join("runs.txt")).await;
    // A new agent process over the same data store (the first one's job is gone with it, for the new one).
    let Harness { store_dir, .. } = first;
    let second = harness_on(store_dir);
    let again = second.create(&t, "idem-restart").await.unwrap();
    assert_eq!(again, meta, "the same handle, byte for byte");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_to_string(work.path().join("runs.txt")).unwrap(), "run\n", "the command ran once");
    let status = second.get(&again).await;
    assert_eq!(status.phase, Phase::RetryableFailed, "{status:?}");
    assert!(status.message.contains("job lost"), "{}", status.message);
    // Another attempt is a new job.
    let other = second.create(&t, "idem-restart-retry").await.unwrap();
    assert_ne!(other, meta);
    assert_eq!(second.wait(&other).await.phase, Phase::Succeeded);
    assert_eq!(std::fs::read_to_string(work.path().join("runs.txt")).unwrap(), "run\nrun\n");
}

#[tokio::test]
async fn template_mistakes_are_invalid_arguments_naming_them() {
    let h = harness();
    let cases = [
        (task(&["echo", "{{.rawOutputDataPrefix}}"]), codes::UNKNOWN_PLACEHOLDER, "{{.rawOutputDataPrefix}}"),
        (task(&["echo", "{{.inputs.missing}}"]), codes::UNKNOWN_PLACEHOLDER, "\"missing\""),
        (task(&[]), codes::BAD_TEMPLATE, "program"),
        (task(&["echo"]).output("n", simple(core::SimpleType::Integer)), codes::BAD_TEMPLATE, "\"n\""),
    ];
    for (t, code, needle) in cases {
        let err = h.create(&t, "bad").await.unwrap_err();
        assert_eq!(err.code, code, "{err}");
        assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
        assert!(err.message.contains(needle), "{err}");
    }
    assert!(h.scratch_is_empty(), "a refused create leaves nothing behind");
}

#[tokio::test]
async fn after_a_restart_stored_outputs_are_found_and_missing_ones_are_a_retryable_loss() {
    let first = harness();
    let t = task(&["echo", "7"]).custom(json!({"outputs": {"n": {"from": "stdout"}}})).output("n", simple(core::SimpleType::Integer));
    let meta = first.create(&t, "restart").await.unwrap();
    let done = first.wait(&meta).await;
    assert_eq!(done.phase, Phase::Succeeded);

    // A new agent process over the same data store.
    let Harness { store_dir, .. } = first;
    let second = harness_on(store_dir);
    let status = second.get(&meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(status.outputs, done.outputs);

    let lost = ResourceMeta::encode(&json!({"key": "k", "output_prefix": "runs/never/0"})).unwrap();
    let status = second.get(lost.as_bytes()).await;
    assert_eq!(status.phase, Phase::RetryableFailed, "{status:?}");
    assert!(status.message.contains("job lost"), "{}", status.message);
    assert_eq!(status.error.as_ref().unwrap().code, codes::JOB_LOST);
    assert!(status.error.as_ref().unwrap().is_retryable());
    drop(second.store_dir);
}
