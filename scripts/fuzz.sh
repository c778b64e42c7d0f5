#!/usr/bin/env bash
# Runs one fuzz target: scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
#
# Targets (fuzz/fuzz_targets/): grpc_request, resource_meta, literal, workflow, tern_toml, input_text;
# `scripts/fuzz.sh list` prints them. Their bodies are fuzz/harness.rs; tests/fuzz_corpus.rs replays the committed
# corpora (fuzz/corpus/<target>/) through the same bodies on stable, in the normal `cargo test`.
#
# Needs the nightly toolchain (`rustup toolchain install nightly`). Installs a pinned cargo-fuzz into
# ${TERN_CACHE:-$HOME/.cache/tern}/cargo-fuzz when missing. Builds into ${CARGO_TARGET_DIR:-target/fuzz-nightly}
# (nightly artifacts, kept apart from the stable target dir). A crash, a timeout (-timeout, per input) and running
# out of memory (-rss_limit_mb) all fail the run; libFuzzer writes the input to fuzz/artifacts/<target>/.
# New inputs go to a scratch corpus (fuzz/corpus-new/<target>/, not committed) seeded from the committed one;
# minimize them into fuzz/corpus/<target>/ with `cargo fuzz cmin` before committing.
#
# Environment: FUZZ_SANITIZER (default none: the code is safe Rust, so AddressSanitizer mostly halves the
# executions; set `address` to use it), FUZZ_RSS_MB (default 2048), FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_JOBS (parallel libFuzzer processes; unset: one, in the foreground), FUZZ_RUNS (stop after this many executions,
# e.g. 10000000; SECONDS still caps the time).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_FUZZ_VERSION="0.13.1"
CACHE="${TERN_CACHE:-$HOME/.cache/tern}"
FUZZ_ROOT="$CACHE/cargo-fuzz"
TARGETS=(grpc_request resource_meta literal workflow tern_toml input_text)

usage() { echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]   (targets: ${TARGETS[*]})" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
if [[ "$1" == "list" ]]; then printf '%s\n' "${TARGETS[@]}"; exit 0; fi
[[ $# -ge 2 ]] || usage
TARGET="$1"; SECONDS_TO_RUN="$2"; shift 2
[[ " ${TARGETS[*]} " == *" $TARGET "* ]] || { echo "fuzz.sh: unknown target $TARGET" >&2; usage; }
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || usage

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 1
fi
export PATH="$FUZZ_ROOT/bin:$PATH"
if ! cargo-fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into $FUZZ_ROOT" >&2
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$FUZZ_ROOT"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/fuzz-nightly}"
# The duckdb agent links libduckdb.so, which its build script copies next to the binaries (agents/duckdb/build.rs).
HOST="$(rustc +nightly -vV | sed -n 's/^host: //p')"
export LD_LIBRARY_PATH="$CARGO_TARGET_DIR/$HOST/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

SANITIZER="${FUZZ_SANITIZER:-none}"
cd "$ROOT/fuzz"
cargo +nightly fuzz build --sanitizer "$SANITIZER" --debug-assertions "$TARGET"

mkdir -p "corpus/$TARGET" "corpus-new/$TARGET" "artifacts/$TARGET"
cargo +nightly fuzz run --sanitizer "$SANITIZER" --debug-assertions "$TARGET" "corpus-new/$TARGET" "corpus/$TARGET" -- \
    -max_total_time="$SECONDS_TO_RUN" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -timeout="${FUZZ_TIMEOUT:-10}" \
    -max_len=65536 \
    ${FUZZ_JOBS:+-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"} \
    ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
    -print_final_stats=1 \
    "$@"
