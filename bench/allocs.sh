#!/usr/bin/env bash
# Allocations per request on a shard in steady state, from the shard's allocator counts
# (src/util/alloc: blocks from its lists vs the rest, "from glibc": calls into glibc or
# fresh read-buffer slots; logged as `shard_allocations` when the shard stops). Two runs
# of SHORT and LONG requests (32 connections, io_uring, against the mock); the difference
# divided by LONG - SHORT is what one more request costs once warm, start-up and warm-up
# cancelled out.
# Usage: bash bench/allocs.sh [SHORT] [LONG]   (default 2000 22000). Needs oha.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # the load's credentials and headers
cd "$ROOT"
SHORT="${1:-2000}"
LONG="${2:-22000}"
BIN="${BENCH_BIN:-target/release/llmops-proxy}"
[ -n "${BENCH_BIN:-}" ] || cargo build --release --quiet
body='{"messages":[{"role":"user","content":[{"text":"Summarise the quarterly numbers for the finance team, please."}]}],"inferenceConfig":{"maxTokens":256,"temperature":0.2}}'
# run N: prints "CACHED SYSTEM" for a fresh proxy after N requests.
run() {
  local w mock proxy m p
  w="$(mktemp -d)"
  "$BIN" mock-upstream --listen 127.0.0.1:0 --credential "$AKID:$SECRET" 2>"$w/mock.log" &
  m=$!
  for _ in $(seq 100); do grep -q 'mock_listening' "$w/mock.log" && break; sleep 0.1; done
  mock=$(sed -n 's/.*mock_listening addr=\([0-9.:]*\).*/\1/p' "$w/mock.log" | head -1)
  "$BIN" serve --listen 127.0.0.1:0 --threads 1 --upstream-endpoint "http://$mock" --usage-dir "$w/usage" 2>"$w/proxy.log" &
  p=$!
  for _ in $(seq 300); do grep -q 'listening addr=' "$w/proxy.log" && break; sleep 0.1; done
  proxy=$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$w/proxy.log" | head -1)
  oha -n "$1" -c 32 --no-tui -m POST -d "$body" "${PROXY_HEADERS_OHA[@]}" \
    "http://$proxy/bedrock/model/$MODEL_ID/converse" >"$w/oha.txt"
  grep -q "\[200\] $1 responses" "$w/oha.txt" || { cat "$w/oha.txt" >&2; exit 1; }
  kill -TERM "$p"; wait "$p" || true
  kill "$m" 2>/dev/null || true
  sed -n 's/.*shard_allocations.*cached=\([0-9]*\) system=\([0-9]*\).*/\1 \2/p' "$w/proxy.log" | head -1
  rm -rf "$w"
}
read -r c1 s1 < <(run "$SHORT")
read -r c2 s2 < <(run "$LONG")
n=$((LONG - SHORT))
echo "after $SHORT requests: $c1 allocations from the shard's lists, $s1 from glibc"
echo "after $LONG requests: $c2 from the lists, $s2 from glibc"
echo "per request once warm: $(python3 -c "print(f'{($c2 - $c1) / $n:.2f}')") from the lists, $(python3 -c "print(f'{($s2 - $s1) / $n:.3f}')") from glibc"
