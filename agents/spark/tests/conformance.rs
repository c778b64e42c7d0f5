//! The Spark agent (standalone mode) against a real Spark 4.3.0 standalone master + 2-core worker
//! (pyspark wheel): the conformance kit (drivers counted at the master, the long-running driver
//! killed for real), then a repeated create by a *new* agent process-state (a restarted gateway)
//! on the same data store, counted at the master, and the driver's logs. One peer for the whole
//! binary: a single test function.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_spark::SparkConfig;



#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_standalone_conformance_restart_idempotency_and_logs() {
    let Some(peer) = support::start("spark_standalone_conformance_restart_idempotency_and_logs").await else { return };
    let config: SparkConfig = toml::from_str(&support::section(&peer)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let (agent, init, client) = support::in_process(config.clone(), store.path());

    let case = support::conformance_case(&peer).async_agent(agent.clone());
    let started = Instant::now();
    let report = testkit::run(client, case).await;
    println!("{report:#?}\nconformance kit: {:?}", started.elapsed());
    report.assert_passes();
    assert_eq!(report.outcome("idempotent_create"), Some(testkit::Outcome::Passed), "{report}");

    // A repeated create after a restart: a new agent (no memory of the first) on the same store.
    let ok = peer.script("ok.py", support::OK_PY);
    let template = support::spark_template(&ok, &peer.python, &["restart"]);
    let remote = peer.remote();
    let before = remote.count_drivers().await;
    let ctx = init.services.task_context("restart/n0/0", Some(support::execution("restart-1")), None);
    let first = agent.create(&ctx, TaskRequest { template: Box::new(template.clone()), inputs: Default::default() }).await.unwrap();
    drop(agent);
    let restarted = tern_agent_spark::agent_with(config, &AgentInit::for_tests(store.path())).unwrap();
    let ctx = init.services.task_context("restart/n0/0", Some(support::execution("restart-1")), None);
    let again = restarted.create(&ctx, TaskRequest { template: Box::new(template.clone()), inputs: Default::default() }).await.unwrap();
    assert_eq!(first.as_bytes(), again.as_bytes(), "the restarted agent returns the first driver");
    let status = support::wait_terminal(restarted.as_ref(), &ctx, &again).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(remote.count_drivers().await, before + 1, "one driver at the master for the attempt");
    let drivers = remote.drivers().await;
    assert!(!status.log_links.is_empty() && status.log_links[0].uri == peer.ui_url, "{:?}", status.log_links);
    // GetTaskLogs: the driver's stdout from the worker's work dir.
    let page = restarted.logs(&ctx, &again, 0, "").await.unwrap();
    let text: Vec<&str> = page.lines.iter().map(|l| l.message.as_str()).collect();
    assert!(text.iter().any(|l| l.contains("tern-ok") && l.contains("restart")), "{text:?}\n{drivers:?}");
    // Delete of a finished driver is fine; the same attempt with another retry gets a new driver.
    restarted.delete(&ctx, &again).await.unwrap();
    assert_eq!(restarted.get(&ctx, &again).await.unwrap().phase, Phase::Succeeded);
}
