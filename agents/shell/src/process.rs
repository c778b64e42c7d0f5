//! Runs one command in its own process group, capturing stdout and stderr to files and
//! to a [`LogBuffer`], with an optional timeout.
//!
//! The whole process group is killed when the command ends, times out, or when the job is
//! cancelled (the future is dropped): children a script left behind must neither outlive
//! the task nor keep its output pipes open.
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::logs::{LogBuffer, Stream};

/// A line longer than this is cut into several log lines.
const MAX_LINE: usize = 64 * 1024;
/// How long to wait for the output pipes to close once the process group is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    /// The complete environment: nothing of the agent's own environment is added.
    pub env: Vec<(String, String)>,
    pub workdir: &'a Path,
    pub timeout: Option<Duration>,
}

/// Where the captured output goes.
#[derive(Debug, Clone)]
pub struct Capture<'a> {
    pub stdout: &'a Path,
    pub stderr: &'a Path,
    pub logs: Arc<LogBuffer>,
}

#[derive(Debug)]
pub enum Outcome {
    Exited(ExitStatus),
    TimedOut(Duration),
    /// The program could not be started.
    SpawnFailed(std::io::Error),
    /// Capturing output or waiting for the process failed.
    Io(std::io::Error),
}

/// Kills a process group when dropped (or earlier, by [`GroupKill::kill`]).
struct GroupKill(Option<u32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The group we created with `process_group(0)`.
            tern_agent_api::local_process::kill_group(pgid);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn run(inv: Invocation<'_>, capture: Capture<'_>) -> Outcome {
    let stdout_file = match tokio::fs::File::create(capture.stdout).await {
        Ok(f) => f,
        Err(e) => return Outcome::Io(e),
    };
    let stderr_file = match tokio::fs::File::create(capture.stderr).await {
        Ok(f) => f,
        Err(e) => return Outcome::Io(e),
    };
    let mut command = tokio::process::Command::new(inv.program);
    command
        .args(inv.args)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(inv.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnFailed(e),
    };
    let mut group = GroupKill(child.id());
    let pumps = [
        child.stdout.take().map(|out| tokio::spawn(pump(out, stdout_file, capture.logs.clone(), Stream::Stdout))),
        child.stderr.take().map(|err| tokio::spawn(pump(err, stderr_file, capture.logs.clone(), Stream::Stderr))),
    ];
    let waited = match inv.timeout {
        Some(limit) => tokio::time::timeout(limit, child.wait()).await.map_err(|_| limit),
        None => Ok(child.wait().await),
    };
    group.kill();
    let outcome = match waited {
        Err(limit) => {
            let _ = child.wait().await;
            Outcome::TimedOut(limit)
        }
        Ok(Ok(status)) => Outcome::Exited(status),
        Ok(Err(e)) => Outcome::Io(e),
    };
    for pump in pumps.into_iter().flatten() {
        match tokio::time::timeout(DRAIN_GRACE, pump).await {
            Ok(Ok(Err(e))) if matches!(outcome, Outcome::Exited(_)) => return Outcome::Io(e),
            // A process that escaped the group (setsid) still holds the pipe: stop reading.
            _ => {}
        }
    }
    outcome
}

/// Copies a pipe to a file and, line by line, to the log buffer.
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    mut file: tokio::fs::File,
    logs: Arc<LogBuffer>,
    stream: Stream,
) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        file.write_all(&chunk[..n]).await?;
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            logs.push(stream, String::from_utf8_lossy(&line[..end]).trim_end_matches('\r'));
        }
        if pending.len() > MAX_LINE {
            logs.push(stream, &String::from_utf8_lossy(&pending));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        logs.push(stream, &String::from_utf8_lossy(&pending));
    }
    file.flush().await
}
