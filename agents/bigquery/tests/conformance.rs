//! The BigQuery agent passes the agent conformance kit against the BigQuery emulator
//! (crucible-emulator): jobs are counted at the emulator (BigQuery's jobs.list), and every state
//! of the agent's table is produced there (`drive_state`).
mod emulator;

use std::sync::Arc;

use tern_agent_api::prelude::*;
use tern_agent_api::testkit;
use tern_agent_bigquery::agent_with;


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_passes_the_conformance_kit_against_the_emulator() {
    let Some(emulator) = emulator::Emulator::start() else { return };
    let emulator = Arc::new(emulator);
    let store = tempfile::tempdir().unwrap();
    let init = AgentInit::for_tests(store.path());
    let agent = agent_with(emulator.config(), &init).unwrap();
    let client = emulator::client(agent.clone(), store.path());

    let case = emulator::conformance_case(emulator.clone()).async_agent(agent);
    let report = testkit::run(client, case).await;
    report.assert_passes();
    // Nothing skipped: idempotency was counted at the emulator, states were driven there.
    for check in ["idempotent_create", "delete_idempotent", "backend_states", "failure_reported", "outputs_match_interface"] {
        assert_eq!(report.outcome(check), Some(testkit::Outcome::Passed), "{check}\n{report}");
    }
}
