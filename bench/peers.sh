#!/usr/bin/env bash
# The same Converse load through LiteLLM's proxy, beside llmops-proxy (--threads 1) and the
# stub alone, in one run. Appends a dated section to bench/RESULTS.md.
#
#   bash bench/peers.sh
#
# LiteLLM is installed in a venv outside the repository (LITELLM_VENV, default
# ~/.cache/llmops-bench/litellm-venv). Everything runs inside a loopback-only network
# namespace (`unshare -n`, `ip link set lo up`) when the kernel allows it, else on
# 127.0.0.1. Environment: DURATION (default 10), PEER_CONC (connections, default 8),
# WARMUP, KEEP_WORK as for run.sh. If LiteLLM cannot be installed or started, the script
# records that in RESULTS.md and exits 1; it never makes figures up.
set -euo pipefail

PEER_CONC="${PEER_CONC:-8}"
CONC="$PEER_CONC"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

LITELLM_VENV="${LITELLM_VENV:-$HOME/.cache/llmops-bench/litellm-venv}"
LITELLM_MASTER_KEY="sk-llmops-bench-master-0123456789"

# peer_failed MESSAGE [LOGFILE]: record the failure in RESULTS.md and stop.
peer_failed() {
    ensure_results_file
    {
        echo
        echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — \`bash bench/peers.sh\`: LiteLLM not measured"
        echo
        echo "- $1"
        if [ -n "${2:-}" ] && [ -f "$2" ]; then
            echo "- Last lines of \`$(basename "$2")\`:"
            echo
            echo '```'
            tail -n 15 "$2" | sed 's/sk-[A-Za-z0-9_-]*/sk-…/g'
            echo '```'
        fi
    } >>"$RESULTS"
    die "$1 (recorded in $RESULTS)"
}

if [ -z "${BENCH_IN_NETNS:-}" ]; then
    # Outside the namespace: the steps that need the package registries.
    ensure_tools
    build_proxy
    if [ ! -x "$LITELLM_VENV/bin/litellm" ]; then
        log "installing LiteLLM's proxy into $LITELLM_VENV (pip install 'litellm[proxy]')"
        mkdir -p "$(dirname "$LITELLM_VENV")"
        python3 -m venv "$LITELLM_VENV" || peer_failed "python3 -m venv failed: cannot install LiteLLM here."
        if ! "$LITELLM_VENV/bin/pip" install -q 'litellm[proxy]' >/tmp/llmops-bench-litellm-pip.log 2>&1; then
            peer_failed "pip install 'litellm[proxy]' failed: cannot install LiteLLM here." /tmp/llmops-bench-litellm-pip.log
        fi
    fi
    [ -x "$LITELLM_VENV/bin/litellm" ] || peer_failed "no litellm command in $LITELLM_VENV after pip install."
    if unshare -n true 2>/dev/null; then
        log "re-running inside a loopback-only network namespace (unshare -n)"
        exec env BENCH_IN_NETNS=1 BENCH_NETNS_BIN="$BIN" BENCH_NETNS_COMMIT="$PROXY_COMMIT" \
            unshare -n bash "$BENCH_DIR/peers.sh"
    fi
    log "unshare -n is not allowed here: running on 127.0.0.1 in the host network namespace"
    NETNS_NOTE="host network namespace (unshare -n refused), every listener bound to 127.0.0.1"
else
    ip link set lo up
    NETNS_NOTE="loopback-only network namespace (\`unshare -n\`, lo up): nothing can leave the machine"
    export PATH="$PATH:/usr/sbin"
    oha_flags
    BIN="$BENCH_NETNS_BIN"
    PROXY_COMMIT="$BENCH_NETNS_COMMIT"
    # The private copy made before the re-exec is this process's to remove.
    case "$BIN" in /tmp/llmops-bench-proxy.*) BIN_COPY="$BIN" ;; esac
fi

begin_section "DURATION=$DURATION PEER_CONC=$PEER_CONC bash bench/peers.sh" "$NETNS_NOTE"
LITELLM_VERSION="$("$LITELLM_VENV/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p')"
export OHA_VERSION="$OHA_VERSION, LiteLLM $LITELLM_VERSION"
export CONC_USED="$PEER_CONC"

start_stub
STUB_URL="http://127.0.0.1:$STUB_PORT/model/$MODEL_ID/converse"
measure a "stub direct (nginx return 200, 1 worker)" "$STUB_PID" "$STUB_URL" -H "Content-Type: application/json"

start_proxy c 1
measure c "llmops-proxy --threads 1 → stub" "$PROXY_PID" \
    "http://127.0.0.1:$PROXY_PORT/bedrock/model/$MODEL_ID/converse" "${PROXY_HEADERS_OHA[@]}"
stop_proxy "c (1 thread)"

# LiteLLM: one worker, model bedrock/converse/amazon.nova-lite-v1:0 pointed at the stub.
LITELLM_PORT="$(free_port)"
cat >"$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: nova-lite
    litellm_params:
      model: bedrock/converse/$MODEL_ID
      aws_bedrock_runtime_endpoint: http://127.0.0.1:$STUB_PORT
      aws_region_name: us-east-1
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
EOF
LITELLM_CMD=("$LITELLM_VENV/bin/litellm" --config "$WORK/litellm.yaml" --host 127.0.0.1 --port "$LITELLM_PORT" --num_workers 1)
record_cmd "# LiteLLM $LITELLM_VERSION (config litellm.yaml below)"
record_cmd "LITELLM_MASTER_KEY=sk-… LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=… AWS_REGION_NAME=us-east-1 litellm --config litellm.yaml --host 127.0.0.1 --port $LITELLM_PORT --num_workers 1"
env LITELLM_MASTER_KEY="$LITELLM_MASTER_KEY" LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False \
    AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_REGION_NAME=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
    NO_PROXY='*' no_proxy='*' \
    "${LITELLM_CMD[@]}" >"$WORK/litellm.log" 2>&1 &
LITELLM_PID=$!
PIDS+=("$LITELLM_PID")
log "starting LiteLLM (pid $LITELLM_PID) on 127.0.0.1:$LITELLM_PORT"
ready=""
for _ in $(seq 1 1200); do
    if ! kill -0 "$LITELLM_PID" 2>/dev/null; then break; fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$LITELLM_PORT/health/liveliness")" = 200 ]; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    if ! kill -0 "$LITELLM_PID" 2>/dev/null; then
        rc=0
        wait "$LITELLM_PID" || rc=$?
        forget_pid "$LITELLM_PID"
        peer_failed "LiteLLM's proxy exited at start-up with status $rc." "$WORK/litellm.log"
    fi
    peer_failed "LiteLLM's proxy did not start (no 200 from /health/liveliness within 120 s)." "$WORK/litellm.log"
fi
LITELLM_URL="http://127.0.0.1:$LITELLM_PORT/chat/completions"
AUTH=(-H "Authorization: Bearer $LITELLM_MASTER_KEY" -H "Content-Type: application/json")
code="$(curl -s -o "$WORK/check-litellm.json" -w '%{http_code}' --max-time 30 "${AUTH[@]}" \
    --data-binary @"$WORK/payload/chat.json" "$LITELLM_URL")"
if [ "$code" != 200 ] || ! grep -q 'Inference dominates' "$WORK/check-litellm.json"; then
    cp "$WORK/check-litellm.json" "$WORK/check-litellm.txt" 2>/dev/null || true
    echo "--- answer ($code):" >>"$WORK/litellm.log"
    cat "$WORK/check-litellm.json" >>"$WORK/litellm.log" 2>/dev/null || true
    peer_failed "LiteLLM answered $code to a chat completion routed to the stub (expected 200 with the stub's text)." "$WORK/litellm.log"
fi
log "LiteLLM relays to the stub: $(head -c 160 "$WORK/check-litellm.json")…"

BODY_FILE_SAVED="$BODY_FILE"
BODY_FILE="$WORK/payload/chat.json"
litellm_load_failed() { peer_failed "LiteLLM under load: $1" "$WORK/litellm.log"; }
ON_DIE=litellm_load_failed
measure litellm "LiteLLM proxy $LITELLM_VERSION (1 worker) → stub, /chat/completions" "$LITELLM_PID" "$LITELLM_URL" \
    "${AUTH[@]}"
ON_DIE=""
BODY_FILE="$BODY_FILE_SAVED"

{
    echo "# litellm.yaml"
    sed 's/^/#   /' "$WORK/litellm.yaml"
} >>"$CMDS_FILE"

export PEER_NOTE="Run in a $NETNS_NOTE; CPU of LiteLLM counts its process and children."
append_section peers
