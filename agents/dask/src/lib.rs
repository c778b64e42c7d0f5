//! The `dask` agent (task type `dask`, version 0, async): runs a Dask task's command on
//! the gateway's host against a Dask scheduler — the configured one
//! (`scheduler_address`, `DASK_SCHEDULER_ADDRESS`), or an ephemeral local cluster
//! (`dask scheduler` + `dask worker` processes) sized from the task's `DaskJob`.
//!
//! **It runs whatever the task template's container command says, with the gateway's
//! user rights** (`Exposure::ArbitraryCode`: `tern serve` serves it only with
//! `enabled = true`).
//!
//! flytekitplugins-dask writes `custom` = the `DaskJob` proto as JSON
//! (`{"scheduler": {...}, "workers": {"numberOfWorkers": 2.0, "resources": {...}}}`) and
//! `container.args` = `pyflyte-execute …`, rendered by the engine before CreateTask. The
//! agent runs that command in a supervised process (see [`jobs`] and `supervisor.sh`)
//! with `DASK_SCHEDULER_ADDRESS` set, so `distributed.Client()` in the task finds the
//! cluster. A local cluster has `numberOfWorkers` worker processes with the worker CPU
//! limit (else request, rounded up) as threads each and the worker memory limit (else
//! request) as `--memory-limit`; images and scheduler resources are not used.
//!
//! Job records live in `state_dir` (one directory per attempt, named by a hash of its
//! idempotency key): a repeated CreateTask — concurrent, later, or after a gateway
//! restart — finds the job there and never starts a second one. The job's processes do not
//! depend on the gateway: a job keeps running while the gateway restarts, and its outcome
//! is recorded by its supervisor. States: [`states::JOB_STATES`]. DeleteTask kills the
//! job's process group (and any process carrying its marker). GetTaskLogs serves the
//! cluster's and the command's logs.
use std::sync::Arc;

use tern_agent_api::prelude::AsyncAgent;

pub mod agent;
pub mod codes;
pub mod config;
pub mod jobs;
pub mod procs;
pub mod states;
pub mod template;

pub use agent::{DaskAgent, TASK_TYPE};
pub use config::{DaskConfig, DaskFactory, DaskSettings};

/// The dask agent with default settings on this host (state in `.tern/state/dask`).
pub fn agent() -> Result<Arc<dyn AsyncAgent>, tern_agent_api::prelude::AgentError> {
    let settings = DaskSettings::resolve(&DaskConfig::default(), &tern_agent_api::factory::HostResources::detect());
    Ok(Arc::new(DaskAgent::new(settings)?))
}
