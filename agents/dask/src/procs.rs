//! Recognising a job's processes (see [`tern_agent_api::job_dir`]).
//!
//! Every process of a job (its supervisor, the local scheduler and workers, the task's
//! command and whatever it starts) inherits the environment variable
//! `TERN_DASK_JOB=<the job's directory>`. A pid recorded before a gateway restart is only taken for
//! the job's when the process still carries it: a pid reused by another program is never
//! mistaken for the job, nor killed.

/// The variable marking a job's processes.
pub const JOB_VAR: &str = "TERN_DASK_JOB";

/// Whether `pid` is a live (not zombie) process of `job`.
pub fn is_job_process(pid: u32, job: &str) -> bool {
    tern_agent_api::job_dir::is_job_process(JOB_VAR, pid, job)
}

/// Every live process of `job` (including ones that left its process group).
pub fn job_processes(job: &str) -> Vec<u32> {
    tern_agent_api::job_dir::job_processes(JOB_VAR, job)
}
