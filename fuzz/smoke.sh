#!/usr/bin/env bash
# CI smoke run of the fuzz targets (see fuzz/README.md): builds every target
# once, then runs each over its committed corpus plus new inputs for a short,
# bounded time. Fails on any crash, panic, timeout or out-of-memory; prints
# one line per target.
#
# Environment:
#   PEERGROUP_FUZZ_TARGET  cargo target directory
#                          (default: $HOME/.cache/peergroup/fuzz-target)
#   PEERGROUP_FUZZ_RUNS    executions per target (default 20000)
#   PEERGROUP_FUZZ_SECS    seconds per target at most (default 15)
#
# The committed corpus is read, never written: new inputs go to a scratch
# directory that is deleted afterwards. A crash's reproducer is left in
# fuzz/artifacts/<target>/ (ignored by git).
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

export CARGO_TARGET_DIR="${PEERGROUP_FUZZ_TARGET:-$HOME/.cache/peergroup/fuzz-target}"
# cargo-fuzz passes nightly-only flags; the targets are safe Rust, so the
# stable compiler with RUSTC_BOOTSTRAP and no sanitizer is enough.
export RUSTC_BOOTSTRAP=1
runs="${PEERGROUP_FUZZ_RUNS:-20000}"
secs="${PEERGROUP_FUZZ_SECS:-15}"

# cargo fuzz has no --locked: check fuzz/Cargo.lock is current first, so the
# build below cannot change it.
cargo fetch --locked --quiet
cargo fuzz build -s none -a

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    start="$(date +%s%N)"
    if cargo fuzz run "$target" -s none -a "$scratch/$target" "corpus/$target" -- \
        -runs="$runs" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        ms="$((($(date +%s%N) - start) / 1000000))"
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        files="$(find "corpus/$target" -type f | wc -l)"
        echo "fuzz $target: ok, ${execs:-?} executions in ${ms} ms (corpus: $files files)"
    else
        echo "fuzz $target: FAILED (log below; reproducer in fuzz/artifacts/$target/)"
        grep -m 1 -A 2 "panicked at" "$log" || true
        grep -E "^(SUMMARY|==[0-9]+== ERROR)|Test unit written|^Base64" "$log" || true
        echo "--- last lines of the log:"
        tail -n 40 "$log"
        status=1
    fi
done
exit "$status"
