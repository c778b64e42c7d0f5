//! The Spark agent in local mode: `spark-submit --master local[1]` of the pyspark 4.3.0 wheel as a
//! subprocess. The conformance kit (jobs counted as job directories, each one `spark-submit`
//! started), a real pyspark job, and a repeated create by a restarted agent that finds the first
//! job by its directory.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_spark::{SparkConfig, SparkFactory};

fn count_dirs(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.filter_map(Result::ok).filter(|e| e.path().is_dir()).count() as u64).unwrap_or(0)
}


/// A real Spark job: sums 0..999 on a SparkSession.
const SUM_PY: &str = "from pyspark.sql import SparkSession\nimport sys\nspark = SparkSession.builder.getOrCreate()\n\
print('RESULT', spark.sparkContext.parallelize(range(1000)).sum(), sys.argv[1:], flush=True)\nspark.stop()\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_submit_local_mode() {
    let Some(python) = support::python("spark_submit_local_mode") else { return };
    let home = support::spark_home(&python);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("jobs");
    let config: SparkConfig = toml::from_str(&format!(
        "mode = \"local\"\nmaster = \"local[1]\"\nspark_submit = \"{}\"\nwork_dir = \"{}\"\nspark_conf = {{ \"spark.ui.enabled\" = \"false\" }}\n\
         env = {{ SPARK_LOCAL_IP = \"127.0.0.1\", SPARK_HOME = \"{}\" }}\n",
        home.join("bin/spark-submit").display(),
        work.display(),
        home.display()
    ))
    .unwrap();
    assert_eq!(SparkFactory::exposure(&config), Exposure::ArbitraryCode, "local mode runs code on this host");
    let script = |name: &str, source: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, source).unwrap();
        p
    };
    let (ok, fail, slow, sum) = (script("ok.py", support::OK_PY), script("fail.py", support::FAIL_PY), script("slow.py", support::SLOW_PY), script("sum.py", SUM_PY));
    let store = tempfile::tempdir().unwrap();
    let (agent, init, client) = support::in_process(config.clone(), store.path());
    let jobs = work.clone();
    let case = testkit::Case::new(support::spark_template(&ok, &python, &["a"]), Default::default())
        .failing(support::spark_template(&fail, &python, &[]), Default::default())
        .long_running(support::spark_template(&slow, &python, &["120"]), Default::default())
        .count_jobs(move || {
            let j = jobs.clone();
            async move { count_dirs(&j) }
        })
        .async_agent(agent.clone())
        .poll_interval(Duration::from_millis(500))
        .poll_timeout(Duration::from_secs(90));
    let started = Instant::now();
    let report = testkit::run(client, case).await;
    println!("{report}\nconformance kit (local mode): {:?}", started.elapsed());
    report.assert_passes();
    assert_eq!(report.outcome("idempotent_create"), Some(testkit::Outcome::Passed), "{report}");

    // A real pyspark job, created again by a restarted agent: one spark-submit, its logs.
    let before = count_dirs(&work);
    let template = support::spark_template(&sum, &python, &["restart"]);
    let ctx = init.services.task_context("local/n0/0", Some(support::execution("local-restart")), None);
    let first = agent.create(&ctx, TaskRequest { template: Box::new(template.clone()), inputs: Default::default() }).await.unwrap();
    drop(agent);
    let restarted = tern_agent_spark::agent_with(config, &AgentInit::for_tests(store.path())).unwrap();
    let again = restarted.create(&ctx, TaskRequest { template: Box::new(template), inputs: Default::default() }).await.unwrap();
    assert_eq!(first.as_bytes(), again.as_bytes());
    let status = support::wait_terminal(restarted.as_ref(), &ctx, &again).await;
    assert_eq!(status.phase, Phase::Succeeded, "{status:?}");
    assert_eq!(count_dirs(&work), before + 1, "one spark-submit for the attempt");
    let page = restarted.logs(&ctx, &again, 0, "").await.unwrap();
    let text: Vec<&str> = page.lines.iter().map(|l| l.message.as_str()).collect();
    assert!(text.iter().any(|l| l.contains("RESULT 499500")), "{text:?}");
    let first_two = restarted.logs(&ctx, &again, 2, "").await.unwrap();
    assert_eq!(first_two.lines.len(), 2);
    assert!(!first_two.next_token.is_empty());
}
