#!/usr/bin/env bash
# The gateway benchmark (docs/benchmarks.md): tern serve vs the machine's bare HTTP/2 floor vs
# flytekit's connector server, pinned (servers on CPU 1, h2load on CPU 0), in one run.
#
#   scripts/bench.sh                 # BENCH_RUNS=3 by default; see benches/gateway.rs for knobs
#
# Installs h2load (Debian nghttp2-client) when missing, reuses the test virtualenv for flytekit
# (run scripts/test.sh once first), builds the release binaries, runs the benchmark.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v h2load >/dev/null 2>&1; then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nghttp2-client
fi
command -v taskset >/dev/null || { echo "bench.sh: taskset (util-linux) is required" >&2; exit 1; }
export TERN_PYFLYTE="${TERN_PYFLYTE:-${TERN_VENV:-$HOME/.cache/tern/venv}/bin/pyflyte}"
[[ -x "$TERN_PYFLYTE" ]] || { echo "bench.sh: $TERN_PYFLYTE missing: run scripts/test.sh once to create the virtualenv" >&2; exit 1; }
if [[ $(nproc) -lt 2 ]]; then echo "bench.sh: needs 2 CPUs (server and load generator pinned apart)" >&2; exit 1; fi
cargo build --release --example h2-floor
cargo bench --bench gateway
