//! Pieces shared by the agents that run commands on the gateway's host (`shell`, `dask`):
//! captured output as `GetTaskLogs` lines, the end of a log file for failure messages, and
//! killing a process group.
//!
//! Every log line has originator USER; stderr lines start with [`STDERR_MARKER`].
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::proto::flyteidl::admin;

pub const STDERR_MARKER: &str = "[stderr] ";

/// How many bytes [`tail_lines`] reads at most from the end of a file.
pub const TAIL_BYTES: u64 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a command's output as `GetTaskLogs` returns it.
pub fn log_line(stream: Stream, text: &str, timestamp: Option<prost_types::Timestamp>) -> admin::LogLine {
    let message = match stream {
        Stream::Stdout => text.to_owned(),
        Stream::Stderr => format!("{STDERR_MARKER}{text}"),
    };
    admin::LogLine { timestamp, message, originator: admin::LogLineOriginator::User as i32 }
}

/// The last `n` items (`n == 0`: all of them).
pub fn last<T>(mut items: Vec<T>, n: u64) -> Vec<T> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > 0 && items.len() > n {
        items.drain(..items.len() - n);
    }
    items
}

/// The last `max_lines` lines of the last `max_bytes` of a text file (`max_lines == 0`:
/// every line in that window); empty when the file cannot be read. A line cut by the
/// window is dropped.
pub fn tail_lines(path: &Path, max_lines: usize, max_bytes: u64) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end_matches('\r').to_owned()).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    last(lines, max_lines as u64)
}

/// `"; last lines of <what>:\n…"` with the end of the file at `path`, for failure
/// messages; empty when the file is empty or unreadable.
pub fn tail_message(path: &Path, what: &str, max_lines: usize) -> String {
    let tail = tail_lines(path, max_lines, TAIL_BYTES);
    if tail.is_empty() {
        return String::new();
    }
    format!("; last lines of {what}:\n{}", tail.join("\n"))
}

/// Sends SIGKILL to every process of the process group `pgid`. Ids 0 and 1 (this
/// process's own group, init) are refused. Returns whether the signal was delivered.
pub fn kill_group(pgid: u32) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else { return false };
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses a group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) == 0 }
}

/// Sends SIGKILL to one process (ids 0 and 1 refused). Returns whether it was delivered.
pub fn kill_process(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 1 {
        return false;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_n() {
        assert_eq!(last(vec![1, 2, 3], 2), [2, 3]);
        assert_eq!(last(vec![1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(last(vec![1], 5), [1]);
    }

    #[test]
    fn lines_are_marked_by_stream() {
        assert_eq!(log_line(Stream::Stderr, "bad", None).message, "[stderr] bad");
        let out = log_line(Stream::Stdout, "ok", None);
        assert_eq!((out.message.as_str(), out.originator), ("ok", admin::LogLineOriginator::User as i32));
    }

    #[test]
    fn tails_read_the_end_of_a_file() {
        let dir = std::env::temp_dir().join(format!("tern-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("log.txt");
        std::fs::write(&f, "a\nb\r\nc\n").unwrap();
        assert_eq!(tail_lines(&f, 2, TAIL_BYTES), ["b", "c"]);
        assert_eq!(tail_lines(&f, 0, 4), ["c"], "the line cut by the window is dropped");
        assert_eq!(tail_message(&f, "stderr", 1), "; last lines of stderr:\nc");
        assert!(tail_message(&dir.join("missing"), "stderr", 5).is_empty());
        assert!(!kill_group(0) && !kill_group(1) && !kill_process(0), "never this group or init");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
