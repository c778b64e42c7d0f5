//! Recognising a job's processes in the process table (Linux `/proc`).
//!
//! Every process of a job (its supervisor, the local scheduler and workers, the task's
//! command and whatever it starts) inherits the environment variable
//! `TERN_DASK_JOB=<the job's directory>`. A pid recorded before a gateway restart is only taken for
//! the job's when the process still carries it: a pid reused by another program is never
//! mistaken for the job, nor killed.
use std::path::Path;

/// The variable marking a job's processes.
pub const JOB_VAR: &str = "TERN_DASK_JOB";

fn marker(job: &str) -> Vec<u8> {
    format!("{JOB_VAR}={job}").into_bytes()
}

/// Whether `pid` is a live (not zombie) process of `job`.
pub fn is_job_process(pid: u32, job: &str) -> bool {
    carries(Path::new(&format!("/proc/{pid}")), &marker(job))
}

fn carries(proc_dir: &Path, marker: &[u8]) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if !matches!(state, Some(s) if s != "Z" && s != "X" && s != "x") {
        return false;
    }
    let Ok(environ) = std::fs::read(proc_dir.join("environ")) else { return false };
    environ.split(|b| *b == 0).any(|kv| kv == marker)
}

/// Every live process of `job` (including ones that left its process group).
pub fn job_processes(job: &str) -> Vec<u32> {
    let marker = marker(job);
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| *pid != std::process::id() && carries(Path::new(&format!("/proc/{pid}")), &marker))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_a_process_by_its_marker_only() {
        let mut child = std::process::Command::new("sleep").arg("30").env(JOB_VAR, "job-under-test").spawn().unwrap();
        let pid = child.id();
        // Between fork and exec the child still has this process's environment.
        let started = std::time::Instant::now();
        while !is_job_process(pid, "job-under-test") {
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "the marked child is never recognised");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!is_job_process(pid, "job-under"), "a prefix is another job");
        assert!(!is_job_process(std::process::id(), "job-under-test"));
        assert_eq!(job_processes("job-under-test"), [pid]);
        child.kill().unwrap();
        // A zombie (killed, not yet reaped) is not alive.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!is_job_process(pid, "job-under-test"));
        child.wait().unwrap();
        assert!(!is_job_process(pid, "job-under-test"));
    }
}
