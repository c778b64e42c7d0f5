//! The `gpu` agent (task type `gpu`, version 0, async): runs a GPU task's command on the
//! gateway's host with the devices it asks for, assigned from the host's inventory (NVML)
//! through `CUDA_VISIBLE_DEVICES`.
//!
//! **It runs whatever the task template's container command says, with the gateway's
//! user rights** (`Exposure::ArbitraryCode`: `tern serve` serves it only with
//! `enabled = true`).
//!
//! Demand ([`template`]): `extended_resources.gpu_accelerator` (flytekit's `accelerator=`:
//! device type and MIG partition) and the container's `GPU` resource (`Resources(gpu=…)`).
//! Inventory ([`inventory`]): [`inventory::NvmlInventory`] (libnvidia-ml loaded at run time;
//! a host without it has no GPU, with the reason), or an injected one. A request the host
//! can never serve (no GPU, fewer devices of the kind than asked) is refused at create with
//! a user error naming what was asked and what exists; one that must wait for busy devices
//! is `QUEUED` (first come, first served; the message gives its place) and started when
//! devices free up (at the next create, get or delete of any job).
//!
//! Job records live in `state_dir` ([`jobs`]): a repeated create — concurrent, later, or after
//! a gateway restart — attaches to its job; device assignments are recorded with the job, so
//! a restarted gateway knows which devices its running jobs hold. States:
//! [`states::JOB_STATES`]. DeleteTask kills the job's process group (or takes it out of the
//! queue) and frees its devices. GetTaskLogs serves the command's stdout and stderr.
pub mod agent;
pub mod codes;
pub mod config;
pub mod inventory;
pub mod jobs;
pub mod states;
pub mod template;

pub use agent::{GpuAgent, TASK_TYPE};
pub use config::{GpuConfig, GpuFactory, GpuSettings};
pub use inventory::{FixedInventory, GpuDevice, GpuInventory, NvmlInventory};
