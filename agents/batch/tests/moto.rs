//! The AWS Batch agent against moto's server (Batch docker-less, S3 real): idempotency across
//! a restarted agent counted at moto, array jobs with per-child status, termination, logs,
//! job definitions registered once per (image, role, platform), what SubmitJob carries, and
//! the S3 data flow (inputs written under the prefix, outputs read from where flytekit's
//! entrypoint writes them: moto executes nothing, so the test writes them as the container would).
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tern_agent_api::prelude::*;
use tern_agent_api::secrets::StaticSecrets;
use tern_agent_batch::{BatchAgent, Handle};
use tern_type_transformers::s3::S3Config;
use tern_type_transformers::DataStores;

fn execution(run: &str, node: &str, attempt: u32) -> Box<admin::TaskExecutionMetadata> {
    Box::new(admin::TaskExecutionMetadata {
        task_execution_id: Some(core::TaskExecutionIdentifier {
            task_id: Some(core::Identifier { name: "tests.batch_task".into(), version: "1".into(), ..Default::default() }),
            node_execution_id: Some(core::NodeExecutionIdentifier {
                node_id: node.into(),
                execution_id: Some(core::WorkflowExecutionIdentifier {
                    project: "p".into(),
                    domain: "d".into(),
                    name: run.into(),
                    org: String::new(),
                }),
            }),
            retry_attempt: attempt,
        }),
        ..Default::default()
    })
}

fn request(template: core::TaskTemplate, inputs: core::LiteralMap) -> TaskRequest {
    TaskRequest { template: Box::new(template), inputs }
}

async fn wait_terminal(agent: &BatchAgent, ctx: &TaskContext, meta: &ResourceMeta) -> TaskStatus {
    for _ in 0..100 {
        let s = agent.get(ctx, meta).await.unwrap();
        if s.is_terminal() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the job did not finish");
}

fn int_literal(v: i64) -> core::Literal {
    tern_type_transformers::literals::primitive(core::primitive::Value::Integer(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_after_a_restart_attaches_and_arrays_report_their_children() {
    let Some(peer) = support::start("a_repeated_create_after_a_restart_attaches_and_arrays_report_their_children").await else { return };
    let remote = peer.remote();
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let ctx = services.task_context("runs/r1/n0/0", Some(execution("r1", "n0", 0)), None);
    let name = BatchAgent::job_name(&ctx);

    // Running, so the second create cannot be mistaken for a finished job's replay.
    let first_agent = BatchAgent::new(peer.config(), &services);
    let first = first_agent.create(&ctx, request(support::template(&["sleep", "60"], Some("RUNNING")), Default::default())).await.unwrap();
    drop(first_agent);
    // A new agent (a restarted gateway: no cache, no lock, no memory of the first).
    let second_agent = BatchAgent::new(peer.config(), &services);
    let second = second_agent.create(&ctx, request(support::template(&["sleep", "60"], Some("RUNNING")), Default::default())).await.unwrap();
    let (a, b): (Handle, Handle) = (first.decode().unwrap(), second.decode().unwrap());
    assert_eq!(a.job_id, b.job_id, "the repeated create attached to the first job");
    assert_eq!(remote.count_named(&name).await, 1, "one job at moto for the attempt");
    assert_eq!(second_agent.get(&ctx, &second).await.unwrap().phase, Phase::Running);

    // Two at once on one agent: still one job.
    let ctx2 = services.task_context("runs/r1/n1/0", Some(execution("r1", "n1", 0)), None);
    let t = support::template(&["echo", "x"], None);
    let (x, y) = tokio::join!(second_agent.create(&ctx2, request(t.clone(), Default::default())), second_agent.create(&ctx2, request(t, Default::default())));
    assert_eq!(x.unwrap().decode::<Handle>().unwrap().job_id, y.unwrap().decode::<Handle>().unwrap().job_id);
    assert_eq!(remote.count_named(&BatchAgent::job_name(&ctx2)).await, 1);
    // The next retry attempt is another job.
    let ctx3 = services.task_context("runs/r1/n1/1", Some(execution("r1", "n1", 1)), None);
    second_agent.create(&ctx3, request(support::template(&["echo", "x"], None), Default::default())).await.unwrap();
    assert_eq!(remote.count_named(&BatchAgent::job_name(&ctx3)).await, 1);

    // An array job (map-style work): the parent and each child reported.
    let mut array = support::template(&["echo", "child"], None);
    array.custom = Some(tern_type_transformers::render::json_to_struct(
        serde_json::json!({"platformCapabilities": "EC2", "arrayProperties": {"size": 3.0}}).as_object().unwrap(),
    ));
    let ctx4 = services.task_context("runs/r1/n2/0", Some(execution("r1", "n2", 0)), None);
    let meta = second_agent.create(&ctx4, request(array, Default::default())).await.unwrap();
    let handle: Handle = meta.decode().unwrap();
    assert_eq!(handle.array_size, Some(3));
    let status = wait_terminal(&second_agent, &ctx4, &meta).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    let info = tern_type_transformers::render::struct_to_json(status.custom_info.as_ref().unwrap());
    let children = info["array"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 3, "{info:?}");
    for (i, c) in children.iter().enumerate() {
        assert_eq!(c["index"], serde_json::json!(i as f64), "{c:?}");
        assert_eq!(c["status"], "SUCCEEDED");
    }
    assert_eq!(info["array"]["status_summary"]["SUCCEEDED"], serde_json::json!(3.0));
    assert_eq!(remote.count_named(&BatchAgent::job_name(&ctx4)).await, 1, "children are not counted as jobs");
    // The child index variable flytekit's map entrypoint reads.
    let detail = peer.batch.describe_jobs().jobs(&handle.job_id).send().await.unwrap();
    let env = detail.jobs()[0].container().unwrap().environment().to_vec();
    assert!(env.iter().any(|kv| kv.name() == Some("BATCH_JOB_ARRAY_INDEX_VAR_NAME") && kv.value() == Some("AWS_BATCH_JOB_ARRAY_INDEX")), "{env:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_logs_definitions_and_what_submit_carries() {
    let Some(peer) = support::start("terminate_logs_definitions_and_what_submit_carries").await else { return };
    let store = tempfile::tempdir().unwrap();
    let services = AgentServices::local(store.path());
    let agent = BatchAgent::new(peer.config(), &services);

    // Delete terminates a running job: ABORTED, and deleting again is fine.
    let ctx = services.task_context("runs/r2/n0/0", Some(execution("r2", "n0", 0)), None);
    let meta = agent.create(&ctx, request(support::template(&["sleep", "3600"], Some("RUNNING")), Default::default())).await.unwrap();
    assert_eq!(agent.get(&ctx, &meta).await.unwrap().phase, Phase::Running);
    agent.delete(&ctx, &meta).await.unwrap();
    let s = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(s.phase, Phase::Aborted, "{s:?}");
    agent.delete(&ctx, &meta).await.unwrap();
    let handle: Handle = meta.decode().unwrap();
    let job = &peer.batch.describe_jobs().jobs(&handle.job_id).send().await.unwrap().jobs()[0].clone();
    assert_eq!(job.status().map(|s| s.as_str()), Some("FAILED"));
    assert!(job.status_reason().unwrap_or_default().starts_with("tern: DeleteTask"), "{job:?}");

    // What SubmitJob carried: retries and timeout from the task metadata, tags with the key,
    // flytekit's parameters, the rendered command.
    assert_eq!(job.timeout().and_then(|t| t.attempt_duration_seconds()), Some(600));
    let tags = job.tags().cloned().unwrap_or_default();
    assert_eq!(tags.get("tern:idempotency-key").map(String::as_str), ctx.idempotency_key.as_ref().map(|k| k.as_str()));
    assert_eq!(tags.get("team").map(String::as_str), Some("tern"));
    assert_eq!(job.parameters().and_then(|p| p.get("p")).map(String::as_str), Some("1"));
    assert_eq!(job.container().unwrap().command(), ["sleep", "3600"]);

    // Logs: the job's CloudWatch stream, in pages.
    let all = agent.logs(&ctx, &meta, 0, "").await.unwrap();
    let text: Vec<&str> = all.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[1].contains("sleep 3600"), "{text:?}");
    let page = agent.logs(&ctx, &meta, 2, "").await.unwrap();
    assert_eq!(page.lines.len(), 2);
    assert!(!page.next_token.is_empty());
    let rest = agent.logs(&ctx, &meta, 2, &page.next_token).await.unwrap();
    assert_eq!(rest.lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), [text[2]]);
    // The log links: the Batch console and the CloudWatch stream.
    let names: Vec<String> = s.log_links.iter().map(|l| l.name.clone()).collect();
    assert_eq!(names, ["AWS Batch Console", "CloudWatch Logs"]);

    // One job definition per (image, role, platform), found again by a new agent.
    let definitions = |peer: &support::BatchPeer| {
        let batch = peer.batch.clone();
        async move {
            let out = batch.describe_job_definitions().status("ACTIVE").send().await.unwrap();
            let mut names: Vec<String> = out.job_definitions().iter().filter_map(|d| d.job_definition_name().map(str::to_owned)).collect();
            names.sort();
            names
        }
    };
    let before = definitions(&peer).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let restarted = BatchAgent::new(peer.config(), &services);
    let ctx = services.task_context("runs/r2/n1/0", Some(execution("r2", "n1", 0)), None);
    restarted.create(&ctx, request(support::template(&["echo", "1"], None), Default::default())).await.unwrap();
    assert_eq!(definitions(&peer).await, before, "the same image reuses the definition");
    let mut other = support::template(&["echo", "2"], None);
    if let Some(core::task_template::Target::Container(c)) = other.target.as_mut() {
        c.image = "python:3.12-slim".into();
    }
    let ctx = services.task_context("runs/r2/n2/0", Some(execution("r2", "n2", 0)), None);
    restarted.create(&ctx, request(other, Default::default())).await.unwrap();
    assert_eq!(definitions(&peer).await.len(), 2);

    // A queue the section does not allow is refused before anything is sent.
    let mut elsewhere = support::template(&["echo", "3"], None);
    elsewhere.config.insert("dynamic_queue".into(), "someone-elses-queue".into());
    let ctx = services.task_context("runs/r2/n3/0", Some(execution("r2", "n3", 0)), None);
    let e = restarted.create(&ctx, request(elsewhere, Default::default())).await.unwrap_err();
    assert_eq!(e.code, tern_agent_batch::codes::NO_QUEUE);
    // A handle of a job nobody submitted: NOT_FOUND, not a live job.
    let ghost = ResourceMeta::encode(&Handle {
        job_id: "00000000-0000-4000-8000-000000000000".into(),
        job_name: "tern-x".into(),
        queue: support::QUEUE.into(),
        array_size: None,
        outputs: false,
    })
    .unwrap();
    assert_eq!(restarted.get(&ctx, &ghost).await.unwrap_err().code, tern_agent_batch::codes::JOB_NOT_FOUND);
    // No secret in handles or messages.
    let shown = format!("{:?}{:?}", String::from_utf8_lossy(meta.as_bytes()), s);
    assert!(!shown.contains("tern-secret-access-key-value"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_data_flow_inputs_written_outputs_read() {
    let Some(peer) = support::start("s3_data_flow_inputs_written_outputs_read").await else { return };
    let local = tempfile::tempdir().unwrap();
    let stores = Arc::new(DataStores::new(local.path()).with_s3(S3Config::emulator(&peer.moto.endpoint)));
    let services = AgentServices::new(stores.clone(), Arc::new(StaticSecrets::new())).unwrap();
    let agent = BatchAgent::new(peer.config(), &services);

    let prefix = format!("s3://{}/runs/r3/n0/0", support::BUCKET);
    let inputs_uri = format!("s3://{}/runs/r3/n0/inputs.pb", support::BUCKET);
    // As flytekitplugins-awsbatch writes the args, rendered by `tern run`/propeller.
    let args = [
        "pyflyte-execute", "--inputs", &inputs_uri, "--output-prefix", &format!("{prefix}/0"),
        "--raw-output-data-prefix", &format!("s3://{}/raw/r3", support::BUCKET),
        "--resolver", "flytekit.core.python_auto_container.default_task_resolver", "--",
        "task-module", "tests.wf", "task-name", "double",
    ];
    let mut template = support::template(&args, None);
    let int = tern_type_transformers::types::simple(core::SimpleType::Integer);
    let var = |t: &core::LiteralType| core::Variable { r#type: Some(t.clone()), description: String::new(), ..Default::default() };
    template.interface = Some(core::TypedInterface {
        inputs: Some(core::VariableMap { variables: [("x".to_owned(), var(&int))].into_iter().collect() }),
        outputs: Some(core::VariableMap { variables: [("o0".to_owned(), var(&int))].into_iter().collect() }),
    });
    let inputs = core::LiteralMap { literals: [("x".to_owned(), int_literal(21))].into_iter().collect() };

    let ctx = services.task_context(prefix.clone(), Some(execution("r3", "n0", 0)), None);
    let meta = agent.create(&ctx, request(template.clone(), inputs.clone())).await.unwrap();
    // The inputs are where the container reads them (the --inputs argument).
    let written = core::LiteralMap::decode(stores.read(&inputs_uri).await.unwrap().as_ref()).unwrap();
    assert_eq!(written, inputs);
    // moto "ran" the job without executing it: no outputs yet → the job's success is not enough.
    let s = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(s.phase, Phase::Failed, "{s:?}");
    assert_eq!(s.error.as_ref().unwrap().code, tern_agent_batch::codes::OUTPUTS_MISSING);
    // Write outputs.pb where pyflyte-execute --output-prefix <prefix>/0 writes it, as the container would.
    let outputs = core::LiteralMap { literals: [("o0".to_owned(), int_literal(42))].into_iter().collect() };
    stores.write(&format!("{prefix}/0/outputs.pb"), outputs.encode_to_vec().into()).await.unwrap();
    let s = agent.get(&ctx, &meta).await.unwrap();
    assert_eq!(s.phase, Phase::Succeeded, "{s:?}");
    assert_eq!(s.outputs, Some(outputs));

    // Inputs already written (by propeller or `tern run`) are left as they are.
    let other = core::LiteralMap { literals: [("x".to_owned(), int_literal(1))].into_iter().collect() };
    let ctx = services.task_context(prefix.clone(), Some(execution("r3", "n0", 1)), None);
    agent.create(&ctx, request(template, other)).await.unwrap();
    let kept = core::LiteralMap::decode(stores.read(&inputs_uri).await.unwrap().as_ref()).unwrap();
    assert_eq!(kept, inputs);
}
