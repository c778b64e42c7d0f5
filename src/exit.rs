//! Process exit codes, one meaning each (documented in docs/errors.md).
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The workflow ran and failed.
    ExecutionFailed = 1,
    /// Bad input: usage, a workflow that does not validate, bad `--input` values.
    Usage = 2,
    /// A platform failure: cannot open state, bind a port, reach a gateway.
    System = 3,
    /// Interrupted (Ctrl-C): `tern run`/`recover` detached; the execution's jobs keep running.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}
