#!/usr/bin/env bash
# Runs the reliability and security tests and the fuzz targets, and collects the figures each
# prints (`reliability: test=... key=value ...`) into target/reliability/summary.md.
#
#   tools/reliability.sh          the fast versions, as CI runs them (a few minutes)
#   tools/reliability.sh --long   the long versions: 20 crash rounds a store, a 10-minute soak
#                                 a store, 300 s a fuzz target (about an hour on 2 cores)
#
# Needs what the test suite needs (PostgreSQL on 127.0.0.1:5432 or ASCRIBE_TEST_POSTGRES) and
# root: the disk-full case mounts a small tmpfs, and the PostgreSQL restart case runs a
# private cluster as the `postgres` user. See docs/reliability.md for what each test proves.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    "") ;;
    --long) export ASCRIBE_LONG_TESTS=1 ;;
    *) echo "usage: tools/reliability.sh [--long]" >&2; exit 2 ;;
esac
export ASCRIBE_TEST_POSTGRES="${ASCRIBE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"

out=target/reliability
mkdir -p "$out"
log="$out/log.txt"
: >"$log"

# Each test binary in turn; a test prints its figures on stderr, which cargo shows only with
# --nocapture.
run_tests() {
    local package=$1
    shift
    local target
    for target in "$@"; do
        echo "reliability.sh: $package --test $target" >&2
        cargo test --locked -q -p "$package" --test "$target" -- --nocapture 2>&1 | tee -a "$log"
    done
}

run_tests ascribe-store crash tamper two_writers
run_tests ascribe-gateway bad_input
run_tests ascribe crash two_gateways storage_faults upstream_faults soak tamper_end_to_end access
fuzz/run.sh 2>&1 | tee -a "$log"

summary="$out/summary.md"
{
    echo "# Reliability figures ($(date -u +%Y-%m-%dT%H:%M:%SZ), long=${ASCRIBE_LONG_TESTS:-0})"
    echo
    # Tests run in parallel, so a figures line may follow another test's output on the same
    # line; each is taken from where it starts, once.
    grep -o 'reliability: test=.*' "$log" | awk '!seen[$0]++' | sed 's/^reliability: /- /'
} >"$summary"
cat "$summary"
