//! The BigQuery agent passes the agent conformance kit against the BigQuery emulator
//! (crucible-emulator): jobs are counted at the emulator (BigQuery's jobs.list), and every state
//! of the agent's table is produced there (`drive_state`).
mod emulator;

use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit::{self, Case};
use tern_agent_bigquery::{agent_with, TASK_TYPE};
use tern_type_transformers::structs::json_to_struct;
use tern_type_transformers::{FlyteType, LiteralMapBuilder, StructuredDataset};

pub const PROJECT: &str = "tern-conformance";

fn template(sql: &str, with_inputs: bool) -> core::TaskTemplate {
    let var = |t: core::LiteralType| core::Variable { r#type: Some(t), ..Default::default() };
    let inputs = with_inputs.then(|| core::VariableMap {
        variables: [("n".to_owned(), var(i64::literal_type())), ("label".to_owned(), var(String::literal_type()))].into(),
    });
    let outputs = core::VariableMap {
        variables: [("results".to_owned(), var(StructuredDataset::literal_type_for(&[], "")))].into(),
    };
    let custom = serde_json::json!({"ProjectID": PROJECT, "Location": "US", "Domain": "development"});
    core::TaskTemplate {
        r#type: TASK_TYPE.into(),
        interface: Some(core::TypedInterface { inputs, outputs: Some(outputs) }),
        custom: Some(json_to_struct(custom.as_object().unwrap())),
        target: Some(core::task_template::Target::Sql(core::Sql { statement: sql.into(), dialect: 1 })),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_passes_the_conformance_kit_against_the_emulator() {
    let Some(emulator) = emulator::Emulator::start() else { return };
    let emulator = Arc::new(emulator);
    let store = tempfile::tempdir().unwrap();
    let init = AgentInit::for_tests(store.path());
    let agent = agent_with(emulator.config(), &init).unwrap();
    let client = emulator::client(agent.clone(), store.path());

    let inputs = LiteralMapBuilder::new().with("n", &41i64).unwrap().with("label", &"x".to_owned()).unwrap().build();
    let counter = emulator.clone();
    let driver = emulator.clone();
    let case = Case::new(template("SELECT @n + 1 AS answer, @label AS label", true), inputs)
        // BigQuery rejects the SQL: the job ends DONE with errorResult invalidQuery → FAILED.
        .failing(template("SELECT nope FROM", false), core::LiteralMap::default())
        // Reported RUNNING by the emulator until jobs.cancel (see crucible_bigquery.py).
        .long_running(template("SELECT 1 AS one /* TERN_HOLD */", false), core::LiteralMap::default())
        .count_jobs(move || {
            let e = counter.clone();
            async move { e.count_jobs(PROJECT).await }
        })
        .drive_state(move |state| {
            let e = driver.clone();
            async move { e.drive(Some(&state)).await }
        })
        .async_agent(agent)
        .poll_timeout(Duration::from_secs(30));
    let report = testkit::run(client, case).await;
    report.assert_passes();
    // Nothing skipped: idempotency was counted at the emulator, states were driven there.
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}
