#!/usr/bin/env bash
# Every Ascribe benchmark on this machine, in one command; see bench/README.md.
#
#   bench/run.sh            # full figures: about 30 minutes on 2 cores, 10 of them the soak
#   bench/run.sh --quick    # small counts, 20 s soak, 256 MiB hashing: a few minutes
#
# Writes bench/results/latest.md (tables, goals met or missed) and bench/results/latest.json
# (every figure with its setup). Logs of the run are in target/bench-run/logs.
#
# It builds `ascribe` (release) and the bench helpers (crates/ascribe-bench), and installs
# into target/ what it measures with: oha and b3sum (cargo install --locked), and LiteLLM in
# a venv. PostgreSQL must answer at BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432,
# trust auth, database `test`); each run creates and finally drops a database ascribe_bench.
#
# Environment (defaults: full / --quick):
#   BENCH_CONCURRENCY      concurrency levels                          1,16,64,256
#   BENCH_REQUESTS_C1      requests at concurrency 1                   2000 / 200
#   BENCH_REQUESTS         requests at each other concurrency          10000 / 1000
#   BENCH_STREAMS          streamed calls timed to first byte          500 / 50
#   BENCH_LEDGER_ENTRIES   size of the ledger verified and proven      1000000 / 20000
#   BENCH_HASH_MIB         size of the generated safetensors directory 4096 / 256
#   BENCH_SOAK_SECONDS     duration of the sustained load              600 / 20
#   BENCH_SOAK_CONCURRENCY, BENCH_SOAK_RPS (0: unthrottled), BENCH_WARM_UP, BENCH_HASH_RUNS
#   BENCH_SECTIONS         which parts run: gateway,ledger,hashing,soak (all)
#   REAL_MODEL_CACHE, REAL_MODEL_WORK  where examples/real-model/run.sh keeps its GGUF
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$TARGET/bench-run"
TOOLS="$TARGET/bench-tools"
VENV="$TARGET/bench-venv"
PYTHON="${PYTHON:-python3}"
POSTGRES="${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}"

# What is installed, pinned. oha 1.16.0 and b3sum 1.8.7 build with Rust 1.88+; LiteLLM
# 1.106.12 is the newest release whose [proxy] extra resolves from PyPI here (later ones
# need a litellm-proxy package that is not published), and predates the compromised 1.107.0.
OHA_VERSION="1.16.0"
B3SUM_VERSION="1.8.7"
LITELLM_VERSION="1.106.12"

QUICK=""
for argument in "$@"; do
    case "$argument" in
    --quick) QUICK="--quick" ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench: unknown argument $argument (only --quick)" >&2
        exit 2
        ;;
    esac
done

log() { printf '==> %s\n' "$*"; }
die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

# ----------------------------------------------------------------------------- clean-up

# bench.py starts every server and load generator in a session of its own and writes its
# pid here; whatever is still running when this script exits is stopped, by pid.
PIDS="$WORK/pids"
DRIVER_PID=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    if [[ -f "$PIDS" ]]; then
        while read -r pid; do
            [[ -n "$pid" ]] || continue
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
                sleep 0.5
                kill -KILL -- "-$pid" 2>/dev/null || true
            fi
        done <"$PIDS"
    fi
    if ((status != 0)); then
        printf 'bench: failed (exit %s); logs in %s\n' "$status" "$WORK/logs" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

STARTED=$(date +%s)
rm -rf "$WORK"
mkdir -p "$WORK/logs" "$TOOLS" "$HERE/results"
: >"$PIDS"
# Concurrency 256 needs a socket each for the client, the gateway and its upstream calls.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Everything here talks to 127.0.0.1; no proxy of the environment may step in.
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

# --------------------------------------------------------------------------------- checks

for tool in cargo "$PYTHON" psql openssl sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is required and not installed"
done
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$PYTHON is older than 3.10 (set PYTHON to a newer one)"
psql -X -q -At -d "$POSTGRES/test" -c 'SELECT 1' >/dev/null 2>"$WORK/logs/psql.log" ||
    die "PostgreSQL does not answer at $POSTGRES/test: $(cat "$WORK/logs/psql.log")"

# ---------------------------------------------------------------------------------- build

# Two separate builds: `ascribe` exactly as shipped (the bench crate turns on the store's
# `testing` feature, which must not reach the binary measured).
log "cargo build --release: ascribe, then the bench helpers and the ledger benchmark"
(cd "$ROOT" && cargo build --release --locked --bin ascribe) >"$WORK/logs/build.log" 2>&1 ||
    die "building ascribe failed; see $WORK/logs/build.log"
(cd "$ROOT" && cargo build --release --locked -p ascribe-bench) >>"$WORK/logs/build.log" 2>&1 ||
    die "building crates/ascribe-bench failed; see $WORK/logs/build.log"
(cd "$ROOT" && cargo bench --locked -p ascribe-store --features testing --bench ledger \
    --no-run) >>"$WORK/logs/build.log" 2>&1 ||
    die "building the ledger benchmark failed; see $WORK/logs/build.log"

# ---------------------------------------------------------------------------------- tools

# Installs crate NAME@VERSION into target/bench-tools unless that version is there.
install_crate() {
    local name="$1" version="$2"
    if [[ -x "$TOOLS/bin/$name" ]] && "$TOOLS/bin/$name" --version 2>/dev/null |
        grep -qF "$version"; then
        return 0
    fi
    log "cargo install --locked $name@$version (a few minutes, once)"
    cargo install --locked --force --root "$TOOLS" "$name@$version" \
        >"$WORK/logs/install-$name.log" 2>&1
}
install_crate oha "$OHA_VERSION" ||
    die "cannot install oha $OHA_VERSION; see $WORK/logs/install-oha.log"
B3SUM_ARGS=()
if install_crate b3sum "$B3SUM_VERSION"; then
    B3SUM_ARGS=(--b3sum "$TOOLS/bin/b3sum")
else
    log "b3sum $B3SUM_VERSION could not be installed; hashing runs without it"
fi

# LiteLLM in its own venv, rebuilt when the pin changes.
if [[ "$(cat "$VENV/bench-stamp" 2>/dev/null)" != "litellm[proxy]==$LITELLM_VERSION" ]]; then
    log "installing litellm[proxy]==$LITELLM_VERSION into $VENV (about a minute, once)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" >"$WORK/logs/install-litellm.log" 2>&1 ||
        die "cannot create a venv with $PYTHON; see $WORK/logs/install-litellm.log"
    "$VENV/bin/python" -m pip install --no-input --quiet "litellm[proxy]==$LITELLM_VERSION" \
        >>"$WORK/logs/install-litellm.log" 2>&1 ||
        die "cannot install litellm[proxy]==$LITELLM_VERSION; see $WORK/logs/install-litellm.log"
    printf '%s' "litellm[proxy]==$LITELLM_VERSION" >"$VENV/bench-stamp"
fi
# The known-malicious LiteLLM releases shipped a .pth file that runs at every Python start.
if compgen -G "$VENV/lib/python*/site-packages/litellm_init.pth" >/dev/null; then
    die "$VENV holds litellm_init.pth (a compromised LiteLLM release); remove $VENV"
fi
[[ -x "$VENV/bin/litellm" ]] || die "no litellm executable in $VENV"

# ------------------------------------------------------------------------------------ run

log "running the benchmarks${QUICK:+ (quick)}"
"$PYTHON" "$HERE/bench.py" $QUICK --root "$ROOT" --target "$TARGET" --work "$WORK" \
    --results "$HERE/results" --ascribe "$TARGET/release/ascribe" \
    --standin "$TARGET/release/ascribe-standin-upstream" --tool "$TARGET/release/ascribe-bench" \
    --oha "$TOOLS/bin/oha" --litellm "$VENV/bin/litellm" --postgres "$POSTGRES" \
    "${B3SUM_ARGS[@]}" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=""
log "done in $(($(date +%s) - STARTED)) s: $HERE/results/latest.md"
