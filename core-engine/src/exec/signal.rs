//! What the execution's driver tells its running nodes.
use std::time::Duration;

use tokio::sync::watch;

/// The driver's instruction to every running node, broadcast through a `watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunSignal {
    Run,
    /// Another node failed and the policy is to fail fast: running nodes give their jobs
    /// up (DeleteTask) and record ABORTED.
    Cancel,
    /// `tern abort`: like `Cancel`, for the user.
    Abort,
    /// The workflow's deadline passed: like `Cancel`.
    Deadline,
    /// Stop driving and leave every job as it is: this process lost the execution's lease
    /// or cannot save state. `tern recover` resumes.
    Halt,
}

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    GiveUp(RunSignal),
    Halt,
}

/// The signal now, as an interruption (if any).
pub(crate) fn check(rx: &watch::Receiver<RunSignal>) -> Result<(), Interrupt> {
    match *rx.borrow() {
        RunSignal::Run => Ok(()),
        RunSignal::Halt => Err(Interrupt::Halt),
        s => Err(Interrupt::GiveUp(s)),
    }
}

/// Sleeps `d`, unless the driver signals first. A dropped driver (its future was dropped:
/// a crash, Ctrl-C) is a halt: the interruption must not look like a decision.
pub(crate) async fn sleep(rx: &watch::Receiver<RunSignal>, d: Duration) -> Result<(), Interrupt> {
    check(rx)?;
    let mut rx = rx.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        changed = rx.changed() => match changed {
            Ok(()) => check(&rx),
            Err(_) => Err(Interrupt::Halt),
        },
    }
}
