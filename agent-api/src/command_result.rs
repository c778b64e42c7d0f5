//! The result of a flytekit command run by an agent on the gateway's host (`dask`, `gpu`):
//! `pyflyte-execute` writes `<output_prefix>/outputs.pb` (a `LiteralMap`) when the task
//! returns, and `<output_prefix>/error.pb` (a `flyteidl.core.ErrorDocument`) when it raises.
use prost::Message;

use crate::context::TaskContext;
use crate::datastore::{join_uri, DataStoreError};
use crate::error::{AgentError, ErrorClass, ErrorOrigin, Retry};
use crate::proto::flyteidl::core;
use crate::status::TaskStatus;

/// `flyteidl.core.ErrorDocument` (core/errors.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorDocument {
    #[prost(message, optional, tag = "1")]
    error: Option<ContainerError>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ContainerError {
    #[prost(string, tag = "1")]
    code: String,
    #[prost(string, tag = "2")]
    message: String,
    /// NON_RECOVERABLE = 0, RECOVERABLE = 1.
    #[prost(int32, tag = "3")]
    kind: i32,
}

fn user_failure(code: &'static str, message: String) -> AgentError {
    AgentError::new(code, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::FailedPrecondition)
}

/// The status of a command that exited 0: SUCCEEDED with `<prefix>/outputs.pb`, or without
/// outputs when the interface declares none; else FAILED with `no_outputs_code` (user error).
pub async fn command_outputs(
    ctx: &TaskContext,
    prefix: &str,
    declared: &[String],
    no_outputs_code: &'static str,
) -> Result<TaskStatus, AgentError> {
    let uri = join_uri(prefix, "outputs.pb");
    match ctx.data_store().read(&uri).await {
        Ok(bytes) => match core::LiteralMap::decode(bytes) {
            Ok(outputs) => Ok(TaskStatus::succeeded(Some(outputs))),
            Err(e) => Ok(TaskStatus::failed(user_failure(
                no_outputs_code,
                format!("the command exited 0, but {uri} is not a LiteralMap: {e}"),
            ))),
        },
        Err(DataStoreError::NotFound { .. }) if declared.is_empty() => Ok(TaskStatus::succeeded(None)),
        Err(DataStoreError::NotFound { .. }) => Ok(TaskStatus::failed(user_failure(
            no_outputs_code,
            format!("the command exited 0 but wrote no {uri}; the task declares the outputs {}", declared.join(", ")),
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The error flytekit's `pyflyte-execute` wrote to `<prefix>/error.pb` when the task raised,
/// as a `task_failed_code` user error (retryable when flytekit says RECOVERABLE).
pub async fn flytekit_error(ctx: &TaskContext, prefix: &str, program: &str, task_failed_code: &'static str) -> Option<AgentError> {
    let bytes = ctx.data_store().read(&join_uri(prefix, "error.pb")).await.ok()?;
    let error = ErrorDocument::decode(bytes).ok()?.error?;
    if error.message.trim().is_empty() {
        return None;
    }
    let message = format!("{program} failed: {}: {}", error.code, error.message.trim());
    // ContainerError.Kind RECOVERABLE (1): flytekit says a retry may succeed.
    Some(if error.kind == 1 {
        AgentError::new(task_failed_code, message, ErrorOrigin::User, Retry::Retryable, ErrorClass::FailedPrecondition)
    } else {
        user_failure(task_failed_code, message)
    })
}

/// The command of a task template's container, as an agent running it on this host needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCommand {
    /// `container.command` then `container.args`: the first word.
    pub program: String,
    pub args: Vec<String>,
    /// `container.env`.
    pub env: Vec<(String, String)>,
    /// Names of the outputs the interface declares, sorted.
    pub outputs: Vec<String>,
}

impl ContainerCommand {
    /// The container of `template` (refused with `bad_template` when there is none, when a word still
    /// holds a propeller template variable, or when there is no program). `agent` names the agent in messages.
    pub fn parse<'t>(
        template: &'t core::TaskTemplate,
        agent: &str,
        bad_template: impl Fn(String) -> AgentError,
    ) -> Result<(Self, &'t core::Container), AgentError> {
        let container = match template.target.as_ref() {
            Some(core::task_template::Target::Container(c)) => c,
            _ => {
                return Err(bad_template(format!(
                    "a {agent} task needs template.container with the command to run (flytekit writes pyflyte-execute … there)"
                )))
            }
        };
        let words: Vec<String> = container.command.iter().chain(container.args.iter()).cloned().collect();
        for (i, w) in words.iter().enumerate() {
            if let Some(var) = unrendered_variable(w) {
                return Err(bad_template(format!(
                    "container command/args word {i} still holds the template variable {var}: the engine renders them before CreateTask"
                )));
            }
        }
        let mut words = words.into_iter();
        let program = words
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad_template("container.command (then container.args) must name the program to run".into()))?;
        let env = container.env.iter().map(|kv| (kv.key.clone(), kv.value.clone())).collect();
        let mut outputs: Vec<String> = template
            .interface
            .as_ref()
            .and_then(|i| i.outputs.as_ref())
            .map(|o| o.variables.keys().cloned().collect())
            .unwrap_or_default();
        outputs.sort();
        Ok((Self { program, args: words.collect(), env, outputs }, container))
    }
}

/// Why a command exited non-zero: `<program> exited with code N` (a signal guessed above 128), then the
/// end of `stderr.txt` in `dir`, else of `stdout.txt` (flytekit logs a task's error to stdout).
pub fn exit_detail(dir: &std::path::Path, program: &str, code: i64, tail_lines: usize) -> String {
    let signal = if code > 128 { format!(" (killed by signal {}?)", code - 128) } else { String::new() };
    let mut tail = crate::local_process::tail_message(&dir.join("stderr.txt"), "stderr", tail_lines);
    if tail.is_empty() {
        tail = crate::local_process::tail_message(&dir.join("stdout.txt"), "stdout", tail_lines);
    }
    format!("{program} exited with code {code}{signal}{tail}")
}

/// The first propeller template variable (`{{.…}}`, `{{ .…}}`, `{{$…}}`) left in a command
/// word: the engine renders them before CreateTask, so one left is a template error.
pub fn unrendered_variable(word: &str) -> Option<&str> {
    let open = word.find("{{")?;
    let rest = &word[open..];
    let inner = rest[2..].trim_start();
    if !inner.starts_with('.') && !inner.starts_with('$') {
        return None;
    }
    let end = rest.find("}}").map(|e| e + 2).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_unrendered_variables_only() {
        assert_eq!(super::unrendered_variable("--inputs={{.input}}"), Some("{{.input}}"));
        assert_eq!(super::unrendered_variable("{{ .outputPrefix }}/x"), Some("{{ .outputPrefix }}"));
        assert_eq!(super::unrendered_variable("{{ jinja }}"), None);
        assert_eq!(super::unrendered_variable("plain"), None);
    }
}
