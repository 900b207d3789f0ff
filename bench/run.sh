#!/usr/bin/env bash
# Load benchmark of llmops-proxy against a fast nginx stub upstream and an nginx reverse
# proxy, all on 127.0.0.1. Appends a dated section to bench/RESULTS.md.
#
#   bash bench/run.sh                       # 10 s per run, 32 connections
#   DURATION=30 CONC=64 bash bench/run.sh
#
# Also: 128 KiB bodies (16 connections), one connection at a time, and the RSS of 10,000
# idle keep-alive connections; the report prints each ratio against nginx.
#
# Environment: DURATION (s, default 10), CONC (connections, default 32), WARMUP (s before
# each measured run, default 2), TTFB_REQUESTS (streaming samples, default 200),
# IDLE_CONNS (default 10000),
# KEEP_WORK=1 (keep the temporary work dir with logs and raw oha JSON), RESULTS=FILE
# (append elsewhere), BENCH_REF=COMMIT (build a clean export of that commit instead of the
# working tree), BENCH_BIN=PATH (measure that binary, no build). See bench/README.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_tools
build_proxy
begin_section "DURATION=$DURATION CONC=$CONC bash bench/run.sh"

record_cmd "# stub upstream and reverse proxy: nginx -p PREFIX -c stub.conf / rproxy.conf (configs below)"
start_stub
start_rproxy
log "nginx reverse proxy (1 worker, keepalive 64) on 127.0.0.1:$NGX_PORT, pid $RPROXY_PID"

STUB_URL="http://127.0.0.1:$STUB_PORT/model/$MODEL_ID/converse"
NGX_URL="http://127.0.0.1:$NGX_PORT/model/$MODEL_ID/converse"
CT=(-H "Content-Type: application/json")

# (a) the stub alone, (b) nginx -> stub: CPU of the nginx under test (master + worker).
measure a "stub direct (nginx return 200, 1 worker)" "$STUB_PID" "$STUB_URL" "${CT[@]}"
measure b "nginx reverse proxy → stub (1 worker, keepalive 64)" "$RPROXY_PID" "$NGX_URL" "${CT[@]}"

# (c) llmops-proxy, one shard, default driver (io_uring).
start_proxy c 1
PROXY_URL="http://127.0.0.1:$PROXY_PORT/bedrock/model/$MODEL_ID/converse"
SPLIT_WRITER=1 measure c "llmops-proxy --threads 1 → stub (io_uring)" "$PROXY_PID" "$PROXY_URL" "${PROXY_HEADERS_OHA[@]}"

# Fixed rate at half of (c)'s rate: stub direct, then the same proxy.
FIXED_RATE="$(python3 "$BENCH_DIR/benchlib.py" rate "$WORK/results.jsonl" c)"
export FIXED_RATE
measure fixed-stub "stub direct at $FIXED_RATE req/s" "$STUB_PID" "$STUB_URL" -q "$FIXED_RATE" "${CT[@]}"
measure fixed-proxy "llmops-proxy --threads 1 → stub at $FIXED_RATE req/s" "$PROXY_PID" "$PROXY_URL" \
    -q "$FIXED_RATE" "${PROXY_HEADERS_OHA[@]}"

# Streaming: time to first byte of ConverseStream under load (oha's first-byte
# percentiles, same fixed rate), then unloaded (curl, sequential), direct / nginx / proxy.
STUB_STREAM_URL="http://127.0.0.1:$STUB_PORT/model/$MODEL_ID/converse-stream"
PROXY_STREAM_URL="http://127.0.0.1:$PROXY_PORT/bedrock/model/$MODEL_ID/converse-stream"
measure stream-fixed-stub "stub direct, converse-stream at $FIXED_RATE req/s" "$STUB_PID" "$STUB_STREAM_URL" \
    -q "$FIXED_RATE" "${CT[@]}"
measure stream-fixed-proxy "llmops-proxy --threads 1 → stub, converse-stream at $FIXED_RATE req/s" "$PROXY_PID" \
    "$PROXY_STREAM_URL" -q "$FIXED_RATE" "${PROXY_HEADERS_OHA[@]}"
ttfb stream-stub "stub direct" "$STUB_STREAM_URL" "${CT[@]}"
ttfb stream-nginx "nginx reverse proxy → stub" "http://127.0.0.1:$NGX_PORT/model/$MODEL_ID/converse-stream" "${CT[@]}"
TTFB_TO_PROXY=1 ttfb stream-proxy "llmops-proxy --threads 1 → stub" "$PROXY_STREAM_URL" "${PROXY_HEADERS_CURL[@]}"

# Big bodies: 128 KiB requests, 16 connections, nginx then the proxy (SigV4 hashes the
# whole body: the proxy's floor is nginx plus the body's SHA-256).
BIG_FILE="$WORK/payload/request-128k.json"
python3 -c "import json,sys; print(json.dumps({'messages':[{'role':'user','content':[{'text':'x'*(128*1024-80)}]}]}), end='')" >"$BIG_FILE"
BODY_FILE="$BIG_FILE" CONC=16 measure big-nginx "nginx reverse proxy → stub, 128 KiB bodies, 16 connections" "$RPROXY_PID" \
    "$NGX_URL" "${CT[@]}"
BODY_FILE="$BIG_FILE" CONC=16 measure big-proxy "llmops-proxy --threads 1 → stub, 128 KiB bodies, 16 connections" \
    "$PROXY_PID" "$PROXY_URL" "${PROXY_HEADERS_OHA[@]}"

# One connection, one request at a time: the latency each adds over the stub.
CONC=1 measure one-nginx "nginx reverse proxy → stub, 1 connection" "$RPROXY_PID" "$NGX_URL" "${CT[@]}"
CONC=1 measure one-proxy "llmops-proxy --threads 1 → stub, 1 connection" "$PROXY_PID" "$PROXY_URL" "${PROXY_HEADERS_OHA[@]}"

# Idle keep-alive connections: RSS per connection at IDLE_CONNS (default 10,000).
record_cmd "# (idle) python3 bench/idle_conns.py PROXY_PID 127.0.0.1 PORT ${IDLE_CONNS:-10000} 3"
log "(idle) ${IDLE_CONNS:-10000} idle keep-alive connections to llmops-proxy"
python3 "$BENCH_DIR/idle_conns.py" "$PROXY_PID" 127.0.0.1 "$PROXY_PORT" "${IDLE_CONNS:-10000}" 3 >>"$WORK/results.jsonl" \
    || die "(idle) idle_conns.py failed"
tail -n 1 "$WORK/results.jsonl" >&2
stop_proxy "c: io_uring, 1 thread"

# (c) again on the epoll driver.
start_proxy c-epoll 1 MONOIO_FORCE_LEGACY_DRIVER=1
PROXY_URL="http://127.0.0.1:$PROXY_PORT/bedrock/model/$MODEL_ID/converse"
measure c-epoll "llmops-proxy --threads 1 → stub (epoll, MONOIO_FORCE_LEGACY_DRIVER=1)" "$PROXY_PID" "$PROXY_URL" \
    "${PROXY_HEADERS_OHA[@]}"
stop_proxy "c-epoll: epoll, 1 thread"

# (c) again without the per-request access log line on stderr (default: on), to price it.
SERVE_HELP="$("$BIN" serve --help 2>&1 || true)"
if grep -q -- '--access-log' <<<"$SERVE_HELP"; then
    start_proxy c-nolog 1 -- --access-log off
    PROXY_URL="http://127.0.0.1:$PROXY_PORT/bedrock/model/$MODEL_ID/converse"
    measure c-nolog "llmops-proxy --threads 1 --access-log off → stub (io_uring)" "$PROXY_PID" "$PROXY_URL" \
        "${PROXY_HEADERS_OHA[@]}"
    stop_proxy "c-nolog: io_uring, 1 thread, --access-log off"
fi

# (d) llmops-proxy on every core.
start_proxy d "$MACHINE_NPROC"
PROXY_URL="http://127.0.0.1:$PROXY_PORT/bedrock/model/$MODEL_ID/converse"
measure d "llmops-proxy --threads $MACHINE_NPROC → stub (io_uring)" "$PROXY_PID" "$PROXY_URL" "${PROXY_HEADERS_OHA[@]}"
stop_proxy "d: io_uring, $MACHINE_NPROC threads"

record_configs stub rproxy
append_section run
