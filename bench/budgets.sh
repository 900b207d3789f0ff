#!/usr/bin/env bash
# What budgets cost on the hot path: requests/s of llmops-proxy (--threads 1, plain HTTP,
# keep-alive, the load of run.sh's (c)) with no budgets, with 100 budgets none of which is
# ever exhausted, and with the same 100 budgets where one `block` budget is exhausted for
# a department the load does not send (so every request is checked against a non-empty
# block set). The configurations are interleaved over ROUNDS rounds (none, 100, 100x,
# none, 100, 100x, ...), a fresh proxy for each run. Appends a dated section to
# bench/RESULTS.md.
#
#   bash bench/budgets.sh
#   BENCH_REF=HEAD ROUNDS=3 bash bench/budgets.sh
#
# Environment: DURATION, CONC, WARMUP, KEEP_WORK, RESULTS, BENCH_REF, BENCH_BIN as for
# run.sh; ROUNDS (default 2); BUDGETS (budgets per file, default 100). See bench/README.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ROUNDS="${ROUNDS:-2}"
BUDGETS="${BUDGETS:-100}"
EXHAUSTED_DEPT="bench-exhausted"

ensure_tools
build_proxy
begin_section "DURATION=$DURATION CONC=$CONC ROUNDS=$ROUNDS${BENCH_REF:+ BENCH_REF=$BENCH_REF} bash bench/budgets.sh"
export ROUNDS

MATCHED="$(write_budgets "$WORK/budgets-$BUDGETS.toml" "$BUDGETS")"
MATCHED_X="$(write_budgets "$WORK/budgets-${BUDGETS}x.toml" "$BUDGETS" "$EXHAUSTED_DEPT")"
BLOCKERS_X="$(grep -c '^action = "block"' "$WORK/budgets-${BUDGETS}x.toml")"
export BUDGETS_DESC="Budget files (written by \`write_budgets\` in bench/lib.sh): $BUDGETS budgets cycling over tenant, department, project, agent and model; half \`value = \"*\"\`, half a specific value (for tenant, department and model one of them is the value the load sends); half \`block\`, half \`alert\`; \`period = \"day\"\`, \`limit_usd = \"1000000.00\"\`. The load (its tenant, \`X-Department: bench\`, its model; no project or agent) matches $MATCHED of them ($MATCHED_X in *one exhausted*), so the writer adds each row's cost to $MATCHED spend counters. In *one exhausted* the last specific department budget is \`b-exhausted\`: department = \`$EXHAUSTED_DEPT\`, \`block\`, \`limit_usd = \"0.000001\"\`; one request with \`X-Department: $EXHAUSTED_DEPT\` (a request costs about \$0.00001) exhausts it before the load starts, and a second one must be refused; the block set shards check before relaying then holds $BLOCKERS_X \`block\` budgets and one blocked value, so each request of the load is looked up in it."

record_cmd "# stub upstream: nginx -p PREFIX -c stub.conf (config in run.sh's sections); budget files: bash -c 'source bench/lib.sh; write_budgets FILE $BUDGETS [$EXHAUSTED_DEPT]'"
start_stub
URL_PATH="/bedrock/model/$MODEL_ID/converse"

# exhaust_budget NAME: one request with the exhausted department (spends past the
# $0.000001 limit), then requests until one is refused (the writer publishes the block set
# within a tick), then one with the load's department must still pass.
exhaust_budget() {
    local name="$1" base="http://127.0.0.1:$PROXY_PORT$URL_PATH" hdr=() h code i
    for h in "${PROXY_HEADERS[@]}"; do
        case "$h" in X-Department:*) hdr+=(-H "X-Department: $EXHAUSTED_DEPT") ;; *) hdr+=(-H "$h") ;; esac
    done
    code="$(curl -s -o "$WORK/exhaust-$name-1.json" -w '%{http_code}' "${hdr[@]}" --data-binary @"$BODY_FILE" "$base")"
    PROXY_SENT_FILES+=(1)
    [ "$code" = 200 ] || die "($name) the request that should exhaust b-exhausted answered $code"
    for i in $(seq 1 50); do
        sleep 0.1
        code="$(curl -s -o "$WORK/exhaust-$name-2.json" -w '%{http_code}' "${hdr[@]}" --data-binary @"$BODY_FILE" "$base")"
        PROXY_SENT_FILES+=(1)
        [ "$code" = 200 ] || break
    done
    [ "$code" != 200 ] || die "($name) b-exhausted never blocked a request with X-Department: $EXHAUSTED_DEPT"
    grep -q 'b-exhausted' "$WORK/exhaust-$name-2.json" || die "($name) refused with $code but not by b-exhausted: $(head -c 300 "$WORK/exhaust-$name-2.json")"
    BLOCKED_CODE="$code"
    BLOCKED_BODY="$(head -c 400 "$WORK/exhaust-$name-2.json")"
    code="$(curl -s -o /dev/null -w '%{http_code}' "${PROXY_HEADERS_CURL[@]}" --data-binary @"$BODY_FILE" "$base")"
    PROXY_SENT_FILES+=(1)
    [ "$code" = 200 ] || die "($name) with b-exhausted exhausted, a request of the load answered $code"
    log "($name) b-exhausted is exhausted: X-Department: $EXHAUSTED_DEPT answered $BLOCKED_CODE, the load's department 200"
}

for round in $(seq 1 "$ROUNDS"); do
    for cfg in none b100 b100x; do
        name="$cfg-$round"
        case "$cfg" in
            none)
                start_proxy "$name" 1
                label="no budgets (round $round)"
                ;;
            b100)
                start_proxy "$name" 1 -- --budgets "$WORK/budgets-$BUDGETS.toml"
                label="$BUDGETS budgets (round $round)"
                ;;
            b100x)
                start_proxy "$name" 1 -- --budgets "$WORK/budgets-${BUDGETS}x.toml"
                exhaust_budget "$name"
                label="$BUDGETS budgets, one exhausted (round $round)"
                ;;
        esac
        grep -q 'budgets_loaded' "$WORK/proxy-$name.log" || [ "$cfg" = none ] \
            || die "($name) llmops-proxy did not log budgets_loaded: $(tail -n 3 "$WORK/proxy-$name.log")"
        measure_watched "$name" "llmops-proxy --threads 1, $label" "$PROXY_PID" "http://127.0.0.1:$PROXY_PORT$URL_PATH" \
            "${PROXY_HEADERS_OHA[@]}"
        stop_proxy "$name"
    done
done

python3 "$BENCH_DIR/benchlib.py" note blocked "Check of *one exhausted* (each round, before the load): \`X-Department: $EXHAUSTED_DEPT\` answered $BLOCKED_CODE \`$(printf '%s' "$BLOCKED_BODY" | tr -d '\n' | cut -c1-300)\`; the load's department answered 200. These check requests (1 spending, 1 or more refused, 1 passing) are the non-200s and the proxy log's WARN lines, if any, of the b100x runs in the self-checks below." >>"$WORK/results.jsonl"
{
    echo "# budget file, first three and the exhausted one (budgets-${BUDGETS}x.toml):"
    awk 'BEGIN{RS="";n=0} {n++; if (n<=3 || /b-exhausted/) {gsub(/\n/," "); print "#   " $0}}' "$WORK/budgets-${BUDGETS}x.toml"
} >>"$CMDS_FILE"

append_section budgets
