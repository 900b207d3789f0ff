#!/usr/bin/env bash
# Instructions per request of llmops-proxy (one shard, epoll so valgrind can follow the
# I/O), counted by callgrind: repeatable on a busy machine, unlike timings.
# Usage: bash bench/profile.sh [REQUESTS]   (default 20000). Needs valgrind and oha.
# PROXY_ARGS adds flags to `serve` (e.g. PROXY_ARGS="--routes bench/routes-nomatch.toml":
# what rules that match nothing cost a request). DASHBOARD_REFRESH=1 serves the dashboard
# (--admin-listen) and, while the load runs, asks for what the page shows every second
# (its nine API calls): what a dashboard left open costs the shards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # the load's credentials and headers
cd "$ROOT"
N="${1:-20000}"
BIN="${BENCH_BIN:-target/release/llmops-proxy}"
[ -n "${BENCH_BIN:-}" ] || cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT
"$BIN" mock-upstream --listen 127.0.0.1:0 --credential "$AKID:$SECRET" 2>"$work/mock.log" &
for _ in $(seq 100); do grep -q 'mock_listening' "$work/mock.log" && break; sleep 0.1; done
mock=$(sed -n 's/.*mock_listening addr=\([0-9.:]*\).*/\1/p' "$work/mock.log" | head -1)
MONOIO_FORCE_LEGACY_DRIVER=1 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.out" \
  "$BIN" serve --listen 127.0.0.1:0 --threads 1 --upstream-endpoint "http://$mock" \
  --usage-dir "$work/usage" --access-log "${ACCESS_LOG:-on}" ${PROXY_ARGS:-} \
  ${DASHBOARD_REFRESH:+--admin-listen 127.0.0.1:0} 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 300); do grep -q 'listening addr=' "$work/proxy.log" && break; sleep 0.1; done
proxy=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$work/proxy.log" | head -1)
body='{"messages":[{"role":"user","content":[{"text":"Summarise the quarterly numbers for the finance team, please."}]}],"inferenceConfig":{"maxTokens":256,"temperature":0.2}}'
hdr=("${PROXY_HEADERS_OHA[@]}")
url="http://$proxy/bedrock/model/$MODEL_ID/converse"
# Warm-up (pool, key cache), then zero the counters and measure exactly N requests.
oha -n 200 -c 4 --no-tui -m POST -d "$body" "${hdr[@]}" "$url" >/dev/null
refresher=""
if [ -n "${DASHBOARD_REFRESH:-}" ]; then
  for _ in $(seq 100); do grep -q 'listening_admin addr=' "$work/proxy.log" && break; sleep 0.1; done
  admin=$(sed -n 's/.*listening_admin addr=\([0-9.:]*\).*/\1/p' "$work/proxy.log" | head -1)
  ( while true; do
      for q in dimensions summary "groups?by=agent" "groups?by=department" "groups?by=project" "groups?by=model" \
               "series?bucket=hour&stack=department" budgets "groups?by=route"; do
        curl -s -o /dev/null "http://$admin/api/$q" || true
      done
      echo x >> "$work/refreshes"
      sleep 1
    done ) &
  refresher=$!
fi
callgrind_control -z "$proxy_pid" >/dev/null
oha -n "$N" -c 8 --no-tui -m POST -d "$body" "${hdr[@]}" "$url" > "$work/oha.txt"
callgrind_control -d "$proxy_pid" >/dev/null
[ -n "$refresher" ] && kill "$refresher" 2>/dev/null
[ -n "$refresher" ] && echo "dashboard refreshes during the load: $(wc -l < "$work/refreshes" 2>/dev/null || echo 0) (9 API calls each)"
sleep 1
kill -TERM "$proxy_pid"; wait "$proxy_pid" || true
set +e +o pipefail
# instructions FILE: the PROGRAM TOTALS of one callgrind output (one thread).
instructions() {
  local t
  t=$(callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}')
  [[ "$t" =~ ^[0-9]+$ ]] && echo "$t" || echo 0
}
total=0
for f in "$work"/cg.out*; do
  t=$(instructions "$f")
  total=$((total + ${t:-0}))
done
echo "requests: $N (status codes: $(grep -A3 'Status code distribution' "$work/oha.txt" | tail -n +2 | tr -s ' ' | tr '\n' ' '))"
echo "instructions: $total total, $((total / N)) per request (all threads: shards, usage writer)"
# The shard's allocator counts (src/util/alloc): blocks from its lists vs calls into glibc,
# over its whole life (start-up and the 200 warm-up requests included).
alloc_line=$(grep -o 'shard_allocations.*' "$work/proxy.log" | head -1)
if [ -n "$alloc_line" ]; then
  cached=$(sed -n 's/.*cached=\([0-9]*\).*/\1/p' <<<"$alloc_line")
  system=$(sed -n 's/.*system=\([0-9]*\).*/\1/p' <<<"$alloc_line")
  echo "shard allocations: $cached from its lists ($((cached / (N + 200))) per request), $system from glibc in all (start-up and warm-up included)"
fi
rm -f bench/.callgrind-*.out
for f in "$work"/cg.out*; do
  t=$(instructions "$f")
  [ "${t:-0}" -gt $((N * 100)) ] || continue
  name=$(basename "$f")
  cp "$f" "bench/.callgrind-$name.out"
  echo "== $name: $((t / N)) instructions per request; top functions (self):"
  callgrind_annotate --threshold=100 --inclusive=no "$f" 2>/dev/null | awk '/file:function/ {p=1; next} p && NF' \
    | grep -v -e 'clone.S:clone' -e 'pthread_create.c' -e 'thread_start' -e 'call_once' -e 'block_on' -e 'run_shard' -e 'backtrace' \
    | head -25 | cut -c1-160
done
