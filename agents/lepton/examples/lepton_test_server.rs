//! The tests' Lepton server (`tests/support/lepton_server.rs`) as a process, for tests that drive `tern serve`
//! from outside (tests/interop/test_lepton.py): prints `LEPTON_URL=<url>` once it listens, and serves until
//! killed. Its workspace is `tern-test-ws`, its token `lepton-test-token-0123`.
#[allow(dead_code)]
#[path = "../tests/support/lepton_server.rs"]
mod lepton_server;

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = lepton_server::start().await;
    println!("LEPTON_URL={}", server.url);
    let _ = std::io::stdout().flush();
    std::future::pending::<()>().await;
}
