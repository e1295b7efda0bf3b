#!/usr/bin/env bash
# Runs every fuzz target for a bounded time from its committed seeds; a crash fails the run
# and prints the crashing input in base64. 20 s a target, 300 s with ASCRIBE_LONG_TESTS=1.
# Used by .ci/run and tools/reliability.sh. cargo-fuzz 0.13.2 builds and runs on stable Rust
# with `-s none`.
# LIMITATION: no sanitizer (nor leak detection), since -Zsanitizer needs nightly; the targets
# catch panics, failed assertions and inputs slower than 10 s, and the workspace forbids
# unsafe code.
set -euo pipefail
cd "$(dirname "$0")"

seconds=20
if [ "${ASCRIBE_LONG_TESTS:-}" = "1" ]; then
    seconds=300
fi
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz 0.13.2" ]; then
    echo "fuzz: installing cargo-fuzz 0.13.2" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
# cargo fuzz passes no --locked: fail here if Cargo.lock would have to change.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build -s none
for target in $(cargo fuzz list); do
    log="target/$target.log"
    mkdir -p "corpus/$target"
    if ! cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" \
        -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        for crash in artifacts/"$target"/*; do
            [ -f "$crash" ] && echo "fuzz: $target input $crash: $(base64 -w0 "$crash")" >&2
        done
        echo "fuzz: target $target failed" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "reliability: test=fuzz_$target store=- seconds=$seconds runs=${runs:-0} crashes=0"
done
