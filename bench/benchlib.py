#!/usr/bin/env python3
"""Helpers of bench/run.sh, peers.sh, tls.sh and budgets.sh: CPU time, oha JSON, TTFB, proxy checks, report.

    benchlib.py cpu PID...                           CPU seconds (utime+stime) of PIDs and descendants
    benchlib.py oha SCEN LABEL JSON CPU0 CPU1 [TARGET]  one JSON line; exit 1 if < 99% of answers are 200
    benchlib.py ttfb SCEN LABEL FILE                 one JSON line from curl -w lines; exit 1 on non-200
    benchlib.py proxy-check NAME METRICS USAGE_DIR LOG [SENT_JSON...]  one JSON line
    benchlib.py show RESULTS.jsonl SCEN              prints one scenario's figures
    benchlib.py rate RESULTS.jsonl SCEN              half of SCEN's requests/s, as an integer
    benchlib.py report RESULTS.jsonl KIND            the markdown section (KIND: run | peers | tls | budgets)
    benchlib.py handshakes SCEN LABEL M0 M1          TLS handshakes llmops-proxy counted between two /metrics scrapes
    benchlib.py handshakes-count SCEN LABEL RESUMED FULL  the same, counted elsewhere (nginx's log)
    benchlib.py note SCEN TEXT                       a line for the report
    benchlib.py busy PID                             machine busy ticks, PID's tree ticks, monotonic time
    benchlib.py other SCEN B0 O0 T0 B1 O1 T1      one JSON line: CPU of other processes between two `busy`
    benchlib.py show-any RESULTS.jsonl SCEN          show, plus handshake and tls_resume.py records

CPU ticks come from /proc/PID/stat fields 14 and 15 (utime, stime; every thread of the
process), divided by CLK_TCK (os.sysconf("SC_CLK_TCK"), as `getconf CLK_TCK`). For nginx
the master's children (the worker) are added.
"""

import glob
import json
import os
import re
import statistics
import sys

MIN_OK = 0.99


def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0
    fields = s[s.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def children(pid):
    out = []
    for d in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            out.append(int(d.split("/")[2]))
    return out


def cmd_cpu(pids):
    seen, todo, total = set(), [int(p) for p in pids], 0
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += ticks(p)
        todo.extend(children(p))
    print(f"{total / os.sysconf('SC_CLK_TCK'):.3f}")


def ms(v):
    return None if v is None else round(v * 1000.0, 3)


def cmd_oha(scen, label, path, cpu0, cpu1, target=""):
    with open(path) as f:
        d = json.load(f)
    summary = d.get("summary", {})
    pct = d.get("latencyPercentiles") or d.get("latency_percentiles") or {}
    fb = d.get("firstBytePercentiles") or {}
    status = {str(k): int(v) for k, v in (d.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (d.get("errorDistribution") or {}).items()}
    answered = sum(status.values())
    total = answered + sum(errors.values())
    ok = status.get("200", 0)
    cpu = float(cpu1) - float(cpu0)
    rec = {
        "kind": "oha",
        "scenario": scen,
        "label": label,
        "target": target,
        "requests": total,
        "ok": ok,
        "ok_ratio": (ok / total) if total else 0.0,
        "status": status,
        "errors": errors,
        "rps": summary.get("requestsPerSec"),
        "ok_rps": (summary.get("requestsPerSec") or 0) * (ok / total if total else 0),
        "p50_ms": ms(pct.get("p50")),
        "p99_ms": ms(pct.get("p99")),
        "p999_ms": ms(pct.get("p99.9")),
        "max_ms": ms(summary.get("slowest")),
        "fb_p50_ms": ms(fb.get("p50")),
        "fb_p99_ms": ms(fb.get("p99")),
        "fb_p999_ms": ms(fb.get("p99.9")),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_1k": round(cpu / ok * 1000.0, 4) if ok else None,
    }
    print(json.dumps(rec))
    if total == 0 or ok / total < MIN_OK:
        sys.stderr.write(
            f"({scen}) {label}: {ok} of {total} answers were 200 (status {status}, errors {errors})\n"
        )
        return 1
    return 0


def pctl(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def cmd_ttfb(scen, label, path):
    codes, starts, totals = [], [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            codes.append(parts[0])
            starts.append(float(parts[1]) * 1000.0)
            totals.append(float(parts[2]) * 1000.0)
    ok = sum(1 for c in codes if c == "200")
    # The first request opens the connection: leave it out of the figures.
    s, t = starts[1:], totals[1:]
    rec = {
        "kind": "ttfb",
        "scenario": scen,
        "label": label,
        "requests": len(codes),
        "ok": ok,
        "ttfb_p50_ms": round(statistics.median(s), 3) if s else None,
        "ttfb_p99_ms": round(pctl(s, 99), 3) if s else None,
        "total_p50_ms": round(statistics.median(t), 3) if t else None,
        "total_p99_ms": round(pctl(t, 99), 3) if t else None,
    }
    print(json.dumps(rec))
    return 0 if codes and ok == len(codes) else 1


def parse_metrics(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line.strip())
                if m:
                    out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    except OSError:
        pass
    return out


def parquet_rows(usage_dir):
    files = [p for p in glob.glob(os.path.join(usage_dir, "**", "*.parquet"), recursive=True)]
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        return len(files), None
    rows = 0
    for p in files:
        rows += pq.ParquetFile(p).metadata.num_rows
    return len(files), rows


def cmd_proxy_check(name, metrics_path, usage_dir, log_path, sent_files):
    m = parse_metrics(metrics_path)

    def one(k):
        v = m.get(k)
        return int(sum(x for _, x in v)) if v else None

    by_status = {}
    for labels, v in m.get("llmops_requests_total", []):
        st = re.search(r'status="(\d+)"', labels)
        if st:
            by_status[st.group(1)] = by_status.get(st.group(1), 0) + int(v)
    upstream_errors = {}
    for labels, v in m.get("llmops_upstream_errors_total", []):
        k = re.search(r'kind="([^"]+)"', labels)
        if k and v:
            upstream_errors[k.group(1)] = int(v)
    errors = {}
    for labels, v in m.get("llmops_errors_total", []):
        k = re.search(r'type="([^"]+)"', labels)
        if k and v:
            errors[k.group(1)] = int(v)
    drivers = sorted(
        {re.search(r'driver="([^"]+)"', lab).group(1) for lab, _ in m.get("llmops_shard_driver", []) if "driver=" in lab}
    )
    levels, notable = {}, {}
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if line.startswith("{"):
                    try:
                        j = json.loads(line)
                        lv, ev = j.get("level", "?"), j.get("event", "?")
                    except ValueError:
                        lv, ev = "?", "?"
                else:
                    parts = line.split()
                    lv = parts[1] if len(parts) > 1 else "?"
                    ev = parts[2] if len(parts) > 2 else "?"
                lv = lv.lower()
                levels[lv] = levels.get(lv, 0) + 1
                if lv not in ("info", "debug", "trace"):
                    key = f"{lv} {ev}"
                    if key not in notable:
                        notable[key] = {"count": 0, "first": line.strip()[:300]}
                    notable[key]["count"] += 1
    except OSError:
        pass
    sent = 0
    for p in sent_files:
        if p.isdigit():
            sent += int(p)
            continue
        try:
            with open(p) as f:
                d = json.load(f)
            sent += sum(int(v) for v in (d.get("statusCodeDistribution") or {}).values())
        except (OSError, ValueError):
            pass
    nfiles, rows = parquet_rows(usage_dir)
    rec = {
        "kind": "proxy",
        "name": name,
        "drivers": drivers,
        "requests_by_status": by_status,
        "errors": errors,
        "bad_requests": one("llmops_bad_requests_total"),
        "dropped": one("usage_records_dropped_total"),
        "upstream_connects": one("llmops_upstream_connects_total"),
        "upstream_reused": one("llmops_upstream_reused_total"),
        "upstream_retries": one("llmops_upstream_retries_total"),
        "upstream_errors": upstream_errors,
        "client_connections": one("llmops_client_connections_total"),
        "write_errors": one("llmops_usage_write_errors_total"),
        "parquet_files": nfiles,
        "parquet_rows": rows,
        "answers_seen_by_load_generators": sent,
        "log_levels": levels,
        "log_notable": notable,
    }
    print(json.dumps(rec))
    return 0


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    return recs


def find(recs, scen, kind=None):
    for r in recs:
        if r.get("scenario") == scen and (kind is None or r["kind"] == kind):
            return r
    return None


def fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def cmd_show(path, scen):
    r = find(load(path), scen)
    if r is None:
        return 1
    if r["kind"] == "oha":
        print(
            f"    -> {r['rps']:,.0f} req/s, p50 {fmt(r['p50_ms'], 3)} ms, p99 {fmt(r['p99_ms'], 3)} ms, "
            f"p99.9 {fmt(r['p999_ms'], 3)} ms, {r['ok']}/{r['requests']} 200, "
            f"CPU {r['cpu_s']} s ({fmt(r['cpu_s_per_1k'], 4)} s/1k), first byte p50 {fmt(r['fb_p50_ms'], 3)} ms"
        )
    else:
        print(
            f"    -> TTFB p50 {fmt(r['ttfb_p50_ms'], 3)} ms, p99 {fmt(r['ttfb_p99_ms'], 3)} ms; "
            f"total p50 {fmt(r['total_p50_ms'], 3)} ms ({r['ok']}/{r['requests']} 200)"
        )
    return 0


def cmd_rate(path, scen):
    r = find(load(path), scen, "oha")
    print(max(1, int(r["rps"] / 2)))
    return 0


def ratio(a, b):
    if not a or not b:
        return "–"
    return f"{a / b:.2f}"


def oha_table(recs, scens, lines):
    lines.append("| scenario | req/s | p50 ms | p99 ms | p99.9 ms | max ms | CPU s | CPU s per 1k req | 200s / requests |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in scens:
        r = find(recs, s, "oha")
        if r is None:
            continue
        lines.append(
            f"| ({s}) {r['label']} | {fmt(r['rps'], 0)} | {fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} | "
            f"{fmt(r['p999_ms'], 3)} | {fmt(r['max_ms'], 1)} | {fmt(r['cpu_s'], 2)} | {fmt(r['cpu_s_per_1k'], 4)} | "
            f"{r['ok']:,} / {r['requests']:,} |"
        )


def proxy_table(recs, lines):
    ps = [r for r in recs if r["kind"] == "proxy"]
    if not ps:
        return
    lines.append("")
    lines.append(
        "Proxy self-checks (from its `/metrics` just before SIGTERM, its stderr log, and the Parquet "
        "files it left after a clean drain; rows are compared with the answers the load generators counted):"
    )
    lines.append("")
    lines.append(
        "| run | driver | requests by status | answers counted by clients | Parquet rows | dropped rows | "
        "upstream connects / reused | upstream errors | proxy log lines by level |"
    )
    lines.append("| --- | --- | --- | ---: | ---: | ---: | --- | --- | --- |")
    for p in ps:
        st = ", ".join(f"{k}: {v:,}" for k, v in sorted(p["requests_by_status"].items())) or "–"
        ue = ", ".join(f"{k}: {v}" for k, v in p["upstream_errors"].items()) or "none"
        lv = ", ".join(f"{k}: {v}" for k, v in sorted(p["log_levels"].items())) or "–"
        lines.append(
            f"| {p['name']} | {', '.join(p['drivers']) or '?'} | {st} | {p['answers_seen_by_load_generators']:,} | "
            f"{fmt(p['parquet_rows'])} | {fmt(p['dropped'])} | {fmt(p['upstream_connects'])} / {fmt(p['upstream_reused'])} | "
            f"{ue} | {lv} |"
        )
    for p in ps:
        for key, v in (p.get("log_notable") or {}).items():
            lines.append("")
            lines.append(f"**Proxy log ({p['name']}): {v['count']:,} × `{key}`**, first: `{v['first']}`")
        rows, sent = p["parquet_rows"], p["answers_seen_by_load_generators"]
        if rows is not None and rows < sent:
            lines.append("")
            lines.append(
                f"**Warning ({p['name']}): {sent - rows:,} answered requests have no usage row** "
                f"({rows:,} rows for {sent:,} answers; dropped counter {fmt(p['dropped'])})."
            )
        bad = {k: v for k, v in p["requests_by_status"].items() if k != "200"}
        if bad:
            lines.append("")
            lines.append(f"**Warning ({p['name']}): non-200 answers counted by the proxy: {bad}; errors {p['errors']}.**")


def header_lines(kind, lines):
    e = os.environ
    lines.append("")
    lines.append(f"## {e.get('BENCH_DATE', '?')} — `{e.get('BENCH_INVOCATION', kind)}`")
    lines.append("")
    lines.append(
        f"- Machine: {e.get('MACHINE_NPROC', '?')} cores (`nproc`), {e.get('MACHINE_CPU', '?')}, kernel "
        f"`{e.get('MACHINE_KERNEL', '?')}`, CLK_TCK {e.get('MACHINE_CLK_TCK', '?')}; loopback only."
    )
    lines.append(
        f"- llmops-proxy: {e.get('PROXY_COMMIT', '?')}; "
        f"{e.get('NGINX_VERSION', 'nginx ?')}; {e.get('OHA_VERSION', 'oha ?')}."
    )
    lines.append(
        f"- Duration {e.get('DURATION', '?')} s per measured run after a {e.get('WARMUP', '?')} s warm-up, "
        f"{e.get('CONC_USED', e.get('CONC', '?'))} connections, POST of a {e.get('BODY_BYTES', '?')}-byte Converse body."
    )
    lines.append(
        "- **Noisy, shared machine**: the load generator, the stub, the proxy under test and other "
        "people's builds share the same cores. Absolute figures move from run to run; compare only "
        "ratios within one section."
    )


def cmd_report(path, kind):
    recs = load(path)
    lines = []
    header_lines(kind, lines)
    a, b, c = (find(recs, s, "oha") for s in ("a", "b", "c"))
    if kind == "run":
        lines.append("")
        lines.append(
            "### Closed loop: throughput, latency, CPU of the server under test\n\n"
            "CPU = utime+stime of the server process (nginx: master + worker; llmops-proxy: every "
            "thread, Parquet writer included) over the measured run, per 1,000 answers with status 200. "
            "The stub's own CPU is not in (b)–(d)."
        )
        lines.append("")
        oha_table(recs, ["a", "b", "c", "c-epoll", "c-nolog", "d"], lines)
        ce, d, cn = find(recs, "c-epoll", "oha"), find(recs, "d", "oha"), find(recs, "c-nolog", "oha")
        lines.append("")
        lines.append("Ratios of requests/s:")
        lines.append("")
        lines.append(f"- (c)/(b) llmops-proxy 1 thread vs nginx reverse proxy: **{ratio(c and c['rps'], b and b['rps'])}**")
        lines.append(f"- (c)/(a) llmops-proxy 1 thread vs the stub alone: **{ratio(c and c['rps'], a and a['rps'])}**")
        lines.append(f"- (c-epoll)/(c) epoll vs io_uring driver, 1 thread: {ratio(ce and ce['rps'], c and c['rps'])}")
        if cn:
            lines.append(
                f"- (c-nolog)/(c) without vs with the per-request access log line: {ratio(cn['rps'], c and c['rps'])} "
                f"(CPU per 1k: {fmt(cn['cpu_s_per_1k'], 4)} vs {fmt(c and c['cpu_s_per_1k'], 4)} s)"
            )
        lines.append(f"- (d)/(c) all cores vs 1 thread: {ratio(d and d['rps'], c and c['rps'])}")
        lines.append(f"- (d)/(b) all cores vs nginx: {ratio(d and d['rps'], b and b['rps'])}")
        if c and b and c.get("cpu_s_per_1k") and b.get("cpu_s_per_1k"):
            lines.append(
                f"- CPU per request, (c)/(b): {c['cpu_s_per_1k'] / b['cpu_s_per_1k']:.2f}× nginx's "
                f"({c['cpu_s_per_1k'] * 1000:.1f} µs vs {b['cpu_s_per_1k'] * 1000:.1f} µs of CPU per request)"
            )
        fs, fp = find(recs, "fixed-stub", "oha"), find(recs, "fixed-proxy", "oha")
        if fs and fp:
            lines.append("")
            lines.append(
                f"### Fixed rate: {os.environ.get('FIXED_RATE', '?')} req/s (half of (c)'s closed-loop rate), "
                f"{os.environ.get('DURATION', '?')} s, `oha -q`"
            )
            lines.append("")
            oha_table(recs, ["fixed-stub", "fixed-proxy"], lines)
            lines.append("")
            lines.append(
                f"Latency the proxy adds at this rate: p50 **+{fp['p50_ms'] - fs['p50_ms']:.3f} ms**, "
                f"p99 **+{fp['p99_ms'] - fs['p99_ms']:.3f} ms**, p99.9 +{fp['p999_ms'] - fs['p999_ms']:.3f} ms "
                "(proxy → stub minus stub direct)."
            )
        ss, sp = find(recs, "stream-fixed-stub", "oha"), find(recs, "stream-fixed-proxy", "oha")
        ts, tn, tp = (find(recs, s, "ttfb") for s in ("stream-stub", "stream-nginx", "stream-proxy"))
        if ss or ts:
            lines.append("")
            lines.append("### Streaming: ConverseStream time to first byte")
        if ss and sp:
            lines.append("")
            lines.append(
                f"Under load: `oha -q {os.environ.get('FIXED_RATE', '?')}` for {os.environ.get('DURATION', '?')} s "
                "on `converse-stream` (oha's first-byte percentiles; the stub sends the 7 frames, "
                f"{os.environ.get('STREAM_BYTES', '?')} bytes, at once):"
            )
            lines.append("")
            lines.append("| target | req/s | first byte p50 ms | first byte p99 ms | first byte p99.9 ms | total p50 ms | total p99 ms | 200s / requests |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for r in (ss, sp):
                lines.append(
                    f"| {r['label']} | {fmt(r['rps'], 0)} | {fmt(r['fb_p50_ms'], 3)} | {fmt(r['fb_p99_ms'], 3)} | "
                    f"{fmt(r['fb_p999_ms'], 3)} | {fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} | {r['ok']:,} / {r['requests']:,} |"
                )
            if ss.get("fb_p50_ms") is not None and sp.get("fb_p50_ms") is not None:
                lines.append("")
                lines.append(
                    f"First byte the proxy adds under load: p50 **+{sp['fb_p50_ms'] - ss['fb_p50_ms']:.3f} ms**, "
                    f"p99 **+{sp['fb_p99_ms'] - ss['fb_p99_ms']:.3f} ms**."
                )
        if ts and tp:
            lines.append("")
            lines.append(
                f"Unloaded: {os.environ.get('TTFB_REQUESTS', '?')} sequential requests on one keep-alive connection, "
                "curl `%{time_starttransfer}` (the first request, which connects, left out):"
            )
            lines.append("")
            lines.append("| target | TTFB p50 ms | TTFB p99 ms | total p50 ms | total p99 ms | 200s |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
            for t in (ts, tn, tp):
                if t:
                    lines.append(
                        f"| {t['label']} | {fmt(t['ttfb_p50_ms'], 3)} | {fmt(t['ttfb_p99_ms'], 3)} | "
                        f"{fmt(t['total_p50_ms'], 3)} | {fmt(t['total_p99_ms'], 3)} | {t['ok']}/{t['requests']} |"
                    )
            lines.append("")
            lines.append(
                f"TTFB the proxy adds, unloaded: p50 **+{tp['ttfb_p50_ms'] - ts['ttfb_p50_ms']:.3f} ms**, "
                f"p99 **+{tp['ttfb_p99_ms'] - ts['ttfb_p99_ms']:.3f} ms**."
            )
        proxy_table(recs, lines)
    else:
        lines.append("")
        lines.append("### Peers: the same Converse load through LiteLLM's proxy")
        lines.append("")
        lines.append(
            "CPU = utime+stime of the proxy process and its children over the measured run; LiteLLM "
            "receives OpenAI `/chat/completions` and calls the stub's `/model/{id}/converse`."
        )
        lines.append("")
        oha_table(recs, ["a", "c", "litellm"], lines)
        lt = find(recs, "litellm", "oha")
        lines.append("")
        if lt and c:
            lines.append(
                f"- (c)/(litellm) requests/s: **{ratio(c['rps'], lt['rps'])}** "
                f"(at {os.environ.get('CONC_USED', '?')} connections)"
            )
            if lt.get("cpu_s_per_1k") and c.get("cpu_s_per_1k"):
                lines.append(
                    f"- CPU per request, litellm/(c): **{lt['cpu_s_per_1k'] / c['cpu_s_per_1k']:.0f}×** "
                    f"({lt['cpu_s_per_1k']:.3f} vs {c['cpu_s_per_1k']:.4f} CPU s per 1k)"
                )
        note = os.environ.get("PEER_NOTE")
        if note:
            lines.append(f"- {note}")
        proxy_table(recs, lines)
    cmds = os.environ.get("CMDS_FILE")
    if cmds and os.path.exists(cmds):
        lines.append("")
        lines.append("<details><summary>Exact commands</summary>")
        lines.append("")
        lines.append("```sh")
        with open(cmds) as f:
            lines.extend(x.rstrip("\n") for x in f)
        lines.append("```")
        lines.append("")
        lines.append("</details>")
    print("\n".join(lines))
    return 0


# --- bench/tls.sh and bench/budgets.sh ---------------------------------------------------


def tree_ticks(pid):
    """utime+stime+cutime+cstime of PID and every descendant (children already reaped
    are in their parent's cutime/cstime, so the sum does not drop when one exits)."""
    seen, todo, total = set(), [int(pid)], 0
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        todo.extend(children(p))
    return total


def cmd_busy(pid):
    """Prints "BUSY OURS T": ticks the whole machine spent in user+nice+system (/proc/stat),
    ticks of PID's process tree, and CLOCK_MONOTONIC seconds."""
    import time  # noqa: PLC0415

    with open("/proc/stat") as f:
        cpu = f.readline().split()
    busy = int(cpu[1]) + int(cpu[2]) + int(cpu[3])
    print(f"{busy} {tree_ticks(pid)} {time.monotonic():.3f}")
    return 0


def cmd_other(scen, b0, o0, t0, b1, o1, t1):
    """CPU seconds that processes outside the benchmark's tree used between two `busy`."""
    hz = os.sysconf("SC_CLK_TCK")
    busy = (int(b1) - int(b0)) / hz
    ours = (int(o1) - int(o0)) / hz
    rec = {
        "kind": "other",
        "scenario": scen,
        "wall_s": round(float(t1) - float(t0), 2),
        "busy_s": round(busy, 2),
        "ours_s": round(ours, 2),
        "other_s": round(max(0.0, busy - ours), 2),
    }
    print(json.dumps(rec))
    return 0


def other_line(recs, lines):
    """One line: CPU of other processes during each measured run, flagged when it is more
    than 5 % of the machine."""
    os_ = [r for r in recs if r["kind"] == "other"]
    if not os_:
        return
    cores = int(os.environ.get("MACHINE_NPROC", "1") or 1)
    parts = []
    for r in os_:
        cap = cores * r["wall_s"]
        flag = " **(disturbed)**" if cap and r["other_s"] > 0.05 * cap else ""
        parts.append(f"{r['scenario']} {r['other_s']:.1f} of {cap:.0f}{flag}")
    lines.append("")
    lines.append(
        f"Other load: CPU seconds used by processes outside the benchmark during each measured run, of "
        f"{cores} cores × the run's wall time (/proc/stat user+nice+system less the benchmark's own process "
        "tree, so kernel time not charged to a process counts as other; more than 5 % is flagged): "
        + ", ".join(parts) + "."
    )


def tls_counts(path):
    m = parse_metrics(path)
    hs = {"full": 0, "resumed": 0}
    for labels, v in m.get("llmops_tls_handshakes_total", []):
        k = re.search(r'kind="([^"]+)"', labels)
        if k:
            hs[k.group(1)] = hs.get(k.group(1), 0) + int(v)
    fails = {}
    for labels, v in m.get("llmops_tls_handshake_failures_total", []):
        k = re.search(r'reason="([^"]+)"', labels)
        if k:
            fails[k.group(1)] = fails.get(k.group(1), 0) + int(v)
    return hs, fails, bool(m)


def cmd_handshakes(scen, label, m0, m1):
    """Handshakes llmops-proxy counted between two /metrics scrapes over TLS, less the
    second scrape's own (full) handshake."""
    (h0, f0, ok0), (h1, f1, ok1) = tls_counts(m0), tls_counts(m1)
    if not (ok0 and ok1):
        sys.stderr.write(f"({scen}) cannot read /metrics scrapes {m0} {m1}\n")
        return 1
    fails = {k: f1.get(k, 0) - f0.get(k, 0) for k in set(f0) | set(f1)}
    rec = {
        "kind": "handshakes",
        "scenario": scen,
        "label": label,
        "source": "llmops_tls_handshakes_total (/metrics, less the scrape's own handshake)",
        "full": h1["full"] - h0["full"] - 1,
        "resumed": h1["resumed"] - h0["resumed"],
        "failures": {k: v for k, v in fails.items() if v},
    }
    print(json.dumps(rec))
    return 0


def cmd_handshakes_count(scen, label, resumed, full):
    rec = {
        "kind": "handshakes",
        "scenario": scen,
        "label": label,
        "source": "nginx access log, $ssl_session_reused per request",
        "full": int(full),
        "resumed": int(resumed),
        "failures": None,
    }
    print(json.dumps(rec))
    return 0


def cmd_note(scen, text):
    print(json.dumps({"kind": "note", "scenario": scen, "text": text}))
    return 0


def cmd_show_any(path, scen):
    """Shows the handshake and tls_resume.py records of SCEN (measure shows oha's)."""
    recs = [r for r in load(path) if r.get("scenario") == scen]
    for r in recs:
        if r["kind"] == "oha":
            continue
        if r["kind"] == "handshakes":
            print(f"    -> handshakes: {r['full']:,} full, {r['resumed']:,} resumed, failures {r['failures']}")
        elif r["kind"] == "resume":
            print(
                f"    -> {r['conn_per_s']:,.0f} connections/s ({r['mode']}), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                f"client saw {r['client_reused']}/{r['connections']} resumed, {r['ok']} 200, "
                f"CPU {r['cpu_s']} s ({r['cpu_s_per_1k']} s/1k), {r['version']} {r['cipher']}"
            )
    return 0


def commands_block(lines):
    cmds = os.environ.get("CMDS_FILE")
    if cmds and os.path.exists(cmds):
        lines.append("")
        lines.append("<details><summary>Exact commands</summary>")
        lines.append("")
        lines.append("```sh")
        with open(cmds) as f:
            lines.extend(x.rstrip("\n") for x in f)
        lines.append("```")
        lines.append("")
        lines.append("</details>")


def tls_ratio_line(lines, name, plain, tls, target=None):
    if not (plain and tls and plain.get("rps") and tls.get("rps")):
        return
    r = tls["rps"] / plain["rps"]
    verdict = ""
    if target is not None:
        verdict = f" (target ≥ {target:.2f}: **{'met' if r >= target else 'NOT met'}**)"
    cpu = ""
    if plain.get("cpu_s_per_1k") and tls.get("cpu_s_per_1k"):
        cpu = (
            f"; CPU per request TLS/plain {tls['cpu_s_per_1k'] / plain['cpu_s_per_1k']:.2f}× "
            f"({tls['cpu_s_per_1k'] * 1000:.1f} vs {plain['cpu_s_per_1k'] * 1000:.1f} µs)"
        )
    lines.append(f"- {name}: TLS/plain requests/s **{r:.2f}**{verdict}{cpu}")


def cmd_report_tls(path):
    recs = load(path)
    e = os.environ
    lines = []
    header_lines("tls", lines)
    lines.append(
        f"- TLS: {e.get('TLS_CERT_DESC', '?')}; chain = leaf + CA. llmops-proxy: rustls (ring), session cache "
        "+ tickets; nginx: `ssl_session_cache shared:SSL:10m; ssl_session_tickets on;`, built with "
        f"{e.get('NGINX_SSL', '?')}. oha trusts the test CA with `--cacert` (no `--insecure`)."
    )
    for r in recs:
        if r["kind"] == "note" and r["scenario"] == "negotiated":
            lines.append(f"- {r['text']}")
    g = {s: find(recs, s, "oha") for s in (
        "ka-proxy-plain", "ka-proxy-tls", "ka-nginx-plain", "ka-nginx-tls",
        "nc-proxy-plain", "nc-proxy-tls", "nc-nginx-plain", "nc-nginx-tls")}
    lines.append("")
    lines.append("### Keep-alive: the handshake amortised over the run")
    lines.append("")
    lines.append(
        f"{e.get('CONC', '?')} keep-alive connections (`oha -c {e.get('CONC', '?')}`), same body and headers as "
        "run.sh's (c). CPU = utime+stime of the server under test (llmops-proxy: whole process; nginx: master + "
        "worker) per 1,000 answers with status 200; the stub's CPU is not counted, nor oha's (which also pays for "
        "TLS on the client side of the same 2 cores)."
    )
    lines.append("")
    oha_table(recs, ["ka-proxy-plain", "ka-proxy-tls", "ka-nginx-plain", "ka-nginx-tls"], lines)
    lines.append("")
    tls_ratio_line(lines, "llmops-proxy --threads 1", g["ka-proxy-plain"], g["ka-proxy-tls"], 0.85)
    tls_ratio_line(lines, "nginx (1 worker)", g["ka-nginx-plain"], g["ka-nginx-tls"])
    a, b = g["ka-proxy-tls"], g["ka-nginx-tls"]
    if a and b:
        lines.append(f"- llmops-proxy TLS vs nginx TLS requests/s: {ratio(a['rps'], b['rps'])}")
    lines.append("")
    lines.append("### New connection per request: handshake bound (`oha --disable-keepalive`)")
    lines.append("")
    lines.append(
        "Every request opens a TCP connection (and, over TLS, does a handshake); the handshake counts are the "
        "server's own for the measured run only (llmops-proxy: `llmops_tls_handshakes_total` scraped over TLS "
        "after the warm-up and after the run, less the scrape's own handshake; nginx: one `$ssl_session_reused` "
        "log line per request on its second TLS port)."
    )
    lines.append("")
    oha_table(recs, ["nc-proxy-plain", "nc-proxy-tls", "nc-nginx-plain", "nc-nginx-tls"], lines)
    lines.append("")
    lines.append("| run | full handshakes | resumed handshakes | failed handshakes | requests (oha) |")
    lines.append("| --- | ---: | ---: | --- | ---: |")
    for s in ("nc-proxy-tls", "nc-nginx-tls"):
        h, o = find(recs, s, "handshakes"), g[s]
        if h:
            f = h["failures"]
            fs = "not counted" if f is None else (", ".join(f"{k}: {v}" for k, v in f.items()) or "0")
            lines.append(
                f"| ({s}) {h['label']} | {h['full']:,} | {h['resumed']:,} | {fs} | {o['requests'] if o else 0:,} |"
            )
    lines.append("")
    lines.append(
        "oha's TLS client is rustls with one shared client configuration: it resumes with TLS 1.3 tickets, "
        "keeps at most 8 per server and uses each once, so when more than 8 of its connections open at the "
        "same moment the others find no ticket and do a full handshake, whatever the server does; how many "
        "depends on how the openings bunch up. A full handshake here is therefore not a refused ticket: "
        "the sequential runs below offer a ticket on every connection and show how many each server accepts."
    )
    lines.append("")
    tls_ratio_line(lines, "llmops-proxy, new connection per request", g["nc-proxy-plain"], g["nc-proxy-tls"])
    tls_ratio_line(lines, "nginx, new connection per request", g["nc-nginx-plain"], g["nc-nginx-tls"])
    res = [r for r in recs if r["kind"] == "resume"]
    if res:
        lines.append("")
        lines.append("### Sequential connections: resumed vs full handshakes (Python `ssl`)")
        lines.append("")
        r0 = res[0]
        lines.append(
            f"`bench/tls_resume.py`: {r0['connections']:,} connections one after another, each: connect, "
            "handshake, one Converse POST with `Connection: close`, read the answer, close. `resumed` offers the "
            "previous connection's session (`session=prev.session`; the first connection has none, so it is "
            "full), `full` offers none (`session=None`). Client: "
            f"{r0['openssl']}. CPU = the server's, per 1,000 connections."
        )
        lines.append("")
        lines.append(
            "| target | mode | protocol | connections/s | p50 ms | p99 ms | CPU s | CPU s per 1k conn | client saw resumed | "
            "server: full / resumed | 200s |"
        )
        lines.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
        for r in res:
            h = find(recs, r["scenario"], "handshakes")
            hs = f"{h['full']:,} / {h['resumed']:,}" if h else "–"
            lines.append(
                f"| {r['label']} | {r['mode']} | {r['version']} {r['cipher']} | {fmt(r['conn_per_s'], 0)} | {fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} | "
                f"{fmt(r['cpu_s'], 2)} | {fmt(r['cpu_s_per_1k'], 4)} | {r['client_reused']:,} / {r['connections']:,} | "
                f"{hs} | {r['ok']:,} / {r['connections']:,} |"
            )
        lines.append("")
        by = {r["scenario"]: r for r in res}
        for who in ("proxy", "nginx"):
            fu, re_ = by.get(f"seq-{who}-full"), by.get(f"seq-{who}-resumed")
            if fu and re_:
                cpu = ""
                if fu.get("cpu_s_per_1k") and re_.get("cpu_s_per_1k"):
                    cpu = f"; server CPU per connection full/resumed {fu['cpu_s_per_1k'] / re_['cpu_s_per_1k']:.2f}×"
                lines.append(
                    f"- {'llmops-proxy' if who == 'proxy' else 'nginx'}: resumed/full connections/s "
                    f"**{re_['conn_per_s'] / fu['conn_per_s']:.2f}**{cpu}"
                )
    for r in recs:
        if r["kind"] == "note" and r["scenario"] != "negotiated":
            lines.append(f"- {r['text']}")
    other_line(recs, lines)
    proxy_table(recs, lines)
    commands_block(lines)
    print("\n".join(lines))
    return 0


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def cmd_report_budgets(path):
    recs = load(path)
    e = os.environ
    lines = []
    header_lines("budgets", lines)
    configs = [("none", "no budgets"), ("b100", "100 budgets"), ("b100x", "100 budgets, one exhausted")]
    runs = [r for r in recs if r["kind"] == "oha"]
    lines.append("")
    lines.append("### Budgets on the hot path: llmops-proxy --threads 1, plain HTTP, keep-alive")
    lines.append("")
    lines.append(
        f"The load of run.sh's (c) ({e.get('CONC', '?')} connections, `X-Department: bench`, no project or agent), "
        f"configurations interleaved over {e.get('ROUNDS', '?')} rounds, a fresh proxy for each run. "
        f"{e.get('BUDGETS_DESC', '')}"
    )
    lines.append("")
    oha_table(recs, [r["scenario"] for r in runs], lines)
    lines.append("")
    lines.append("| configuration | req/s of each run | mean req/s | mean / no budgets | CPU s per 1k req (mean) | p99 ms of each run |")
    lines.append("| --- | --- | ---: | ---: | ---: | --- |")
    base = mean([r["rps"] for r in runs if r["scenario"].startswith("none-")])
    base_cpu = mean([r["cpu_s_per_1k"] for r in runs if r["scenario"].startswith("none-")])
    summary = {}
    for key, name in configs:
        rs = [r for r in runs if r["scenario"].startswith(key + "-")]
        if not rs:
            continue
        m = mean([r["rps"] for r in rs])
        c = mean([r["cpu_s_per_1k"] for r in rs])
        summary[key] = (m, c)
        lines.append(
            f"| {name} | {', '.join(fmt(r['rps'], 0) for r in rs)} | {fmt(m, 0)} | "
            f"{ratio(m, base)} ({(m / base - 1) * 100:+.1f} %) | {fmt(c, 4)} | {', '.join(fmt(r['p99_ms'], 3) for r in rs)} |"
        )
    lines.append("")
    for key, name in configs[1:]:
        if key in summary and base:
            m, c = summary[key]
            pair = []
            for r in runs:
                if r["scenario"].startswith(key + "-"):
                    n = find(recs, "none-" + r["scenario"].split("-")[-1], "oha")
                    if n:
                        pair.append(f"{r['rps'] / n['rps']:.3f}")
            d = (m / base - 1) * 100
            lines.append(
                f"- {name} vs none: mean ratio **{m / base:.3f}** ({d:+.1f} %; goal: within 2 %: "
                f"**{'met' if abs(d) < 2 else 'NOT met'}**), per round {', '.join(pair)}; CPU per request "
                f"{c / base_cpu:.3f}× ({c * 1000:.1f} vs {base_cpu * 1000:.1f} µs)"
            )
    nones = [r["rps"] for r in runs if r["scenario"].startswith("none-")]
    if len(nones) > 1:
        lines.append(
            f"- Noise: the no-budget runs alone differ by {(max(nones) / min(nones) - 1) * 100:.1f} % (max/min)."
        )
    for r in recs:
        if r["kind"] == "note":
            lines.append(f"- {r['text']}")
    other_line(recs, lines)
    proxy_table(recs, lines)
    commands_block(lines)
    print("\n".join(lines))
    return 0


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "cpu":
        cmd_cpu(args)
        return 0
    if cmd == "oha":
        return cmd_oha(*args)
    if cmd == "ttfb":
        return cmd_ttfb(*args)
    if cmd == "proxy-check":
        return cmd_proxy_check(args[0], args[1], args[2], args[3], args[4:])
    if cmd == "show":
        return cmd_show(*args)
    if cmd == "rate":
        return cmd_rate(*args)
    if cmd == "report" and args[1:2] == ["tls"]:
        return cmd_report_tls(args[0])
    if cmd == "report" and args[1:2] == ["budgets"]:
        return cmd_report_budgets(args[0])
    if cmd == "report":
        return cmd_report(*args)
    if cmd == "handshakes":
        return cmd_handshakes(*args)
    if cmd == "handshakes-count":
        return cmd_handshakes_count(*args)
    if cmd == "note":
        return cmd_note(*args)
    if cmd == "busy":
        return cmd_busy(*args)
    if cmd == "other":
        return cmd_other(*args)
    if cmd == "show-any":
        return cmd_show_any(*args)
    sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
