//! Which GPUs this host has: [`GpuInventory`], read through NVML ([`NvmlInventory`]) or
//! given ([`FixedInventory`], for tests and `fake_devices`).
//!
//! NVML (`libnvidia-ml.so.1`, part of the NVIDIA driver) is loaded at run time by
//! nvml-wrapper: the agent builds and starts on hosts without it, and such a host has no
//! GPU, with the loader's reason. MIG instances are not listed by [`NvmlInventory`] (only
//! whole GPUs), so a task asking for a partition finds none there.
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// One device a job can be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDevice {
    /// NVML index (the CUDA index when `CUDA_DEVICE_ORDER=PCI_BUS_ID`).
    #[serde(default)]
    pub index: u32,
    /// NVML UUID (`GPU-…`, `MIG-…`): what `CUDA_VISIBLE_DEVICES` gets.
    pub uuid: String,
    /// The product name NVML reports, e.g. `Tesla T4`, `NVIDIA A100-SXM4-40GB`.
    pub name: String,
    /// Total memory in bytes (0 when unknown).
    #[serde(default)]
    pub memory_bytes: u64,
    /// The MIG profile of a partition (`1g.5gb`); `None` for a whole GPU.
    #[serde(default)]
    pub partition: Option<String>,
}

impl GpuDevice {
    /// `0: Tesla T4 (GPU-…)`.
    pub fn describe(&self) -> String {
        let partition = self.partition.as_ref().map(|p| format!(" partition {p}")).unwrap_or_default();
        format!("{}: {}{partition} ({})", self.index, self.name, self.uuid)
    }
}

/// The host's devices, or why there are none.
pub trait GpuInventory: Send + Sync {
    /// Every device, or the reason the host has none that can be used (NVML cannot load).
    /// An empty list is a host without GPUs too.
    fn devices(&self) -> Result<Vec<GpuDevice>, String>;
    /// Where the list comes from, for messages (`NVML`, `fake_devices (test only)`).
    fn source(&self) -> &str;
}

/// A fixed list of devices.
#[derive(Debug, Clone, Default)]
pub struct FixedInventory {
    devices: Vec<GpuDevice>,
    source: String,
}

impl FixedInventory {
    pub fn new(devices: Vec<GpuDevice>, source: impl Into<String>) -> Self {
        Self { devices, source: source.into() }
    }
}

impl GpuInventory for FixedInventory {
    fn devices(&self) -> Result<Vec<GpuDevice>, String> {
        Ok(self.devices.clone())
    }

    fn source(&self) -> &str {
        &self.source
    }
}

/// The devices NVML lists, read once (at the first use) and kept: the devices of a host do
/// not change while the gateway runs (a driver reload needs a gateway restart).
#[derive(Debug, Default)]
pub struct NvmlInventory {
    cached: OnceLock<Result<Vec<GpuDevice>, String>>,
}

impl NvmlInventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads NVML now (not cached).
    pub fn query() -> Result<Vec<GpuDevice>, String> {
        use nvml_wrapper::Nvml;
        let nvml = Nvml::init().map_err(|e| {
            format!("NVML cannot be loaded ({e}): this host has no NVIDIA driver (libnvidia-ml.so.1), or it does not work")
        })?;
        let count = nvml.device_count().map_err(|e| format!("NVML cannot count the devices: {e}"))?;
        let mut devices = Vec::new();
        for index in 0..count {
            let device = nvml.device_by_index(index).map_err(|e| format!("NVML cannot open device {index}: {e}"))?;
            let uuid = device.uuid().map_err(|e| format!("NVML cannot read device {index}'s UUID: {e}"))?;
            let name = device.name().unwrap_or_else(|_| "unknown NVIDIA GPU".into());
            let memory_bytes = device.memory_info().map(|m| m.total).unwrap_or(0);
            devices.push(GpuDevice { index, uuid, name, memory_bytes, partition: None });
        }
        Ok(devices)
    }
}

impl GpuInventory for NvmlInventory {
    fn devices(&self) -> Result<Vec<GpuDevice>, String> {
        self.cached.get_or_init(Self::query).clone()
    }

    fn source(&self) -> &str {
        "NVML"
    }
}

/// The inventory an agent uses.
pub type SharedInventory = Arc<dyn GpuInventory>;

/// Lower-case alphanumeric words of a device name (`NVIDIA A100-SXM4-40GB` → `nvidia a100 sxm4 40gb`).
fn words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// Vendor words that say nothing about the model.
const VENDOR_WORDS: &[&str] = &["nvidia", "tesla", "geforce", "gpu"];

/// Whether `device` is of the accelerator type flytekit names (`nvidia-tesla-t4`, `nvidia-a100`,
/// `nvidia-h100-80gb`, as in `flytekit.extras.accelerators`): every model word of the name
/// (vendor words dropped) is a word of the device's NVML name. `nvidia-tesla-a100` matches
/// `NVIDIA A100-SXM4-40GB`; `nvidia-a10` does not.
pub fn matches_accelerator(device: &GpuDevice, accelerator: &str) -> bool {
    let have = words(&device.name);
    let want: Vec<String> = words(accelerator).into_iter().filter(|w| !VENDOR_WORDS.contains(&w.as_str())).collect();
    !want.is_empty() && want.iter().all(|w| have.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str) -> GpuDevice {
        GpuDevice { index: 0, uuid: "GPU-x".into(), name: name.into(), memory_bytes: 0, partition: None }
    }

    #[test]
    fn accelerator_names_match_nvml_names_by_model_words() {
        let cases = [
            ("Tesla T4", "nvidia-tesla-t4", true),
            ("NVIDIA A100-SXM4-40GB", "nvidia-tesla-a100", true),
            ("NVIDIA A100-SXM4-80GB", "nvidia-a100-80gb", true),
            ("NVIDIA A100-SXM4-40GB", "nvidia-a100-80gb", false),
            ("NVIDIA A100-SXM4-40GB", "nvidia-a10", false),
            ("NVIDIA A10", "nvidia-a10", true),
            ("NVIDIA H100 80GB HBM3", "nvidia-h100", true),
            ("NVIDIA L4", "nvidia-l4", true),
            ("NVIDIA L4", "nvidia-tesla", false),
            ("Tesla T4", "", false),
        ];
        for (name, accelerator, want) in cases {
            assert_eq!(matches_accelerator(&device(name), accelerator), want, "{name} vs {accelerator}");
        }
    }

    /// On a host without the NVIDIA driver (this project's machines and CI) NVML does not
    /// load, and the reason says so; on a GPU host (scripts/gpu-check.sh) NVML lists devices.
    #[test]
    fn nvml_without_a_driver_is_a_host_without_gpus_with_the_reason() {
        let inventory = NvmlInventory::new();
        let driver = std::path::Path::new("/proc/driver/nvidia").exists();
        match inventory.devices() {
            Err(reason) => {
                assert!(!driver, "the NVIDIA driver is loaded, but NVML fails: {reason}");
                assert!(reason.contains("NVML cannot be loaded") && reason.contains("no NVIDIA driver"), "{reason}");
            }
            Ok(devices) => assert!(driver, "NVML lists {} device(s) without the driver loaded", devices.len()),
        }
        assert_eq!(inventory.source(), "NVML");
    }
}
