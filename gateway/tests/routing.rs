//! Routing across deployments and regions: gateways served on loopback route to each
//! other by task type, project, domain and labels; creates fail over between regions;
//! polls reach the job's owner; limits refuse with a retry hint.
mod support;

use std::time::Duration;

use support::{create, delete, execution, get, serve, Served};
use tern_agent_api::error::ErrorClass;
use tern_agent_api::grpc_client::{ClientOptions, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_gateway::routing::envelope::{Owner, Sealer};
use tern_type_transformers::FlyteType;

fn client(addr: &str) -> GrpcAgentClient {
    GrpcAgentClient::connect_lazy_with(addr, ClientOptions::default()).unwrap()
}

fn owner(handle: &[u8]) -> Owner {
    Sealer::default().open(handle).unwrap().expect("an enveloped handle").owner
}

fn remote_url(handle: &[u8]) -> String {
    match owner(handle) {
        Owner::Remote { endpoint, .. } => endpoint,
        Owner::Local => "local".into(),
    }
}

fn sleep_create(project: &str, domain: &str, node: &str, seconds: f64) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        template: Some((core::TaskTemplate { r#type: "sleep".into(), ..Default::default() }).into()),
        inputs: Some(core::LiteralMap { literals: [("duration".to_owned(), seconds.to_literal().unwrap())].into() }),
        output_prefix: "s3://b/o".into(),
        task_execution_metadata: Some(execution(project, domain, node, 0).into()),
    }
}

/// Region gateways `eu` (two endpoints) and `us`, and a front gateway routing to them.
struct Topology {
    eu1: Served,
    eu2: Served,
    us: Served,
    front: Served,
}

async fn topology(extra_routes: &str) -> Topology {
    let eu1 = serve("[agents.echo]\n[agents.sleep]\n", &[]).await;
    let eu2 = serve("[agents.echo]\n[agents.sleep]\n", &[]).await;
    let us = serve("[agents.echo]\n[agents.sleep]\n", &[]).await;
    let text = format!(
        "[server]\nregion = \"eu-west-1\"\n[agents.echo]\n\
         {extra_routes}\
         [[routes]]\nname = \"ml\"\nproject = \"ml\"\ntarget = \"group:compute\"\n\
         [[routes]]\nname = \"prod-sleep\"\ntask_type = \"sleep\"\ndomain = \"production\"\ntarget = \"group:compute\"\n\
         [[routes]]\nname = \"gpu-label\"\nlabels = {{ accelerator = \"gpu\" }}\ntarget = \"group:us-only\"\n\
         [groups.compute]\nendpoints = [\n\
           {{ url = \"http://{}\", region = \"us-east-1\" }},\n\
           {{ url = \"http://{}\", region = \"eu-west-1\" }},\n\
           {{ url = \"http://{}\", region = \"eu-west-1\" }},\n]\n\
         health_check_interval = \"200ms\"\neject_after_failures = 1\neject_for = \"1m\"\n\
         [groups.us-only]\nendpoints = [{{ url = \"http://{}\", region = \"us-east-1\" }}]\n",
        us.addr(),
        eu1.addr(),
        eu2.addr(),
        us.addr()
    );
    let front = serve(&text, &[]).await;
    Topology { eu1, eu2, us, front }
}

#[tokio::test]
async fn routes_by_project_domain_and_label_and_prefers_the_gateways_region() {
    let t = topology("").await;
    let c = client(&t.front.addr());
    let eu1 = format!("http://{}", t.eu1.addr());

    // project → group, preferred region first (eu-west-1, the first listed eu endpoint).
    let h = c.create_task(create("echo", "ml", "development")).await.unwrap();
    assert_eq!(remote_url(&h), eu1);
    assert_eq!(c.get_task(get("echo", h.clone())).await.unwrap().phase, Phase::Succeeded as i32);
    // domain (+ task type) → group.
    let h = c.create_task(sleep_create("finance", "production", "n1", 0.0)).await.unwrap();
    assert_eq!(remote_url(&h), eu1);
    // label → another group.
    let mut labelled = create("echo", "finance", "development");
    labelled.task_execution_metadata.as_mut().unwrap().labels.insert("accelerator".into(), "gpu".into());
    let h = c.create_task(labelled).await.unwrap();
    assert_eq!(remote_url(&h), format!("http://{}", t.us.addr()));
    // Nothing matches → this gateway's own agents.
    let h = c.create_task(create("echo", "finance", "development")).await.unwrap();
    assert_eq!(owner(&h), Owner::Local);
    assert_eq!(c.get_task(get("echo", h)).await.unwrap().phase, Phase::Succeeded as i32);
    // sleep is not served here: only the route makes it reachable.
    let err = c.create_task(sleep_create("finance", "development", "n2", 0.0)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{err}");
}

#[tokio::test]
async fn list_agents_aggregates_what_the_routes_reach() {
    let t = topology("").await;
    let agents = client(&t.front.addr()).list_agents().await.unwrap();
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&"echo"), "{names:?}");
    assert!(names.contains(&"sleep (remote: group compute)"), "{names:?}");
    let echoes = agents.iter().filter(|a| a.supported_task_categories.iter().any(|c| c.name == "echo")).count();
    assert_eq!(echoes, 1, "one entry per task category: {names:?}");
    let sleep = client(&t.front.addr()).get_agent("sleep").await.unwrap();
    assert_eq!(sleep.name, "sleep (remote: group compute)");
}

#[tokio::test]
async fn creates_fail_over_when_the_preferred_endpoint_dies_and_polls_reach_the_owner() {
    let t = topology("").await;
    let c = client(&t.front.addr());
    let eu1 = format!("http://{}", t.eu1.addr());
    let eu2 = format!("http://{}", t.eu2.addr());
    let us = format!("http://{}", t.us.addr());

    let on_eu1 = c.create_task(sleep_create("ml", "development", "a", 30.0)).await.unwrap();
    assert_eq!(remote_url(&on_eu1), eu1);
    let Topology { eu1: dead, eu2: eu2_served, us: us_served, front } = t;
    dead.handle.shutdown().await.unwrap();

    // A new create fails over to the next endpoint of the preferred region...
    let on_eu2 = c.create_task(sleep_create("ml", "development", "b", 30.0)).await.unwrap();
    assert_eq!(remote_url(&on_eu2), eu2);
    // ...and to the next region once the whole region is gone.
    eu2_served.handle.shutdown().await.unwrap();
    let on_us = c.create_task(sleep_create("ml", "development", "c", 0.0)).await.unwrap();
    assert_eq!(remote_url(&on_us), us);
    assert_eq!(c.get_task(get("sleep", on_us.clone())).await.unwrap().phase, Phase::Succeeded as i32, "polled at its owner");

    // A job whose owner died fails with an error naming the owner, never another endpoint.
    let err = c.get_task(get("sleep", on_eu1.clone())).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.message.contains(&eu1) && err.message.contains("unreachable"), "{err}");
    let err = c.delete_task(delete("sleep", on_eu1)).await.unwrap_err();
    assert!(err.message.contains(&eu1), "{err}");
    drop((front, us_served));
}

#[tokio::test]
async fn an_owner_removed_from_the_config_is_named() {
    let t = topology("").await;
    let h = client(&t.front.addr()).create_task(create("echo", "ml", "development")).await.unwrap();
    // The same handle at a gateway that has no such endpoint in the group.
    let other = serve(&format!("[agents.echo]\n[groups.compute]\nendpoints = [{{ url = \"http://{}\", region = \"us-east-1\" }}]\n", t.us.addr()), &[]).await;
    let err = client(&other.addr()).get_task(get("echo", h)).await.unwrap_err();
    assert_eq!(err.code, "TERN-G014", "{err}");
    assert!(err.message.contains(&t.eu1.addr()), "{err}");
}

#[tokio::test]
async fn handles_stay_valid_across_front_gateway_replicas() {
    let t = topology("").await;
    let h = client(&t.front.addr()).create_task(sleep_create("ml", "development", "r", 0.0)).await.unwrap();
    // A second front gateway with the same config answers polls for the first one's job.
    let replica = serve(
        &format!(
            "[server]\nregion = \"eu-west-1\"\n[[routes]]\nproject = \"ml\"\ntarget = \"group:compute\"\n\
             [groups.compute]\nendpoints = [{{ url = \"http://{}\", region = \"eu-west-1\" }}]\n",
            t.eu1.addr()
        ),
        &[],
    )
    .await;
    assert_eq!(client(&replica.addr()).get_task(get("sleep", h)).await.unwrap().phase, Phase::Succeeded as i32);
}

#[tokio::test]
async fn rate_limits_per_project_refuse_with_a_retry_hint() {
    let t = topology("[[routes]]\nname = \"quota\"\ntask_type = \"echo\"\ndomain = \"quota\"\ntarget = \"local\"\nrate_limit = { per = \"project\", rps = 1.0, burst = 2 }\n").await;
    let c = client(&t.front.addr());
    assert!(c.create_task(create("echo", "a", "quota")).await.is_ok());
    assert!(c.create_task(create("echo", "a", "quota")).await.is_ok());
    let err = c.create_task(create("echo", "a", "quota")).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::ResourceExhausted, "{err}");
    assert_eq!(err.code, codes::RESOURCE_EXHAUSTED);
    assert!(err.retry_after.is_some_and(|d| d <= Duration::from_secs(1)), "{err:?}");
    assert!(err.message.contains("project \"a\""), "{err}");
    assert!(c.create_task(create("echo", "b", "quota")).await.is_ok(), "another project has its own quota");
}

#[tokio::test]
async fn route_concurrency_and_deadline_apply() {
    // An HTTP server that accepts and never answers: a webhook call through it hangs.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let served = serve(
        "[agents.webhook]\n[[routes]]\ntask_type = \"webhook\"\ntarget = \"agent:webhook\"\ndeadline = \"300ms\"\nmax_concurrency = 1\non_full = \"reject\"\n",
        &[],
    )
    .await;
    let c = client(&served.addr());
    let custom = serde_json::json!({"url": format!("http://{silent_addr}/hook"), "method": "GET", "timeout_sec": 30});
    let header = support::webhook_header(custom);
    let first = {
        let (c, h) = (c.clone(), header.clone());
        tokio::spawn(async move { c.execute_task_sync(h, Default::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = c.execute_task_sync(header, Default::default()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::ResourceExhausted, "the route's one slot is taken: {err}");
    let started = std::time::Instant::now();
    let outcome = first.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "the route's deadline cut the call");
    match outcome {
        Err(e) => assert_eq!(e.class, ErrorClass::DeadlineExceeded, "{e}"),
        Ok(r) => assert!(r.message.contains("deadline") || r.message.contains("timed out"), "{r:?}"),
    }
}

#[tokio::test]
async fn routes_naming_unknown_groups_or_agents_stop_the_start() {
    let root = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("[[routes]]\ntarget = \"group:nowhere\"\n", "no [groups.nowhere]"),
        ("[agents.echo]\n[[routes]]\ntarget = \"agent:duckdb\"\n", "no agent \"duckdb\""),
        ("[[routes]]\ntarget = \"elsewhere\"\n", "agent:<name>"),
        ("[[routes]]\ntarget = \"local\"\nrate_limit = { rps = 0.0 }\n", "rps"),
        ("[groups.g]\nendpoints = []\n", "no endpoints"),
    ] {
        let c = support::config(text, root.path(), &[]);
        let err = tern_gateway::Gateway::build(&c, tern_gateway::Mode::Serve, Default::default()).err().unwrap().to_string();
        assert!(err.contains("TERN-G012") && err.contains(want), "{text}: {err}");
    }
}
