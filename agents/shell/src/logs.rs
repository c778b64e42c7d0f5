//! The command's output as `GetTaskLogs` lines: from memory while the command runs,
//! from `<output_prefix>/logs/{stdout,stderr}.txt` in the data store once it ended.
//!
//! Every line has originator USER; stderr lines start with [`STDERR_MARKER`]. Lines kept
//! in memory carry the time they were read; stored logs have no per-line time and come
//! back as all stdout lines, then all stderr lines.
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use tern_agent_api::admin;
use tern_agent_api::datastore::DataStoreError;
use tern_agent_api::prelude::{join_uri, AgentError, DataStore};

pub use tern_agent_api::local_process::{last, log_line, Stream, STDERR_MARKER};

pub fn stdout_uri(output_prefix: &str) -> String {
    join_uri(output_prefix, "logs/stdout.txt")
}

pub fn stderr_uri(output_prefix: &str) -> String {
    join_uri(output_prefix, "logs/stderr.txt")
}

/// The most recent lines of a running command, bounded.
#[derive(Debug)]
pub struct LogBuffer {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    lines: VecDeque<admin::LogLine>,
    finished: bool,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, stream: Stream, text: &str) {
        let line = log_line(stream, text, Some(prost_types::Timestamp::from(SystemTime::now())));
        let mut inner = self.lock();
        if inner.lines.len() == self.capacity {
            inner.lines.pop_front();
        }
        inner.lines.push_back(line);
    }

    /// The last `n` lines (`0`: all kept).
    pub fn tail(&self, n: u64) -> Vec<admin::LogLine> {
        last(self.lock().lines.iter().cloned().collect(), n)
    }

    /// Marks the logs as stored in the data store, which is from now on their source.
    pub fn finish(&self) {
        self.lock().finished = true;
    }

    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }
}

/// The stored logs of a finished command; empty when none were stored.
pub async fn from_store(store: &dyn DataStore, output_prefix: &str, n: u64) -> Result<Vec<admin::LogLine>, AgentError> {
    let mut lines = Vec::new();
    for (stream, uri) in [(Stream::Stdout, stdout_uri(output_prefix)), (Stream::Stderr, stderr_uri(output_prefix))] {
        let bytes = match store.read(&uri).await {
            Ok(b) => b,
            Err(DataStoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8_lossy(&bytes);
        lines.extend(text.lines().map(|l| log_line(stream, l, None)));
    }
    Ok(last(lines, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_keeps_the_latest_lines_marked_by_stream() {
        let buf = LogBuffer::new(3);
        for i in 0..4 {
            buf.push(Stream::Stdout, &format!("out{i}"));
        }
        buf.push(Stream::Stderr, "bad");
        let all: Vec<String> = buf.tail(0).into_iter().map(|l| l.message).collect();
        assert_eq!(all, ["out2", "out3", "[stderr] bad"]);
        let tail = buf.tail(1);
        assert_eq!(tail[0].message, "[stderr] bad");
        assert_eq!(tail[0].originator, admin::LogLineOriginator::User as i32);
        assert!(tail[0].timestamp.is_some());
    }
}
