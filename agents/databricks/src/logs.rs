//! `GetTaskLogs`: the output Databricks keeps of the run's task runs (`runs/get-output`:
//! stdout/stderr of Python tasks, the last 5 MB; the error and its trace), and the run
//! page as the log link.
use tern_agent_api::prelude::*;

use crate::client::{Run, RunOutput};

/// The name of the log link (flytekit's).
pub const CONSOLE_LINK_NAME: &str = "Databricks Console";

/// The run's page: Databricks' `run_page_url`, else flytekit's form of it.
pub fn console_link(run: &Run, base: &str, run_id: u64) -> core::TaskLog {
    let uri = match run.run_page_url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(u) => u.to_owned(),
        None => match run.job_id {
            Some(job) => format!("{base}/#job/{job}/run/{run_id}"),
            None => format!("{base}/#job/run/{run_id}"),
        },
    };
    core::TaskLog { uri, name: CONSOLE_LINK_NAME.into(), ..Default::default() }
}

/// The task runs whose output to read: the run's tasks, else the run itself.
pub fn task_run_ids(run: &Run, run_id: u64) -> Vec<u64> {
    let ids: Vec<u64> = run.tasks.iter().filter_map(|t| t.run_id).collect();
    if ids.is_empty() {
        vec![run_id]
    } else {
        ids
    }
}

/// The lines of one task run's output.
pub fn output_lines(output: &RunOutput) -> Vec<admin::LogLine> {
    let line = |message: &str, originator: admin::LogLineOriginator| admin::LogLine {
        timestamp: None,
        message: message.to_owned(),
        originator: originator as i32,
    };
    let mut lines: Vec<admin::LogLine> = Vec::new();
    if let Some(logs) = &output.logs {
        lines.extend(logs.lines().map(|l| line(l, admin::LogLineOriginator::User)));
    }
    if output.logs_truncated == Some(true) {
        lines.push(line("(Databricks keeps only the last 5 MB of a task's output)", admin::LogLineOriginator::System));
    }
    if let Some(result) = output.notebook_output.as_ref().and_then(|n| n.get("result")).and_then(|r| r.as_str()) {
        lines.push(line(&format!("notebook result: {result}"), admin::LogLineOriginator::User));
    }
    if let Some(error) = output.error.as_deref().filter(|e| !e.trim().is_empty()) {
        lines.push(line(&format!("error: {error}"), admin::LogLineOriginator::System));
    }
    if let Some(trace) = &output.error_trace {
        lines.extend(trace.lines().map(|l| line(l, admin::LogLineOriginator::System)));
    }
    lines
}

/// One page of `all`: from line `token` (empty = 0), at most `max` lines (0 = all).
pub fn page(all: Vec<admin::LogLine>, token: &str, max: u64) -> Result<LogPage, AgentError> {
    LogPage::from_lines(all, token, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_pages() {
        let out = RunOutput {
            logs: Some("a\nb\nc".into()),
            error: Some("Task exited with code 3".into()),
            error_trace: Some("t1\nt2".into()),
            ..Default::default()
        };
        let all = output_lines(&out);
        assert_eq!(all.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "error: Task exited with code 3", "t1", "t2"]);
        let p = page(all.clone(), "", 4).unwrap();
        assert_eq!((p.lines.len(), p.next_token.as_str()), (4, "4"));
        let p = page(all.clone(), &p.next_token, 4).unwrap();
        assert_eq!((p.lines.len(), p.next_token.as_str()), (2, ""));
        assert_eq!(page(all.clone(), "", 0).unwrap().lines.len(), 6);
        assert!(page(all, "x", 1).is_err());
    }

    #[test]
    fn console_links() {
        let run = Run { job_id: Some(7), ..Default::default() };
        assert_eq!(console_link(&run, "https://w", 9).uri, "https://w/#job/7/run/9");
        let run = Run { run_page_url: Some("https://w/?o=1#job/7/run/9".into()), ..Default::default() };
        assert_eq!(console_link(&run, "https://w", 9).uri, "https://w/?o=1#job/7/run/9");
        assert_eq!(task_run_ids(&Run::default(), 5), [5]);
    }
}
