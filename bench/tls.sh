#!/usr/bin/env bash
# HTTPS for clients: the load of run.sh's (c) over TLS, with keep-alive (handshake
# amortised) and with a new connection per request (handshake bound), for llmops-proxy
# (--threads 1, --listen-tls) and for nginx (1 worker) terminating TLS in front of the same
# stub; each beside its plain-HTTP figure. Then resumed vs full handshakes, one connection
# at a time, with bench/tls_resume.py (Python ssl). Appends a dated section to
# bench/RESULTS.md.
#
#   bash bench/tls.sh
#   BENCH_REF=HEAD bash bench/tls.sh            # measure a clean build of a commit
#   TLS_KEY_TYPE=rsa bash bench/tls.sh          # RSA 2048 certificates instead of ECDSA P-256
#
# Environment: DURATION, CONC, WARMUP, KEEP_WORK, RESULTS, BENCH_REF, BENCH_BIN as for
# run.sh; TLS_KEY_TYPE (ec | rsa, default ec); RESUME_CONNS (sequential connections per
# tls_resume.py run, default 2000). See bench/README.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

RESUME_CONNS="${RESUME_CONNS:-2000}"

ensure_tools openssl
build_proxy
KEY_NOTE=""
[ "$TLS_KEY_TYPE" = ec ] || KEY_NOTE=" TLS_KEY_TYPE=$TLS_KEY_TYPE"
begin_section "DURATION=$DURATION CONC=$CONC${BENCH_REF:+ BENCH_REF=$BENCH_REF}$KEY_NOTE bash bench/tls.sh"
make_test_ca "$WORK/tls"
NGINX_SSL="$(nginx -V 2>&1 | sed -n 's/^built with \(OpenSSL [^ ]*\).*/\1/p' | head -1)"
export NGINX_SSL TLS_CERT_DESC

record_cmd "# test CA and certificate: openssl genpkey/req/x509 ($TLS_CERT_DESC), chain.pem = server.pem + ca.pem"
record_cmd "# stub upstream, nginx reverse proxy, nginx TLS terminator: nginx -p PREFIX -c stub.conf / rproxy.conf / tlsproxy.conf (configs below)"
start_stub
start_rproxy
NGX_TLS_PORT="$(free_port)"
NGX_TLS_NC_PORT="$(free_port)"
write_tls_rproxy_conf "$NGX_TLS_PORT" "$NGX_TLS_NC_PORT" "$STUB_PORT"
start_nginx tlsproxy
TLSPROXY_PID="$NGINX_PID_tlsproxy"
for port in "$NGX_TLS_PORT" "$NGX_TLS_NC_PORT"; do
    for _ in $(seq 1 150); do
        curl -s --cacert "$TLS_CA" -o /dev/null --max-time 1 "https://127.0.0.1:$port/" && break
        sleep 0.1
    done
    code="$(curl -s --cacert "$TLS_CA" -o "$WORK/check-tlsproxy.json" -w '%{http_code}' -X POST \
        --data-binary @"$BODY_FILE" "https://127.0.0.1:$port/model/$MODEL_ID/converse" || true)"
    [ "$code" = 200 ] || die "nginx TLS terminator on port $port answered '$code' (see $WORK/tlsproxy-error.log)"
    cmp -s "$WORK/check-tlsproxy.json" "$WORK/payload/converse.json" || die "nginx TLS terminator changed the converse body"
done
NGX_NEGOTIATED="$(tls_negotiated "$NGX_TLS_PORT")"
log "nginx reverse proxy on 127.0.0.1:$NGX_PORT (pid $RPROXY_PID); nginx TLS on 127.0.0.1:$NGX_TLS_PORT and :$NGX_TLS_NC_PORT (pid $TLSPROXY_PID)"

CT=(-H "Content-Type: application/json")
TLS_OHA=(--cacert "$TLS_CA")
NC=(--disable-keepalive)
PROXY_PATH="/bedrock/model/$MODEL_ID/converse"
NGX_PATH="/model/$MODEL_ID/converse"
show() { python3 "$BENCH_DIR/benchlib.py" show-any "$WORK/results.jsonl" "$1" >&2; }

# seq_tls SCENARIO LABEL PORT PATH MODE PID [HEADER...]: tls_resume.py, sequential connections.
seq_tls() {
    local scen="$1" label="$2" port="$3" path="$4" mode="$5" pid="$6"
    shift 6
    local hargs=() h
    for h in "$@"; do hargs+=(-H "$h"); done
    record_cmd "# ($scen) $label"
    record_cmd "$(printf '%q ' python3 bench/tls_resume.py --port "$port" --path "$path" --cafile ca.pem --body request.json "${hargs[@]}" --n "$RESUME_CONNS" --mode "$mode")"
    wait_quiet
    log "($scen) $label: $RESUME_CONNS sequential connections, $mode handshakes"
    other_cpu_begin
    python3 "$BENCH_DIR/tls_resume.py" --port "$port" --path "$path" --cafile "$TLS_CA" --body "$BODY_FILE" \
        "${hargs[@]}" --n "$RESUME_CONNS" --warmup 0 --mode "$mode" --scenario "$scen" --label "$label" \
        --cpu-pid "$pid" >>"$WORK/results.jsonl" 2>"$WORK/seq-$scen.err" \
        || die "($scen) $label failed: $(tail -n 3 "$WORK/seq-$scen.err")"
    other_cpu_end "$scen"
}

# --- llmops-proxy, plain HTTP -----------------------------------------------------------
start_proxy plain 1
URL="http://127.0.0.1:$PROXY_PORT$PROXY_PATH"
measure_watched ka-proxy-plain "llmops-proxy --threads 1, plain HTTP, keep-alive" "$PROXY_PID" "$URL" "${PROXY_HEADERS_OHA[@]}"
measure_watched nc-proxy-plain "llmops-proxy --threads 1, plain HTTP, new connection per request" "$PROXY_PID" "$URL" \
    "${NC[@]}" "${PROXY_HEADERS_OHA[@]}"
stop_proxy "plain: 1 thread, plain HTTP"

# --- llmops-proxy, TLS only --------------------------------------------------------------
start_proxy_tls tls 1
URL="https://127.0.0.1:$PROXY_PORT$PROXY_PATH"
python3 "$BENCH_DIR/benchlib.py" note negotiated "Negotiated with \`openssl s_client\` ($(openssl version | cut -d" " -f1-2)): llmops-proxy $(tls_negotiated "$PROXY_PORT"); nginx $NGX_NEGOTIATED." >>"$WORK/results.jsonl"
measure_watched ka-proxy-tls "llmops-proxy --threads 1, TLS, keep-alive" "$PROXY_PID" "$URL" "${TLS_OHA[@]}" "${PROXY_HEADERS_OHA[@]}"
wait_quiet
warm_up nc-proxy-tls "$PROXY_PID" "$URL" "${NC[@]}" "${TLS_OHA[@]}" "${PROXY_HEADERS_OHA[@]}"
proxy_metrics "$WORK/metrics-nc-0.txt"
other_cpu_begin
WARMUP=0 measure nc-proxy-tls "llmops-proxy --threads 1, TLS, new connection per request" "$PROXY_PID" "$URL" \
    "${NC[@]}" "${TLS_OHA[@]}" "${PROXY_HEADERS_OHA[@]}"
other_cpu_end nc-proxy-tls
proxy_metrics "$WORK/metrics-nc-1.txt"
python3 "$BENCH_DIR/benchlib.py" handshakes nc-proxy-tls "llmops-proxy --threads 1, TLS, new connection per request" \
    "$WORK/metrics-nc-0.txt" "$WORK/metrics-nc-1.txt" >>"$WORK/results.jsonl"
show nc-proxy-tls
for mode in full resumed; do
    proxy_metrics "$WORK/metrics-seq-$mode-0.txt"
    seq_tls "seq-proxy-$mode" "llmops-proxy --threads 1" "$PROXY_PORT" "$PROXY_PATH" "$mode" "$PROXY_PID" "${PROXY_HEADERS[@]}"
    PROXY_SENT_FILES+=("$RESUME_CONNS")
    proxy_metrics "$WORK/metrics-seq-$mode-1.txt"
    python3 "$BENCH_DIR/benchlib.py" handshakes "seq-proxy-$mode" "llmops-proxy --threads 1" \
        "$WORK/metrics-seq-$mode-0.txt" "$WORK/metrics-seq-$mode-1.txt" >>"$WORK/results.jsonl"
    show "seq-proxy-$mode"
done
stop_proxy "tls: 1 thread, TLS only"

# --- nginx: plain reverse proxy, then TLS terminator --------------------------------------
measure_watched ka-nginx-plain "nginx reverse proxy (1 worker), plain HTTP, keep-alive" "$RPROXY_PID" \
    "http://127.0.0.1:$NGX_PORT$NGX_PATH" "${CT[@]}"
measure_watched nc-nginx-plain "nginx reverse proxy (1 worker), plain HTTP, new connection per request" "$RPROXY_PID" \
    "http://127.0.0.1:$NGX_PORT$NGX_PATH" "${NC[@]}" "${CT[@]}"
measure_watched ka-nginx-tls "nginx TLS terminator (1 worker), keep-alive" "$TLSPROXY_PID" \
    "https://127.0.0.1:$NGX_TLS_PORT$NGX_PATH" "${TLS_OHA[@]}" "${CT[@]}"
URL="https://127.0.0.1:$NGX_TLS_NC_PORT$NGX_PATH"
wait_quiet
warm_up nc-nginx-tls "$TLSPROXY_PID" "$URL" "${NC[@]}" "${TLS_OHA[@]}" "${CT[@]}"
sleep 2
read -r r0 f0 < <(nginx_reused_count)
other_cpu_begin
WARMUP=0 measure nc-nginx-tls "nginx TLS terminator (1 worker), new connection per request" "$TLSPROXY_PID" "$URL" \
    "${NC[@]}" "${TLS_OHA[@]}" "${CT[@]}"
other_cpu_end nc-nginx-tls
sleep 2
read -r r1 f1 < <(nginx_reused_count)
python3 "$BENCH_DIR/benchlib.py" handshakes-count nc-nginx-tls "nginx TLS terminator (1 worker), new connection per request" \
    "$((r1 - r0))" "$((f1 - f0))" >>"$WORK/results.jsonl"
NGX_PROTOS="$(awk -v a="$((r0 + f0))" -v b="$((r1 + f1))" 'NR > a && NR <= b {print $2}' "$WORK/tlsproxy-reused.log" | sort | uniq -c | awk '{printf "%s%s ×%s", (NR>1?", ":""), $2, $1}')"
python3 "$BENCH_DIR/benchlib.py" note nc-nginx-protocols "Protocols nginx logged (\`\$ssl_protocol\`) for the requests of (nc-nginx-tls): $NGX_PROTOS." >>"$WORK/results.jsonl"
show nc-nginx-tls
for mode in full resumed; do
    sleep 2
    read -r r0 f0 < <(nginx_reused_count)
    seq_tls "seq-nginx-$mode" "nginx TLS terminator (1 worker)" "$NGX_TLS_NC_PORT" "$NGX_PATH" "$mode" "$TLSPROXY_PID" \
        "Content-Type: application/json"
    sleep 2
    read -r r1 f1 < <(nginx_reused_count)
    python3 "$BENCH_DIR/benchlib.py" handshakes-count "seq-nginx-$mode" "nginx TLS terminator (1 worker)" \
        "$((r1 - r0))" "$((f1 - f0))" >>"$WORK/results.jsonl"
    show "seq-nginx-$mode"
done

TLS_FAIL="$(grep -c -v -e '^$' "$WORK/tlsproxy-error.log" 2>/dev/null || true)"
if [ "${TLS_FAIL:-0}" -gt 0 ]; then
    python3 "$BENCH_DIR/benchlib.py" note errlog "nginx TLS terminator's error log (level warn): ${TLS_FAIL} lines, first: \`$(head -n 1 "$WORK/tlsproxy-error.log" | cut -c1-200)\`" >>"$WORK/results.jsonl"
fi

record_configs stub rproxy tlsproxy
append_section tls
