//! The `shell` agent (task type `shell`, version 0, async): runs a command on the
//! gateway's machine and turns what it prints or writes into typed outputs.
//!
//! **It runs whatever the task template says, with the gateway's user rights.** Enable it
//! only on gateways whose task submitters you trust.
//!
//! # Writing a shell task
//!
//! The command is the template's `container.command` followed by `container.args`. The
//! first word is the program; there is **no shell** unless you ask for one, so pipes,
//! `$VARS` and globs need `["sh", "-c", "..."]`. The program is looked up on `PATH`.
//! Environment variables come from `container.env`, on top of a small base (`PATH`,
//! `HOME`, `USER`, `LANG`, `LC_ALL`, `TZ`, `TMPDIR`); nothing else from the gateway leaks.
//!
//! Every command word, `env` value and output `path` may use placeholders:
//!
//! | placeholder | becomes |
//! |---|---|
//! | `{{.inputs.NAME}}` | the input's value as text: strings as they are, numbers and booleans as `3`, `1.5`, `true`, datetimes in ISO 8601, durations in seconds, none as empty text, files and dataframes as a local path (or their URI when the data store is remote), lists/maps/structs as JSON |
//! | `{{.outputPrefix}}` | where this attempt's outputs are stored |
//! | `{{.workdir}}` | the working directory the command runs in |
//!
//! Spaces inside the braces and any capitalisation of the keyword are accepted
//! (`{{ .Inputs.n }}`). Any other `{{...}}` is refused when the task is created, naming it.
//!
//! `template.custom` settings:
//!
//! | key | meaning |
//! |---|---|
//! | `outputs` | for each output of the interface: `{"from": "stdout"}` or `{"from": "file", "path": "relative/in/workdir"}` |
//! | `timeout_sec` | kill the command after this many seconds (the task's `metadata.timeout` also applies; the smaller wins) |
//! | `workdir` | an absolute directory to run in (created if missing, never deleted); default: a fresh empty directory per attempt, deleted afterwards |
//!
//! Each output's type comes from the task interface:
//!
//! - `string`, `integer`, `float`, `boolean`: parsed from the text with surrounding
//!   whitespace trimmed (booleans: `true`/`false`, `1`/`0`, `yes`/`no`);
//! - `struct`: the text must be a JSON object;
//! - `file` (single blob): the file is uploaded to `<outputPrefix>/<output name>/<file name>`
//!   (`stdout.txt` for stdout) and the output points there.
//!
//! Example (YAML of the template's interesting parts):
//!
//! ```yaml
//! container:
//!   command: [sh, -c]
//!   args: ["wc -l < {{.inputs.data}} | tee count.txt"]
//! custom:
//!   outputs: {lines: {from: stdout}, copy: {from: file, path: count.txt}}
//!   timeout_sec: 60
//! interface:
//!   inputs:  {data: file}
//!   outputs: {lines: integer, copy: file}
//! ```
//!
//! # How a run ends
//!
//! - exit code 0 and all outputs readable → SUCCEEDED; the outputs are also stored as
//!   `<outputPrefix>/outputs.pb`;
//! - non-zero exit → FAILED with the exit code and the last 20 lines of stderr;
//! - timeout → FAILED "timed out after N s"; the command's whole process group is killed;
//! - program not found → FAILED naming it;
//! - DeleteTask → ABORTED; the process group is killed.
//!
//! stdout and stderr are stored as `<outputPrefix>/logs/stdout.txt` and `stderr.txt`
//! when the command ends, and `GetTaskLogs` serves them (live from memory while it runs;
//! stderr lines start with `[stderr] `).
//!
//! Jobs run inside the gateway process, keyed by the attempt's idempotency key, so a
//! repeated CreateTask never starts a second command. Before a command starts, the
//! attempt's record (`<outputPrefix>/shell-job.json`, holding the handle) is written to the
//! data store, so a repeated CreateTask after a gateway restart (or a crash of an embedded
//! `tern run`) returns the same handle and starts nothing. After a restart a job is gone:
//! GetTask then reports SUCCEEDED if its `outputs.pb` was stored, otherwise a retryable
//! failure ("job lost"), and the engine's next attempt runs the command anew.
use std::sync::Arc;

use tern_agent_api::prelude::AsyncAgent;

pub mod agent;
pub mod config;
pub mod inputs;
pub mod job;
pub mod logs;
pub mod outputs;
pub mod process;
pub mod scratch;
pub mod spec;
pub mod template;

pub use agent::{ShellAgent, TASK_TYPE};
pub use config::{ShellConfig, ShellFactory, ShellSettings};

/// Stable error codes of this agent (documented in `docs/errors.md`).
pub mod codes {
    /// The template is unusable: no container command, unknown `custom` keys, outputs
    /// that do not match the interface, unsupported output types, bad timeout or paths.
    pub const BAD_TEMPLATE: &str = "TERN-H001";
    /// A `{{...}}` placeholder is unknown, or names an input the task does not have.
    pub const UNKNOWN_PLACEHOLDER: &str = "TERN-H002";
    /// The program could not be started: not found, or not executable.
    pub const CANNOT_START: &str = "TERN-H003";
    /// The command exited with a non-zero code or was killed by a signal.
    pub const COMMAND_FAILED: &str = "TERN-H004";
    /// The command ran longer than its timeout and was killed.
    pub const TIMED_OUT: &str = "TERN-H005";
    /// An output could not be read or parsed as its declared type.
    pub const BAD_OUTPUT: &str = "TERN-H006";
    /// The job is unknown to this process (it restarted) and stored no outputs.
    pub const JOB_LOST: &str = "TERN-H007";
    /// The scratch or working directory could not be created, or output capture failed.
    pub const WORKDIR: &str = "TERN-H008";
}

/// The shell agent with settings from this process's environment.
pub fn agent() -> Arc<dyn AsyncAgent> {
    Arc::new(ShellAgent::new(ShellSettings::detect()))
}
