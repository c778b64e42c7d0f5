#!/usr/bin/env bash
# The GPU agent's real path, for a host with an NVIDIA GPU and driver (this project's CI machines have none: their
# tests use an injected inventory). Builds the agent, lists the devices NVML shows through the agent's own
# inventory (agents/gpu/examples/gpu_inventory.rs), runs the NVML unit test, then runs examples/gpu/gpu.yaml with
# `tern run` and prints what the task saw. Exits non-zero when the host has no GPU or a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== GPUs as the gpu agent's NVML inventory sees them"
cargo run -q -p tern-agent-gpu --example gpu-inventory

echo "== NVML unit test (the driver is loaded, so NVML must list devices)"
cargo test -q -p tern-agent-gpu --lib nvml

echo "== a one-GPU task through tern run (examples/gpu/gpu.yaml)"
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
config="$state/gpu.toml"
printf '[agents.gpu]\nenabled = true\nstate_dir = "%s"\n' "$state/gpu" >"$config"
# The example asks for a T4; on other models ask for any GPU.
workflow="$state/gpu.yaml"
sed '/accelerator:/d' examples/gpu/gpu.yaml >"$workflow"
cargo run -q --bin tern -- run "$workflow" --config "$config"
echo "== what the task printed"
cat "$state"/gpu/jobs/*/stdout.txt
grep -q '^CUDA_VISIBLE_DEVICES=GPU-' "$state"/gpu/jobs/*/stdout.txt
echo "gpu-check: OK"
