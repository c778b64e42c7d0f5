//! One run of a shell task in the background: run the command, store its logs, read and
//! store its outputs, and say how it ended.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tern_agent_api::prelude::*;

use crate::codes;
use crate::logs::{stderr_uri, stdout_uri, LogBuffer};
use crate::outputs::{collect, RunFiles};
use crate::process::{self, Capture, Invocation, Outcome};
use crate::scratch::Scratch;
use crate::spec::ShellSpec;

/// How many stderr lines a failure message quotes.
const STDERR_TAIL_LINES: usize = 20;

pub struct Job {
    pub spec: ShellSpec,
    pub scratch: Scratch,
    pub workdir: PathBuf,
    /// The command's complete environment.
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub output_prefix: String,
    pub store: Arc<dyn DataStore>,
    pub interface: Option<core::TypedInterface>,
    pub logs: Arc<LogBuffer>,
}

impl Job {
    pub async fn run(self) -> TaskStatus {
        let status = match self.execute().await {
            Ok(outputs) => TaskStatus::succeeded(Some(outputs)),
            Err(e) => TaskStatus::failed(e),
        };
        self.logs.finish();
        status
    }

    async fn execute(&self) -> Result<core::LiteralMap, AgentError> {
        tokio::fs::create_dir_all(&self.workdir).await.map_err(|e| {
            AgentError::unavailable(codes::WORKDIR, format!("cannot create the working directory {}: {e}", self.workdir.display()))
        })?;
        let (stdout, stderr) = (self.scratch.stdout(), self.scratch.stderr());
        let outcome = process::run(
            Invocation {
                program: &self.spec.program,
                args: &self.spec.args,
                env: self.env.clone(),
                workdir: &self.workdir,
                timeout: self.timeout,
            },
            Capture { stdout: &stdout, stderr: &stderr, logs: self.logs.clone() },
        )
        .await;
        self.store_logs(&stdout, &stderr).await;
        let program = &self.spec.program;
        match outcome {
            Outcome::Exited(status) if status.success() => self.outputs(&stdout).await,
            Outcome::Exited(status) => Err(AgentError::user(
                codes::COMMAND_FAILED,
                format!("{program} {}{}", describe_exit(status), stderr_tail(&stderr)),
            )),
            Outcome::TimedOut(limit) => Err(AgentError::user(
                codes::TIMED_OUT,
                format!("{program} timed out after {} s and was killed{}", seconds(limit), stderr_tail(&stderr)),
            )),
            Outcome::SpawnFailed(e) => Err(AgentError::user(codes::CANNOT_START, cannot_start(program, &e))),
            Outcome::Io(e) => Err(AgentError::unavailable(codes::WORKDIR, format!("capturing the output of {program} failed: {e}"))),
        }
    }

    async fn outputs(&self, stdout: &Path) -> Result<core::LiteralMap, AgentError> {
        let files = RunFiles { workdir: &self.workdir, stdout };
        let outputs = collect(&self.spec.outputs, &files, self.store.as_ref(), &self.output_prefix).await?;
        check_outputs(self.interface.as_ref(), &outputs)?;
        let uri = join_uri(&self.output_prefix, "outputs.pb");
        self.store.write(&uri, outputs.encode_to_vec().into()).await?;
        Ok(outputs)
    }

    /// Logs are a convenience: failing to store them is logged, not fatal.
    async fn store_logs(&self, stdout: &Path, stderr: &Path) {
        for (local, uri) in [(stdout, stdout_uri(&self.output_prefix)), (stderr, stderr_uri(&self.output_prefix))] {
            if let Err(e) = self.store.upload_file(local, &uri).await {
                tracing::warn!(error = %e, "shell: cannot store the command's logs");
            }
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("failed with exit code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".into(),
    }
}

fn cannot_start(program: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => format!("program {program:?} not found"),
        std::io::ErrorKind::NotFound => format!("program {program:?} not found on PATH"),
        std::io::ErrorKind::PermissionDenied => format!("program {program:?} cannot be run: permission denied"),
        _ => format!("cannot start program {program:?}: {e}"),
    }
}

/// `2`, `1.5`: seconds as a person writes them.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0}") } else { format!("{s}") }
}

/// The end of stderr, for failure messages (reads at most the last 16 KiB).
fn stderr_tail(path: &Path) -> String {
    tern_agent_api::local_process::tail_message(path, "stderr", STDERR_TAIL_LINES)
}
