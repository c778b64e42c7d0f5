//! Shared by the GPU agent's tests (and gateway/tests/gpu_conformance.rs): the "peer" is this host
//! — real supervised processes — with an injected device inventory (the machines that run the tests
//! have no GPU; the real NVML path is checked by scripts/gpu-check.sh on a GPU host). Jobs are counted
//! by what really ran: counted commands append a line to a file.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tern_agent_api::core;
use tern_agent_gpu::config::{GpuConfig, GpuSettings};
use tern_agent_gpu::inventory::{FixedInventory, GpuDevice};
use tern_agent_gpu::TASK_TYPE;

/// A fake device.
pub fn device(index: u32, name: &str) -> GpuDevice {
    GpuDevice { index, uuid: format!("GPU-fake-{index}"), name: name.into(), memory_bytes: 16 << 30, partition: None }
}

/// `n` fake Tesla T4s.
pub fn t4s(n: u32) -> Vec<GpuDevice> {
    (0..n).map(|i| device(i, "Tesla T4")).collect()
}

/// Settings for tests: job records under `state_dir`, these devices.
pub fn settings(state_dir: &Path, devices: Vec<GpuDevice>) -> GpuSettings {
    let config = GpuConfig { state_dir: state_dir.to_owned(), ..Default::default() };
    GpuSettings::with_inventory(
        &config,
        &tern_agent_api::factory::HostResources::detect(),
        Arc::new(FixedInventory::new(devices, "the test's inventory")),
    )
}

/// A GPU task running `/bin/sh -c script`, asking for `gpus` devices (container resources) of the
/// accelerator type `accelerator` (extended resources) when given.
pub fn template(script: &str, gpus: Option<&str>, accelerator: Option<&str>) -> core::TaskTemplate {
    let gpu = |v: &str| core::resources::ResourceEntry { name: core::resources::ResourceName::Gpu as i32, value: v.into() };
    core::TaskTemplate {
        r#type: TASK_TYPE.into(),
        target: Some(core::task_template::Target::Container(core::Container {
            image: "ghcr.io/flyteorg/flytekit:py3.11-1.16.31".into(),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![core::KeyValuePair { key: "TERN_TEST".into(), value: "1".into() }],
            resources: Some(core::Resources { requests: gpus.map(gpu).into_iter().collect(), limits: gpus.map(gpu).into_iter().collect() }),
            ..Default::default()
        })),
        extended_resources: accelerator.map(|a| core::ExtendedResources {
            gpu_accelerator: Some(core::GpuAccelerator {
                device: a.into(),
                partition_size_value: Some(core::gpu_accelerator::PartitionSizeValue::Unpartitioned(true)),
            }),
            shared_memory: None,
        }),
        interface: Some(core::TypedInterface::default()),
        ..Default::default()
    }
}

/// A script that records the devices it was given in `devices`, appends a line to `runs`, then waits
/// until `release` exists (at most `max_wait`).
pub fn counted_script(runs: &Path, devices: &Path, release: Option<&Path>) -> String {
    let wait = match release {
        Some(r) => format!("i=0; while [ ! -e '{}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ", r.display()),
        None => String::new(),
    };
    format!(
        "printf '%s\\n' \"$CUDA_VISIBLE_DEVICES\" > '{}'; echo run >> '{}'; echo tern-gpu-ok; {wait}exit 0",
        devices.display(),
        runs.display()
    )
}

pub const FAIL_SCRIPT: &str = "echo 'tern-fail: starting'; echo 'tern-fail: about to exit 3' >&2; exit 3";
pub const SLOW_SCRIPT: &str = "echo tern-slow; sleep 600";

pub fn lines(path: &Path) -> u64 {
    std::fs::read_to_string(path).map(|t| t.lines().count() as u64).unwrap_or(0)
}

/// The conformance kit's case, shared by the in-process run (agents/gpu/tests/conformance.rs) and the gRPC
/// one (gateway/tests/gpu_conformance.rs): every run of the successful task appends a line to `runs`, so
/// jobs are counted by what really ran. Each task asks for one T4. The caller binds the agent.
pub fn conformance_case(runs: &Path, devices_seen: &Path) -> tern_agent_api::testkit::Case {
    use tern_agent_api::core::LiteralMap;
    let counted = runs.to_owned();
    tern_agent_api::testkit::Case::new(
        template(&counted_script(runs, devices_seen, None), Some("1"), Some("nvidia-tesla-t4")),
        LiteralMap::default(),
    )
    // Exits 3: EXITED_N → FAILED with TERN-U004.
    .failing(template(FAIL_SCRIPT, Some("1"), None), LiteralMap::default())
    // Sleeps 600 s: RUNNING when deleted, then KILLED → ABORTED.
    .long_running(template(SLOW_SCRIPT, Some("1"), None), LiteralMap::default())
    .count_jobs(move || {
        let n = lines(&counted);
        async move { n }
    })
    .poll_interval(Duration::from_millis(100))
    .settle(Duration::from_millis(300))
    .poll_timeout(Duration::from_secs(30))
}
