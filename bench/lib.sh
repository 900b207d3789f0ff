# Shared functions of the scripts of bench/ (sourced, not run; profile.sh takes only the
# load's credentials and headers). Everything listens on and sends to 127.0.0.1 only.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

DURATION="${DURATION:-10}"
CONC="${CONC:-32}"
WARMUP="${WARMUP:-2}"
TTFB_REQUESTS="${TTFB_REQUESTS:-200}"
RESULTS="${RESULTS:-$BENCH_DIR/RESULTS.md}" # where append_section appends
MODEL_ID="amazon.nova-lite-v1:0"
TRACKING_KEY="trk_bench_0123456789abcdef"
AKID="AKIDBENCH0000000001"
SECRET="benchsecret0123456789"

PIDS=()          # processes this script started (killed by pid on exit)
PROXY_TLS_CURL=()    # curl's TLS arguments to reach the running llmops-proxy (launch_proxy)
BIN_COPY=""      # private copy of the release binary (removed on exit)
PROXY_SENT_FILES=()  # oha JSONs of the requests sent to the running llmops-proxy
WORK=""
CMDS_FILE=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    if [ -n "${ON_DIE:-}" ]; then
        local hook="$ON_DIE"
        ON_DIE=""
        "$hook" "$*"
    fi
    printf '\nbench: ERROR: %s\n' "$*" >&2
    [ -n "$WORK" ] && printf 'bench: logs and raw results kept in %s\n' "$WORK" >&2
    exit 1
}

cleanup() {
    local rc=$?
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    [ -n "${BIN_COPY:-}" ] && rm -f "$BIN_COPY"
    if [ "$rc" -eq 0 ] && [ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ]; then
        rm -rf "$WORK"
    elif [ -n "$WORK" ]; then
        printf 'bench: work dir kept: %s\n' "$WORK" >&2
    fi
}

trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------------------

# ensure_tools [COMMAND...]: nginx, wrk, curl, python3 and the COMMANDs (each its own apt
# package) installed where missing; oha with cargo.
# shellcheck disable=SC2120 # the COMMANDs are optional
ensure_tools() {
    local missing=() t
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    for t in wrk curl python3 "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        # Debian's nginx package may start its system service (port 80 on every address)
        # where an init system runs: the install just started it, so stop it again.
        if [[ " ${missing[*]} " == *" nginx "* ]] && [ -f /run/nginx.pid ]; then
            service nginx stop >/dev/null 2>&1 || /usr/sbin/nginx -s quit 2>/dev/null || true
        fi
    fi
    export PATH="$PATH:/usr/sbin"
    if ! command -v oha >/dev/null 2>&1; then
        log "installing oha (cargo install oha --locked; a few minutes)"
        cargo install oha --locked
    fi
    oha_flags
}

# oha_flags: OHA, OHA_JSON, OHA_WAIT, OHA_VERSION for the installed oha.
oha_flags() {
    OHA="$(command -v oha)" || die "oha is not installed (cargo install oha --locked)"
    local help
    help="$("$OHA" --help 2>&1)"
    # The JSON flag changed across oha versions: --output-format json (1.5+) or -j/--json.
    if grep -q -- '--output-format' <<<"$help"; then
        OHA_JSON=(--output-format json)
    else
        OHA_JSON=(--json)
    fi
    OHA_WAIT=()
    if grep -q -- '--wait-ongoing-requests-after-deadline' <<<"$help"; then
        OHA_WAIT=(--wait-ongoing-requests-after-deadline)
    fi
    OHA_VERSION="$("$OHA" --version 2>&1 | sed -n 1p)"
}

build_proxy() {
    if [ -n "${BENCH_BIN:-}" ]; then
        # A binary built elsewhere (another commit, another profile): no build.
        BIN="$(cd "$(dirname "$BENCH_BIN")" && pwd)/$(basename "$BENCH_BIN")"
        [ -x "$BIN" ] || die "BENCH_BIN=$BENCH_BIN is not an executable"
        PROXY_COMMIT="binary \`$BENCH_BIN\` given in BENCH_BIN (not built by this script)"
        return 0
    fi
    if [ -n "${BENCH_REF:-}" ]; then
        build_ref "$BENCH_REF"
        return 0
    fi
    log "cargo build --release (may take ~10 min on 2 cores; waits if another build holds the lock)"
    (cd "$ROOT" && cargo build --release) >&2 \
        || die "cargo build --release failed: the working tree does not build (someone editing src/?); fix it, or point BENCH_BIN at a built binary"
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/llmops-proxy"
    [ -x "$BIN" ] || die "no binary at $BIN after cargo build --release"
    PROXY_COMMIT="commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(cd "$ROOT" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        PROXY_COMMIT="$PROXY_COMMIT plus uncommitted changes in src/"
    fi
    PROXY_COMMIT="$PROXY_COMMIT, \`cargo build --release\`"
    # Others may rebuild target/ while the benchmark runs: every run starts a private copy.
    BIN_COPY="$(mktemp /tmp/llmops-bench-proxy.XXXXXX)"
    cp "$BIN" "$BIN_COPY"
    chmod 755 "$BIN_COPY"
    BIN="$BIN_COPY"
}

# build_ref REV: builds a commit from a clean `git archive` export (not the working tree),
# in its own target dir (~/.cache/llmops-bench/target, seeded once from target/release so
# only the crate itself compiles); the repository's target/ is left alone.
build_ref() {
    local rev src tgt
    rev="$(cd "$ROOT" && git rev-parse --short "$1^{commit}")" || die "BENCH_REF=$1 is not a commit"
    src="$(mktemp -d /tmp/llmops-bench-src.XXXXXX)"
    tgt="${BENCH_REF_TARGET:-$HOME/.cache/llmops-bench/target}"
    (cd "$ROOT" && git archive "$rev") | tar -x -C "$src"
    if [ ! -d "$tgt/release" ] && [ -d "$ROOT/target/release/deps" ]; then
        log "seeding $tgt from target/release (dependencies only are reused)"
        mkdir -p "$tgt"
        cp -a "$ROOT/target/release" "$tgt/"
    fi
    log "cargo build --release of $rev (BENCH_REF=$1) in $src"
    (cd "$src" && CARGO_TARGET_DIR="$tgt" cargo build --release) >&2 || { rm -rf "$src"; die "cargo build --release of $rev failed"; }
    rm -rf "$src"
    BIN_COPY="$(mktemp /tmp/llmops-bench-proxy.XXXXXX)"
    cp "$tgt/release/llmops-proxy" "$BIN_COPY"
    chmod 755 "$BIN_COPY"
    BIN="$BIN_COPY"
    PROXY_COMMIT="commit $rev (BENCH_REF=$1: a clean export, working tree not used), \`cargo build --release\`"
}

make_workdir() {
    WORK="$(mktemp -d /tmp/llmops-bench.XXXXXX)"
    mkdir -p "$WORK/www" "$WORK/tmp"
    # nginx workers started by root run as an unprivileged user: they must read www/.
    chmod 755 "$WORK" "$WORK/www" "$WORK/tmp"
    CMDS_FILE="$WORK/commands.txt"
    : >"$CMDS_FILE"
    : >"$WORK/results.jsonl"
    python3 "$BENCH_DIR/stub_payloads.py" "$WORK/payload" >&2
    cp "$WORK/payload/stream.bin" "$WORK/www/__converse_stream"
    chmod 644 "$WORK/www/__converse_stream"
    BODY_FILE="$WORK/payload/request.json"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL [SECONDS]: until URL answers anything (any status), or fail.
wait_http() {
    local url="$1" secs="${2:-15}" i
    for i in $(seq 1 $((secs * 10))); do
        if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# forget_pid PID: a process that has been reaped leaves PIDS (its number may be reused).
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && [ "$p" != "$1" ] && keep+=("$p")
    done
    PIDS=("${keep[@]:-}")
}

record_cmd() { printf '%s\n' "$*" >>"$CMDS_FILE"; }

# --- nginx -------------------------------------------------------------------------------

nginx_common() { # $1 = name
    cat <<EOF
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 8192; }
EOF
}

nginx_http_common() { # $1 = name
    cat <<EOF
    access_log off;
    client_body_temp_path $WORK/tmp/$1-body;
    proxy_temp_path $WORK/tmp/$1-proxy;
    fastcgi_temp_path $WORK/tmp/$1-fastcgi;
    uwsgi_temp_path $WORK/tmp/$1-uwsgi;
    scgi_temp_path $WORK/tmp/$1-scgi;
    client_body_buffer_size 256k;
    client_max_body_size 1m;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server_tokens off;
EOF
}

write_stub_conf() { # $1 = port
    local json
    json="$(cat "$WORK/payload/converse.json")"
    {
        nginx_common stub
        cat <<EOF
http {
$(nginx_http_common stub)
    types { }
    server {
        listen 127.0.0.1:$1 backlog=4096;
        # Converse: a fixed answer with a usage block (nginx reads and drops the body).
        location ~ ^/model/[^/]+/converse\$ {
            default_type application/json;
            add_header x-amzn-RequestId \$request_id always;
            return 200 '$json';
        }
        # ConverseStream: the static handler refuses POST, so an error_page redirect
        # (which turns the request into a GET) serves the pre-encoded event stream.
        location ~ ^/model/[^/]+/converse-stream\$ {
            error_page 418 =200 /__converse_stream;
            return 418;
        }
        location = /__converse_stream {
            internal;
            root $WORK/www;
            default_type application/vnd.amazon.eventstream;
            add_header x-amzn-RequestId \$request_id always;
        }
        location / { return 404; }
    }
}
EOF
    } >"$WORK/stub.conf"
}

write_rproxy_conf() { # $1 = listen port, $2 = stub port
    {
        nginx_common rproxy
        cat <<EOF
http {
$(nginx_http_common rproxy)
    upstream stub {
        server 127.0.0.1:$2;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$1 backlog=4096;
        location / {
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$WORK/rproxy.conf"
}

start_nginx() { # $1 = name (stub|rproxy); sets NGINX_PID_<name>
    local name="$1"
    mkdir -p "$WORK/$name-prefix"
    nginx -t -q -p "$WORK/$name-prefix" -e "$WORK/$name-error.log" -c "$WORK/$name.conf" \
        || die "nginx rejected $WORK/$name.conf (see $WORK/$name-error.log)"
    nginx -p "$WORK/$name-prefix" -e "$WORK/$name-error.log" -c "$WORK/$name.conf" \
        >"$WORK/$name.out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    printf -v "NGINX_PID_$name" '%s' "$pid"
}

start_stub() {
    STUB_PORT="$(free_port)"
    write_stub_conf "$STUB_PORT"
    start_nginx stub
    STUB_PID="$NGINX_PID_stub"
    wait_http "http://127.0.0.1:$STUB_PORT/" || die "stub nginx did not start (see $WORK/stub-error.log)"
    local code
    code="$(curl -s -o "$WORK/check-stub.json" -w '%{http_code}' -X POST --data-binary @"$BODY_FILE" \
        "http://127.0.0.1:$STUB_PORT/model/$MODEL_ID/converse")"
    [ "$code" = 200 ] || die "stub answered $code to a converse POST"
    cmp -s "$WORK/check-stub.json" "$WORK/payload/converse.json" || die "stub converse body differs from converse.json"
    curl -s -o "$WORK/check-stub.bin" -X POST --data-binary @"$BODY_FILE" \
        "http://127.0.0.1:$STUB_PORT/model/$MODEL_ID/converse-stream"
    cmp -s "$WORK/check-stub.bin" "$WORK/payload/stream.bin" || die "stub converse-stream body differs from stream.bin"
    log "stub upstream (nginx, 1 worker) on 127.0.0.1:$STUB_PORT, pid $STUB_PID"
}

# start_rproxy: the one-worker nginx reverse proxy in front of the stub; sets NGX_PORT and
# RPROXY_PID.
start_rproxy() {
    NGX_PORT="$(free_port)"
    write_rproxy_conf "$NGX_PORT" "$STUB_PORT"
    start_nginx rproxy
    RPROXY_PID="$NGINX_PID_rproxy"
    wait_http "http://127.0.0.1:$NGX_PORT/" || die "nginx reverse proxy did not start (see $WORK/rproxy-error.log)"
}

# --- llmops-proxy ------------------------------------------------------------------------

# start_proxy NAME THREADS [ENV=VALUE...] [-- SERVE_FLAGS...]: sets PROXY_PID, PROXY_PORT,
# PROXY_USAGE, PROXY_NAME, PROXY_BASE (its URL), PROXY_TLS_CURL (curl's TLS arguments).
start_proxy() { launch_proxy plain "$@"; }

# start_proxy_tls NAME THREADS [ENV=VALUE...] [-- SERVE_FLAGS...]: like start_proxy, but
# HTTPS only (--listen none --listen-tls), with the certificate of make_test_ca; the
# checks go over TLS (curl --cacert). PROXY_PORT is the TLS port.
start_proxy_tls() { launch_proxy tls "$@"; }

# launch_proxy plain|tls NAME THREADS [ENV=VALUE...] [-- SERVE_FLAGS...]: starts llmops-proxy
# against the stub (plain: --listen; tls: --listen none --listen-tls with make_test_ca's
# certificate), waits until it is healthy and byte-compares one converse and one
# converse-stream answer with the stub's.
launch_proxy() {
    local mode="$1" name="$2" threads="$3"
    shift 3
    local envs=() flags=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then shift; flags=("$@"); break; fi
        envs+=("$1")
        shift
    done
    PROXY_NAME="$name"
    PROXY_PORT="$(free_port)"
    PROXY_USAGE="$WORK/usage-$name"
    mkdir -p "$PROXY_USAGE"
    local listen=(--listen "127.0.0.1:$PROXY_PORT") over=""
    PROXY_BASE="http://127.0.0.1:$PROXY_PORT"
    PROXY_TLS_CURL=()
    if [ "$mode" = tls ]; then
        listen=(--listen none --listen-tls "127.0.0.1:$PROXY_PORT" --tls-cert "$TLS_CHAIN" --tls-key "$TLS_KEY")
        PROXY_BASE="https://127.0.0.1:$PROXY_PORT"
        PROXY_TLS_CURL=(--cacert "$TLS_CA")
        over=" over TLS"
    fi
    local cmd=("$BIN" serve "${listen[@]}" --threads "$threads"
        --upstream-endpoint "http://127.0.0.1:$STUB_PORT" --usage-dir "$PROXY_USAGE" "${flags[@]}")
    record_cmd "${envs[*]:+${envs[*]} }${cmd[*]/#$BIN/target/release/llmops-proxy} 2>$WORK/proxy-$name.log"
    env "${envs[@]}" "${cmd[@]}" >"$WORK/proxy-$name.out" 2>"$WORK/proxy-$name.log" &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    PROXY_SENT_FILES=(2) # the two check requests below
    local i
    for i in $(seq 1 150); do
        if [ "$(curl -s "${PROXY_TLS_CURL[@]}" -o /dev/null -w '%{http_code}' --max-time 1 "$PROXY_BASE/healthz")" = 200 ]; then
            break
        fi
        kill -0 "$PROXY_PID" 2>/dev/null || die "llmops-proxy ($name) exited at start-up: $(tail -n 5 "$WORK/proxy-$name.log")"
        sleep 0.1
    done
    [ "$i" -lt 150 ] || die "llmops-proxy ($name) not healthy$over after 15 s: $(tail -n 5 "$WORK/proxy-$name.log")"
    # One request of each kind through it, byte-compared with the stub's answers.
    local code
    code="$(curl -s "${PROXY_TLS_CURL[@]}" -o "$WORK/check-$name.json" -w '%{http_code}' "${PROXY_HEADERS_CURL[@]}" \
        --data-binary @"$BODY_FILE" "$PROXY_BASE/bedrock/model/$MODEL_ID/converse")"
    [ "$code" = 200 ] || die "llmops-proxy ($name) answered $code to a converse request$over: $(head -c 300 "$WORK/check-$name.json")"
    cmp -s "$WORK/check-$name.json" "$WORK/payload/converse.json" || die "llmops-proxy ($name) changed the converse body"
    code="$(curl -s "${PROXY_TLS_CURL[@]}" -o "$WORK/check-$name.bin" -w '%{http_code}' "${PROXY_HEADERS_CURL[@]}" \
        --data-binary @"$BODY_FILE" "$PROXY_BASE/bedrock/model/$MODEL_ID/converse-stream")"
    [ "$code" = 200 ] || die "llmops-proxy ($name) answered $code to a converse-stream request$over"
    cmp -s "$WORK/check-$name.bin" "$WORK/payload/stream.bin" || die "llmops-proxy ($name) changed the event stream"
    if [ "$mode" = tls ]; then
        log "llmops-proxy ($name, TLS only, --threads $threads${flags[*]:+, ${flags[*]}}) on $PROXY_BASE, pid $PROXY_PID"
    else
        log "llmops-proxy ($name, --threads $threads${envs[*]:+, ${envs[*]}}${flags[*]:+, ${flags[*]}}) on 127.0.0.1:$PROXY_PORT, pid $PROXY_PID"
    fi
}

# proxy_metrics FILE: scrapes /metrics of the running llmops-proxy, over TLS after
# start_proxy_tls (the scrape's own connection is then one more full handshake, already
# counted in what it returns).
proxy_metrics() {
    curl -s "${PROXY_TLS_CURL[@]}" "$PROXY_BASE/metrics" >"$1" || true
}

# stop_proxy LABEL: scrape /metrics, SIGTERM, wait for a clean exit, then the proxy-check
# record (metrics, log levels, Parquet rows) into results.jsonl; after start_proxy or
# start_proxy_tls.
stop_proxy() {
    local name="$PROXY_NAME" label="$1"
    proxy_metrics "$WORK/metrics-$name.txt"
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    local i rc=0
    for i in $(seq 1 600); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PROXY_PID" 2>/dev/null; then
        die "llmops-proxy ($name) still running 60 s after SIGTERM"
    fi
    wait "$PROXY_PID" || rc=$?
    forget_pid "$PROXY_PID"
    [ "$rc" -eq 0 ] || die "llmops-proxy ($name) exited with status $rc after SIGTERM: $(tail -n 5 "$WORK/proxy-$name.log")"
    python3 "$BENCH_DIR/benchlib.py" proxy-check "$label" "$WORK/metrics-$name.txt" "$PROXY_USAGE" \
        "$WORK/proxy-$name.log" "${PROXY_SENT_FILES[@]}" >>"$WORK/results.jsonl" || die "llmops-proxy ($name) usage/metrics check failed"
}

PROXY_HEADERS=(
    "X-Cloudidr-Key: $TRACKING_KEY"
    "X-Aws-Access-Key-Id: $AKID"
    "X-Aws-Secret-Access-Key: $SECRET"
    "X-Aws-Region: us-east-1"
    "X-Department: bench"
    "Content-Type: application/json"
)
PROXY_HEADERS_CURL=()
PROXY_HEADERS_OHA=()
for h in "${PROXY_HEADERS[@]}"; do
    PROXY_HEADERS_CURL+=(-H "$h")
    PROXY_HEADERS_OHA+=(-H "$h")
done
unset h

# --- measuring ---------------------------------------------------------------------------

cpu_seconds() { python3 "$BENCH_DIR/benchlib.py" cpu "$@"; }

# measure SCENARIO LABEL PID URL [oha args...]: warm-up, then a timed oha run; the CPU
# seconds of PID and its children over the timed run go with oha's JSON into results.jsonl.
# With SPLIT_WRITER set and PID the proxy, the usage-writer thread's CPU over the timed run
# goes in too (a `writer` record: what of the proxy's CPU per request is the writer's).
measure() {
    local scenario="$1" label="$2" pid="$3" url="$4"
    shift 4
    local extra=("$@")
    local out="$WORK/oha-$scenario.json"
    warm_up "$scenario" "$pid" "$url" "${extra[@]}"
    local cmd=("$OHA" -z "${DURATION}s" -c "$CONC" --no-tui "${OHA_JSON[@]}" "${OHA_WAIT[@]}" -m POST -D "$BODY_FILE" "${extra[@]}" "$url")
    record_cmd "# ($scenario) $label"
    record_cmd "$(printf '%q ' oha "${cmd[@]:1}" | sed "s#$WORK/payload/##g")"
    log "($scenario) $label: oha ${DURATION}s -c $CONC ${extra[*]:+(${extra[*]})}"
    local c0 c1 w0="" w1=""
    if [ -n "${SPLIT_WRITER:-}" ] && [ "$pid" = "${PROXY_PID:-}" ]; then
        w0="$(python3 "$BENCH_DIR/benchlib.py" thread-cpu "$pid" usage-writer)"
    fi
    c0="$(cpu_seconds "$pid")"
    "${cmd[@]}" >"$out" 2>"$WORK/oha-$scenario.err" || die "oha failed for ($scenario): $(tail -n 3 "$WORK/oha-$scenario.err")"
    c1="$(cpu_seconds "$pid")"
    [ -n "$w0" ] && w1="$(python3 "$BENCH_DIR/benchlib.py" thread-cpu "$pid" usage-writer)"
    [ "$pid" = "${PROXY_PID:-}" ] && PROXY_SENT_FILES+=("$out")
    python3 "$BENCH_DIR/benchlib.py" oha "$scenario" "$label" "$out" "$c0" "$c1" >>"$WORK/results.jsonl" \
        || die "($scenario) $label: fewer than 99% of responses were 200 (see $out)"
    if [ -n "$w0" ]; then
        python3 "$BENCH_DIR/benchlib.py" writer "$WORK/results.jsonl" "$scenario" "$w0" "$w1" >>"$WORK/results.jsonl"
    fi
    python3 "$BENCH_DIR/benchlib.py" show "$WORK/results.jsonl" "$scenario" >&2
}

# warm_up SCENARIO PID URL [oha args...]: WARMUP seconds of the load before measure's run;
# called on its own, a counter can be read between the warm-up and the measured run (then
# call measure with WARMUP=0).
warm_up() {
    local scenario="$1" pid="$2" url="$3"
    shift 3
    [ "$WARMUP" -gt 0 ] || return 0
    "$OHA" -z "${WARMUP}s" -c "$CONC" --no-tui "${OHA_JSON[@]}" "${OHA_WAIT[@]}" -m POST -D "$BODY_FILE" \
        "$@" "$url" >"$WORK/oha-$scenario-warmup.json" 2>"$WORK/oha-$scenario-warmup.err" || true
    if [ "$pid" = "${PROXY_PID:-}" ]; then PROXY_SENT_FILES+=("$WORK/oha-$scenario-warmup.json"); fi
    return 0
}

# ttfb SCENARIO LABEL URL [curl args...]: TTFB_REQUESTS sequential keep-alive requests from
# one curl process; time_starttransfer of each.
ttfb() {
    local scenario="$1" label="$2" url="$3"
    shift 3
    local args=() i
    for i in $(seq 1 "$TTFB_REQUESTS"); do args+=(-o /dev/null "$url"); done
    record_cmd "# ($scenario) $label: one curl process, $TTFB_REQUESTS sequential requests on one keep-alive connection"
    record_cmd "$(printf '%q ' curl -s -X POST --data-binary @request.json "$@" -w '%{http_code} %{time_starttransfer} %{time_total}\n' -o /dev/null "$url") # x$TTFB_REQUESTS"
    log "($scenario) $label: $TTFB_REQUESTS sequential requests"
    curl -s -X POST --data-binary @"$BODY_FILE" "$@" \
        -w '%{http_code} %{time_starttransfer} %{time_total}\n' "${args[@]}" >"$WORK/ttfb-$scenario.txt" \
        || die "curl failed for ($scenario)"
    [ -n "${TTFB_TO_PROXY:-}" ] && PROXY_SENT_FILES+=("$TTFB_REQUESTS")
    python3 "$BENCH_DIR/benchlib.py" ttfb "$scenario" "$label" "$WORK/ttfb-$scenario.txt" >>"$WORK/results.jsonl" \
        || die "($scenario) $label: not every streaming response was 200 (see $WORK/ttfb-$scenario.txt)"
    python3 "$BENCH_DIR/benchlib.py" show "$WORK/results.jsonl" "$scenario" >&2
}

machine_facts() {
    MACHINE_NPROC="$(nproc)"
    MACHINE_CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    MACHINE_KERNEL="$(uname -r)"
    MACHINE_CLK_TCK="$(getconf CLK_TCK)"
    export MACHINE_NPROC MACHINE_CPU MACHINE_KERNEL MACHINE_CLK_TCK
}

# --- TLS (bench/tls.sh) ------------------------------------------------------------------

TLS_KEY_TYPE="${TLS_KEY_TYPE:-ec}" # ec: ECDSA P-256 | rsa: RSA 2048

# make_test_ca DIR: a throw-away CA and a leaf for 127.0.0.1 / localhost signed by it
# (rustls refuses a self-signed CA:TRUE leaf). Sets TLS_CA (CA cert), TLS_CHAIN (leaf +
# CA), TLS_KEY (leaf key, PKCS#8 PEM), TLS_CERT_DESC.
make_test_ca() {
    local d="$1" alg=() ku="digitalSignature"
    case "$TLS_KEY_TYPE" in
        ec) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
        rsa) alg=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048); ku="digitalSignature,keyEncipherment" ;;
        *) die "TLS_KEY_TYPE must be ec or rsa, not $TLS_KEY_TYPE" ;;
    esac
    mkdir -p "$d"
    {
        openssl genpkey "${alg[@]}" -out "$d/ca.key" &&
            openssl req -x509 -new -key "$d/ca.key" -sha256 -days 30 -subj "/CN=llmops-bench test CA" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -out "$d/ca.pem" &&
            openssl genpkey "${alg[@]}" -out "$d/server.key" &&
            openssl req -new -key "$d/server.key" -subj "/CN=127.0.0.1" -out "$d/server.csr" &&
            printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,%s\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' \
                "$ku" >"$d/server.ext" &&
            openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
                -set_serial "0x$(openssl rand -hex 8)" -days 30 -sha256 -extfile "$d/server.ext" \
                -out "$d/server.pem" &&
            cat "$d/server.pem" "$d/ca.pem" >"$d/chain.pem" &&
            openssl verify -CAfile "$d/ca.pem" "$d/server.pem"
    } >"$d/openssl.log" 2>&1 || die "openssl could not make the test CA and certificate (see $d/openssl.log)"
    chmod 644 "$d"/*.pem
    TLS_CA="$d/ca.pem"
    TLS_CHAIN="$d/chain.pem"
    TLS_KEY="$d/server.key"
    case "$TLS_KEY_TYPE" in
        ec) TLS_CERT_DESC="ECDSA P-256 leaf signed by an ECDSA P-256 test CA (SHA-256), SAN IP:127.0.0.1" ;;
        rsa) TLS_CERT_DESC="RSA 2048 leaf signed by an RSA 2048 test CA (SHA-256), SAN IP:127.0.0.1" ;;
    esac
}

# write_tls_rproxy_conf KA_PORT NC_PORT STUB_PORT: nginx terminating TLS (one worker) and
# proxying to the stub like rproxy.conf; TLS 1.2 and 1.3 as rustls (nginx 1.22's default
# lacks 1.3). KA_PORT: access log off (the keep-alive runs);
# NC_PORT: one buffered log line per request holding $ssl_session_reused (r: resumed,
# .: full) and $ssl_protocol, to count the handshakes of the new-connection runs.
write_tls_rproxy_conf() {
    {
        nginx_common tlsproxy
        cat <<NGINX_TLS_CONF
http {
$(nginx_http_common tlsproxy)
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $TLS_CHAIN;
    ssl_certificate_key $TLS_KEY;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    log_format reused '\$ssl_session_reused \$ssl_protocol';
    upstream stub {
        server 127.0.0.1:$3;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$1 ssl backlog=4096;
        location / {
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:$2 ssl backlog=4096;
        access_log $WORK/tlsproxy-reused.log reused buffer=64k flush=1s;
        location / {
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX_TLS_CONF
    } >"$WORK/tlsproxy.conf"
}

# nginx_reused_count: "RESUMED FULL" requests in tlsproxy-reused.log so far (nginx
# flushes it within 1 s: call this 2 s after the load stopped).
nginx_reused_count() {
    local f="$WORK/tlsproxy-reused.log" r n
    [ -f "$f" ] || { echo "0 0"; return 0; }
    r="$(grep -c '^r ' "$f" || true)"
    n="$(wc -l <"$f" | tr -d ' ')"
    printf '%s %s\n' "$r" "$((n - r))"
}

# tls_negotiated PORT: "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519" as openssl s_client sees it.
tls_negotiated() {
    local out
    out="$(timeout 5 openssl s_client -connect "127.0.0.1:$1" -CAfile "$TLS_CA" </dev/null 2>&1 || true)"
    # "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" (the SSL-Session block may be missing).
    printf '%s %s, verify: %s\n' "$(sed -n 's/^New, \([^,]*\), Cipher is \(.*\)/\1 \2/p' <<<"$out" | head -1)" \
        "$(sed -n 's/^Server Temp Key: //p' <<<"$out" | head -1)" \
        "$(sed -n 's/^ *Verify return code: //p' <<<"$out" | head -1)"
}

# --- budgets (bench/budgets.sh) ----------------------------------------------------------

# write_budgets FILE N [EXHAUSTED_VALUE]: N budgets cycling over the five scopes; even ones
# value "*", odd ones a specific value (for tenant, department and model the first specific
# one is the value the load sends, so it matches); two in four `block`, two `alert`; all
# per day, limit $1,000,000 (never reached). With EXHAUSTED_VALUE, the last department
# budget becomes `b-exhausted`: department = EXHAUSTED_VALUE, block, limit $0.000001,
# which one request with that department exhausts. Prints how many budgets the load of
# run.sh matches.
write_budgets() {
    python3 - "$@" <<'PY_BUDGETS'
import hashlib, sys
path, n = sys.argv[1], int(sys.argv[2])
exhausted = sys.argv[3] if len(sys.argv) > 3 else None
tenant = "trk:" + hashlib.sha256(b"trk_bench_0123456789abcdef").hexdigest()[:12]
scopes = ["tenant", "department", "project", "agent", "model"]
load_value = {"tenant": tenant, "department": "bench", "model": "amazon.nova-lite-v1:0"}
out, specific = [], set()
last_dept = max(i for i in range(n) if scopes[i % 5] == "department" and i % 2 == 1)
for i in range(n):
    scope = scopes[i % 5]
    if i % 2 == 0:
        value = "*"
    elif scope not in specific and scope in load_value:
        specific.add(scope)
        value = load_value[scope]
    else:
        value = f"{scope}-{i:03d}"
    action = "block" if (i // 2) % 2 == 0 else "alert"
    name, limit = f"b{i:03d}-{scope}", "1000000.00"
    if exhausted and i == last_dept:
        name, value, limit, action = "b-exhausted", exhausted, "0.000001", "block"
    out.append(
        f'[[budget]]\nname = "{name}"\nscope = "{scope}"\nvalue = "{value}"\nperiod = "day"\n'
        f'limit_usd = "{limit}"\naction = "{action}"\n'
    )
with open(path, "w") as f:
    f.write("\n".join(out))
# How many of them the load (tenant, department, model; no project or agent) matches.
print(sum(1 for b in out if any(f'scope = "{k}"' in b and (f'value = "{v}"' in b or 'value = "*"' in b)
                               for k, v in load_value.items())))
PY_BUDGETS
}

# --- other load (bench/tls.sh, bench/budgets.sh) -----------------------------------------

# other_cpu_begin / other_cpu_end SCENARIO: the CPU that processes outside this script's
# process tree used in between (other people's builds, fuzzers...), as an "other" record.
other_cpu_begin() { OTHER_CPU_0="$(python3 "$BENCH_DIR/benchlib.py" busy $$)"; }
other_cpu_end() {
    local b1
    b1="$(python3 "$BENCH_DIR/benchlib.py" busy $$)"
    # shellcheck disable=SC2086 # three numbers each
    python3 "$BENCH_DIR/benchlib.py" other "$1" $OTHER_CPU_0 $b1 >>"$WORK/results.jsonl"
    python3 - "$WORK/results.jsonl" <<'PY_OTHER' >&2
import json, sys
r = [json.loads(x) for x in open(sys.argv[1]) if x.strip()][-1]
print(f"    -> other processes: {r['other_s']} CPU s in {r['wall_s']} s")
PY_OTHER
}

# wait_quiet: waits (up to QUIET_WAIT seconds, default 300; 0: never) until processes
# outside this script's tree use less than a fifth of a core over one second, so that a
# measured run does not start beside someone's build or fuzzer. It cannot stop one that
# starts during the run: the "other" records say that.
QUIET_WAIT="${QUIET_WAIT:-300}"
wait_quiet() {
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    local start=$SECONDS a b other said=""
    while :; do
        a="$(python3 "$BENCH_DIR/benchlib.py" busy $$)"
        sleep 1
        b="$(python3 "$BENCH_DIR/benchlib.py" busy $$)"
        # shellcheck disable=SC2086 # three numbers each
        other="$(python3 "$BENCH_DIR/benchlib.py" other quiet $a $b | python3 -c 'import json,sys; print(json.load(sys.stdin)["other_s"])')"
        if python3 -c "import sys; sys.exit(0 if $other < 0.2 else 1)"; then
            [ -z "$said" ] || log "machine quiet again after $((SECONDS - start)) s"
            return 0
        fi
        if [ $((SECONDS - start)) -ge "$QUIET_WAIT" ]; then
            log "other processes still use $other CPU s per second after ${QUIET_WAIT} s: measuring anyway"
            return 0
        fi
        if [ -z "$said" ]; then
            log "other processes use $other CPU s per second: waiting for a quiet machine (QUIET_WAIT=$QUIET_WAIT): $(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,3p | tr -s ' ' | tr '\n' ' ')"
            said=1
        fi
        sleep 4
    done
}

# measure_watched SCENARIO LABEL PID URL [oha args...]: measure, with its warm-up run apart
# (warm_up), after wait_quiet, recording the CPU other processes used during the measured
# run alone.
measure_watched() {
    local scenario="$1" label="$2" pid="$3" url="$4"
    shift 4
    wait_quiet
    warm_up "$scenario" "$pid" "$url" "$@"
    other_cpu_begin
    WARMUP=0 measure "$scenario" "$label" "$pid" "$url" "$@"
    other_cpu_end "$scenario"
}

# --- the section of RESULTS.md (every script) ---------------------------------------------

# begin_section INVOCATION [NOTE]: after ensure_tools and build_proxy, every script's start:
# a fresh work dir (NOTE goes into its log line), the machine's facts, and what the header
# of the section reads from the environment (INVOCATION: how the script was called).
begin_section() {
    make_workdir
    machine_facts
    log "work dir $WORK${2:+ ($2)}"
    BENCH_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
    BENCH_INVOCATION="$1"
    NGINX_VERSION="$(nginx -v 2>&1 | sed 's#.*: ##')"
    BODY_BYTES="$(wc -c <"$BODY_FILE" | tr -d ' ')"
    STREAM_BYTES="$(wc -c <"$WORK/payload/stream.bin" | tr -d ' ')"
    export BENCH_DATE BENCH_INVOCATION NGINX_VERSION BODY_BYTES STREAM_BYTES
    export OHA_VERSION PROXY_COMMIT DURATION WARMUP CONC TTFB_REQUESTS CMDS_FILE
}

# record_configs NAME...: the nginx configs WORK/NAME.conf of this run, commented, at the
# end of the exact commands.
record_configs() {
    local n
    echo "# nginx configs of this run (paths under the temporary work dir)" >>"$CMDS_FILE"
    for n in "$@"; do sed "s/^/# $n.conf: /" "$WORK/$n.conf" >>"$CMDS_FILE"; done
}

# ensure_results_file: creates $RESULTS with its introduction if it does not exist yet.
ensure_results_file() {
    [ -f "$RESULTS" ] && return 0
    cat >"$RESULTS" <<'EOF'
# Load benchmark results

Sections are appended by the scripts of bench/ (`run.sh`, `peers.sh`, `tls.sh`, `budgets.sh`);
see `bench/README.md` for what each figure means. The machines are shared and noisy: compare
ratios within one section, not absolute figures across sections.
EOF
}

# append_section KIND: benchlib.py's section of KIND (run | peers | tls | budgets) from
# results.jsonl, appended to $RESULTS and printed; every script's end.
append_section() {
    ensure_results_file
    python3 "$BENCH_DIR/benchlib.py" report "$WORK/results.jsonl" "$1" >"$WORK/section.md"
    cat "$WORK/section.md" >>"$RESULTS"
    cat "$WORK/section.md"
    log "appended to $RESULTS"
}
