#!/usr/bin/env bash
# The bounded overload run of `tern serve` (docs/benchmarks.md, "Overload"): floods a gateway
# with max_in_flight = OVERLOAD_LIMIT (8) with 10× and 100× that many calls at once, a fixed
# OVERLOAD_REQUESTS (4000) per flood, towards a slow webhook endpoint; counts the answers and
# reads the server's peak RSS; then cuts a flood with SIGTERM. Server on CPU 1, client on CPU 0.
#
#   scripts/overload.sh              # debug build (what CI has); --release for release
#
# Knobs (env): OVERLOAD_LIMIT, OVERLOAD_FACTORS ("10,100"), OVERLOAD_REQUESTS, OVERLOAD_SLOW_MS (200),
# OVERLOAD_CLIENT_TIMEOUT_S (60), OVERLOAD_SERVER_CPU (1), OVERLOAD_LOAD_CPU (0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v taskset >/dev/null || { echo "overload.sh: taskset (util-linux) is required" >&2; exit 1; }
if [[ $(nproc) -lt 2 ]]; then echo "overload.sh: needs 2 CPUs (server and client pinned apart)" >&2; exit 1; fi
profile=debug; flags=()
if [[ "${1:-}" == "--release" ]]; then profile=release; flags=(--release); fi
target="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build "${flags[@]}" --bin tern
cargo build "${flags[@]}" -p tern-gateway --example overload_flood
TERN_BIN="$target/$profile/tern" exec taskset -c "${OVERLOAD_LOAD_CPU:-0}" "$target/$profile/examples/overload_flood"
