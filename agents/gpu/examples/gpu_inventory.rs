//! Lists this host's GPUs as the gpu agent sees them (NVML), for `scripts/gpu-check.sh`.
//! Exits 1 when the host has none (with NVML's reason).
use tern_agent_gpu::inventory::{GpuInventory, NvmlInventory};

fn main() {
    let inventory = NvmlInventory::new();
    match inventory.devices() {
        Ok(devices) if !devices.is_empty() => {
            println!("{} GPU(s) listed by {}:", devices.len(), inventory.source());
            for d in &devices {
                println!("  {}  memory {} MiB", d.describe(), d.memory_bytes >> 20);
            }
        }
        Ok(_) => {
            println!("no GPU: {} lists no device", inventory.source());
            std::process::exit(1);
        }
        Err(reason) => {
            println!("no GPU: {reason}");
            std::process::exit(1);
        }
    }
}
