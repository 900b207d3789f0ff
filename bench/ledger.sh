#!/usr/bin/env bash
# What the durable usage journal costs on the hot path: requests/s of llmops-proxy
# (--threads 1, plain HTTP, keep-alive, the load of run.sh's (c)) built from the last
# commit without the journal (PREV_REF) and from the working tree, interleaved over
# ROUNDS rounds (prev, journal, prev, journal, ...), a fresh proxy for each run; and the
# usage writer thread's CPU per row during each run (the rate one core of it could take,
# against one shard's). Appends a dated section to bench/RESULTS.md.
#
#   bash bench/ledger.sh
#   ROUNDS=3 PREV_REF=2ba1420 bash bench/ledger.sh
#
# Environment: DURATION, CONC, WARMUP, KEEP_WORK, RESULTS, BENCH_REF, BENCH_BIN as for
# run.sh (they choose the journal binary); ROUNDS (default 2); PREV_REF (default 2ba1420,
# the last commit before the journal); FSYNC (--fsync-interval, default 200ms). See
# bench/README.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ROUNDS="${ROUNDS:-2}"
PREV_REF="${PREV_REF:-2ba1420}"
FSYNC="${FSYNC:-200ms}"

ensure_tools
build_ref "$PREV_REF"
BIN_PREV="$BIN"
PREV_DESC="$PROXY_COMMIT"
build_proxy
BIN_JOURNAL="$BIN"
begin_section "DURATION=$DURATION CONC=$CONC ROUNDS=$ROUNDS PREV_REF=$PREV_REF${BENCH_REF:+ BENCH_REF=$BENCH_REF} bash bench/ledger.sh"
export ROUNDS PREV_DESC FSYNC

record_cmd "# stub upstream: nginx -p PREFIX -c stub.conf (config in run.sh's sections); without the journal: a clean build of $PREV_REF"
start_stub
URL="/bedrock/model/$MODEL_ID/converse"

writer_cpu() { python3 "$BENCH_DIR/benchlib.py" thread-cpu "$PROXY_PID" usage-writer; }

for round in $(seq 1 "$ROUNDS"); do
    for cfg in prev journal; do
        name="$cfg-$round"
        if [ "$cfg" = prev ]; then
            BIN="$BIN_PREV" start_proxy "$name" 1
            label="without the journal ($PREV_REF, round $round)"
        else
            BIN="$BIN_JOURNAL" start_proxy "$name" 1 -- --fsync-interval "$FSYNC"
            label="with the journal (round $round)"
        fi
        wait_quiet
        warm_up "$name" "$PROXY_PID" "http://127.0.0.1:$PROXY_PORT$URL" "${PROXY_HEADERS_OHA[@]}"
        w0="$(writer_cpu)"
        other_cpu_begin
        WARMUP=0 measure "$name" "llmops-proxy --threads 1, $label" "$PROXY_PID" "http://127.0.0.1:$PROXY_PORT$URL" \
            "${PROXY_HEADERS_OHA[@]}"
        other_cpu_end "$name"
        w1="$(writer_cpu)"
        python3 "$BENCH_DIR/benchlib.py" writer "$WORK/results.jsonl" "$name" "$w0" "$w1" >>"$WORK/results.jsonl"
        stop_proxy "$name"
    done
done
BIN="$BIN_JOURNAL"

append_section ledger
