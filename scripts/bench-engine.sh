#!/usr/bin/env bash
# The engine benchmark (docs/benchmarks.md, "Engine: per-node overhead and memory"): a no-op DAG
# through the engine (echo agent, SQLite state and data store on disk) against flytekit's local
# execution of the same DAG shape, memory per in-flight sleep task, and the disk's floor.
#
#   scripts/bench-engine.sh                        # BENCH_NODES=1000,10000 BENCH_RUNS=3 BENCH_INFLIGHT=100000
#   BENCH_NODES=100000 BENCH_INFLIGHT=0 scripts/bench-engine.sh
#
# Knobs: see core-engine/benches/engine/main.rs. Needs taskset and the test virtualenv
# (run scripts/test.sh once first).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v taskset >/dev/null || { echo "bench-engine.sh: taskset (util-linux) is required" >&2; exit 1; }
export TERN_PYTHON="${TERN_PYTHON:-${TERN_VENV:-$HOME/.cache/tern/venv}/bin/python}"
[[ -x "$TERN_PYTHON" ]] || { echo "bench-engine.sh: $TERN_PYTHON missing: run scripts/test.sh once to create the virtualenv" >&2; exit 1; }
cargo bench -p tern-core-engine --bench engine
