//! The Spark agent as `tern serve` hosts it, and who serves flytekit's `spark` task type (also
//! Databricks'): the conformance case over real gRPC against a Spark 4.3.0 standalone master +
//! worker (`agents/spark/tests/support`), a front gateway whose `[[routes]]` send `spark` to
//! another `tern serve` running the Spark agent while its own Databricks agent keeps the type
//! locally, and the configurations choosing between the two agents.
#![cfg(all(feature = "agent-spark", feature = "agent-databricks"))]
mod support;
#[allow(dead_code)]
#[path = "../../agents/spark/tests/support/mod.rs"]
mod spark_peer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{execution, serve};
use tern_agent_api::grpc_client::{ClientOptions, ClientTimeouts, GrpcAgentClient};
use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_gateway::routing::envelope::{Owner, Sealer};
use tern_gateway::Mode;

fn served_by(text: &str) -> Result<Vec<(String, String)>, String> {
    let root = tempfile::tempdir().unwrap();
    let c = support::config(text, root.path(), &[]);
    let gateway = tern_gateway::Gateway::build(&c, Mode::Serve, Default::default()).map_err(|e| e.to_string())?;
    let mut pairs: Vec<(String, String)> =
        gateway.built.registry.categories().map(|c| (c.name.clone(), gateway.built.registry.lookup(c).unwrap().name().to_owned())).collect();
    pairs.sort();
    Ok(pairs)
}

fn pair(t: &str, a: &str) -> (String, String) {
    (t.to_owned(), a.to_owned())
}

#[test]
fn one_gateway_serves_spark_with_exactly_one_agent() {
    let spark = "[agents.spark]\nmode = \"standalone\"\nrest_url = \"http://127.0.0.1:6066\"\n";
    // `spark` to the Spark agent: Databricks keeps only its own type.
    let got = served_by(&format!("{spark}[agents.databricks]\ntask_types = [\"databricks\"]\n")).unwrap();
    assert_eq!(got, [pair("databricks", "databricks"), pair("spark", "spark")]);
    // `spark` to Databricks (its default); a Spark section without a mode serves nothing.
    let got = served_by("[agents.databricks]\n[agents.spark]\n").unwrap();
    assert_eq!(got, [pair("databricks", "databricks"), pair("spark", "databricks")]);
    // Nothing configured: the same, the Spark agent listed as not served.
    let root = tempfile::tempdir().unwrap();
    let gateway = tern_gateway::Gateway::build(&support::config("", root.path(), &[]), Mode::Serve, Default::default()).unwrap();
    assert_eq!(gateway.built.registry.lookup(&TaskCategory::new("spark", 0)).unwrap().name(), "databricks");
    let (_, why) = gateway.built.not_served.iter().find(|(n, _)| n == "spark").expect("spark is listed as not served");
    assert!(why.contains("no task types"), "{why}");
    // Both claiming `spark`: refused at start, naming the type, both agents and the way out.
    let err = served_by(&format!("{spark}[agents.databricks]\n")).unwrap_err();
    for part in ["TERN-G004", "spark", "databricks", "task_types", "[[routes]]"] {
        assert!(err.contains(part), "{part} not in: {err}");
    }
    // Local mode runs code on this host: only with `enabled = true`.
    let err = served_by("[agents.spark]\nmode = \"local\"\n").unwrap_err();
    assert!(err.contains("TERN-G009") && err.contains("enabled = true"), "{err}");
    assert_eq!(served_by("[agents.spark]\nmode = \"local\"\nenabled = true\n").unwrap(), [pair("spark", "spark")]);
}

fn spark_create(template: &core::TaskTemplate, node: &str) -> admin::CreateTaskRequest {
    admin::CreateTaskRequest {
        template: Some(template.clone().into()),
        task_execution_metadata: Some(execution("p", "d", node, 0).into()),
        output_prefix: format!("spark-route/{node}/0"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_over_grpc_and_routed_to_another_gateway() {
    let Some(peer) = spark_peer::start("spark_over_grpc_and_routed_to_another_gateway").await else { return };
    let back = serve(&format!("[agents.spark]\n{}", spark_peer::section(&peer)), &[]).await;
    let agent = back.gateway.built.registry.lookup(&TaskCategory::new("spark", 0)).unwrap().clone();
    let client = Arc::new(GrpcAgentClient::connect_lazy(&back.addr(), ClientTimeouts::default()).unwrap());
    let case = spark_peer::conformance_case(&peer).agent(agent);
    let report = testkit::run(client, case).await;
    report.assert_passes();
    for check in ["idempotent_create", "delete_idempotent", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }

    // A front gateway serving Databricks (which claims `spark` by default) routes `spark` to `back`.
    let front = serve(
        &format!(
            "[agents.databricks]\n[[routes]]\nname = \"spark\"\ntask_type = \"spark\"\ntarget = \"group:spark\"\n\
             [groups.spark]\nendpoints = [{{ url = \"http://{}\", region = \"local\" }}]\n",
            back.addr()
        ),
        &[],
    )
    .await;
    let c = GrpcAgentClient::connect_lazy_with(&front.addr(), ClientOptions::default()).unwrap();
    let ok = peer.script("routed.py", spark_peer::OK_PY);
    let template = spark_peer::spark_template(&ok, &peer.python, &["routed"]);
    let remote = peer.remote();
    let before = remote.count_drivers().await;
    let handle = c.create_task(spark_create(&template, "routed")).await.unwrap();
    match Sealer::default().open(&handle).unwrap().expect("an enveloped handle").owner {
        Owner::Remote { endpoint, .. } => assert_eq!(endpoint, format!("http://{}", back.addr())),
        Owner::Local => panic!("spark stayed on the front gateway (its Databricks agent)"),
    }
    let again = c.create_task(spark_create(&template, "routed")).await.unwrap();
    let started = Instant::now();
    let phase = loop {
        let p = c.get_task(support::get("spark", handle.clone())).await.unwrap().phase;
        if p != Phase::Running as i32 && p != Phase::Queued as i32 && p != Phase::Initializing as i32 {
            break p;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "still {p}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(phase, Phase::Succeeded as i32);
    assert_eq!(c.get_task(support::get("spark", again)).await.unwrap().phase, Phase::Succeeded as i32);
    assert_eq!(remote.count_drivers().await, before + 1, "one driver at the master through the route, created twice");
}
