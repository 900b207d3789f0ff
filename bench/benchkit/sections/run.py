"""The body of run.sh's section: the closed-loop runs (a)–(d) and their ratios, the fixed
rate at half of (c)'s, and ConverseStream's time to first byte, under load and unloaded."""

import os

from ..records import find, fmt
from ..report import oha_table, ratio, table


def body(recs, lines):
    e = os.environ
    a, b, c = (find(recs, s, "oha") for s in ("a", "b", "c"))
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
    limits(recs, lines)
    fs, fp = find(recs, "fixed-stub", "oha"), find(recs, "fixed-proxy", "oha")
    if fs and fp:
        lines.append("")
        lines.append(
            f"### Fixed rate: {e.get('FIXED_RATE', '?')} req/s (half of (c)'s closed-loop rate), "
            f"{e.get('DURATION', '?')} s, `oha -q`"
        )
        lines.append("")
        oha_table(recs, ["fixed-stub", "fixed-proxy"], lines)
        lines.append("")
        lines.append(
            f"Latency the proxy adds at this rate: p50 **+{fp['p50_ms'] - fs['p50_ms']:.3f} ms**, "
            f"p99 **+{fp['p99_ms'] - fs['p99_ms']:.3f} ms**, p99.9 +{fp['p999_ms'] - fs['p999_ms']:.3f} ms "
            "(proxy → stub minus stub direct)."
        )
    streaming(recs, lines)


def streaming(recs, lines):
    """ConverseStream's first byte: oha's percentiles at the fixed rate, then curl's
    sequential TTFB, unloaded."""
    e = os.environ
    ss, sp = find(recs, "stream-fixed-stub", "oha"), find(recs, "stream-fixed-proxy", "oha")
    ts, tn, tp = (find(recs, s, "ttfb") for s in ("stream-stub", "stream-nginx", "stream-proxy"))
    if ss or ts:
        lines.append("")
        lines.append("### Streaming: ConverseStream time to first byte")
    if ss and sp:
        lines.append("")
        lines.append(
            f"Under load: `oha -q {e.get('FIXED_RATE', '?')}` for {e.get('DURATION', '?')} s "
            "on `converse-stream` (oha's first-byte percentiles; the stub sends the 7 frames, "
            f"{e.get('STREAM_BYTES', '?')} bytes, at once):"
        )
        lines.append("")
        head = [
            "target", "req/s", "first byte p50 ms", "first byte p99 ms", "first byte p99.9 ms", "total p50 ms",
            "total p99 ms", "200s / requests",
        ]
        rows = [
            [
                r["label"], fmt(r["rps"], 0), fmt(r["fb_p50_ms"], 3), fmt(r["fb_p99_ms"], 3), fmt(r["fb_p999_ms"], 3),
                fmt(r["p50_ms"], 3), fmt(r["p99_ms"], 3), f"{r['ok']:,} / {r['requests']:,}",
            ]
            for r in (ss, sp)
        ]
        table(lines, head, "lrrrrrrr", rows)
        if ss.get("fb_p50_ms") is not None and sp.get("fb_p50_ms") is not None:
            lines.append("")
            lines.append(
                f"First byte the proxy adds under load: p50 **+{sp['fb_p50_ms'] - ss['fb_p50_ms']:.3f} ms**, "
                f"p99 **+{sp['fb_p99_ms'] - ss['fb_p99_ms']:.3f} ms**."
            )
    if ts and tp:
        lines.append("")
        lines.append(
            f"Unloaded: {e.get('TTFB_REQUESTS', '?')} sequential requests on one keep-alive connection, "
            "curl `%{time_starttransfer}` (the first request, which connects, left out):"
        )
        lines.append("")
        rows = [
            [
                t["label"], fmt(t["ttfb_p50_ms"], 3), fmt(t["ttfb_p99_ms"], 3), fmt(t["total_p50_ms"], 3),
                fmt(t["total_p99_ms"], 3), f"{t['ok']}/{t['requests']}",
            ]
            for t in (ts, tn, tp)
            if t
        ]
        table(lines, ["target", "TTFB p50 ms", "TTFB p99 ms", "total p50 ms", "total p99 ms", "200s"], "lrrrrr", rows)
        lines.append("")
        lines.append(
            f"TTFB the proxy adds, unloaded: p50 **+{tp['ttfb_p50_ms'] - ts['ttfb_p50_ms']:.3f} ms**, "
            f"p99 **+{tp['ttfb_p99_ms'] - ts['ttfb_p99_ms']:.3f} ms**."
        )


def limits(recs, lines):
    """The issue-17 goals side by side with nginx: 128 KiB bodies, one connection, idle
    connections' memory."""
    bn, bp = find(recs, "big-nginx", "oha"), find(recs, "big-proxy", "oha")
    on, op = find(recs, "one-nginx", "oha"), find(recs, "one-proxy", "oha")
    idle = find(recs, "idle", "idle")
    b, c = find(recs, "b", "oha"), find(recs, "c", "oha")
    if not (bn or on or idle):
        return
    lines.append("")
    lines.append("### Against the limit: big bodies, one connection, idle connections")
    lines.append("")
    oha_table(recs, ["big-nginx", "big-proxy", "one-nginx", "one-proxy"], lines)
    lines.append("")
    if c and b and c.get("cpu_s_per_1k") and b.get("cpu_s_per_1k"):
        extra = (c["cpu_s_per_1k"] - b["cpu_s_per_1k"]) * 1000
        lines.append(
            f"- Small requests, 32 connections: {ratio(c['rps'], b['rps'])} nginx's requests/s (goal ≥ 0.85x); "
            f"CPU per request +{extra:.1f} µs over nginx's (goal ≤ +5 µs)"
        )
        w = find(recs, "c", "writer")
        if w and w.get("cpu_us_per_row") is not None:
            total = c["cpu_s_per_1k"] * 1000
            lines.append(
                f"  - of the proxy's {total:.1f} µs per request, the usage writer thread's (Parquet, access log, "
                f"metrics, one row per request): {w['cpu_us_per_row']:.1f} µs; the shard and the rest: "
                f"{total - w['cpu_us_per_row']:.1f} µs (nginx: {b['cpu_s_per_1k'] * 1000:.1f} µs)"
            )
    if bn and bp and bn.get("cpu_s_per_1k") and bp.get("cpu_s_per_1k"):
        extra = (bp["cpu_s_per_1k"] - bn["cpu_s_per_1k"]) * 1000
        lines.append(
            f"- 128 KiB bodies, 16 connections: {ratio(bp['rps'], bn['rps'])} nginx's requests/s; CPU per request "
            f"+{extra:.1f} µs over nginx's (goal ≤ the body's SHA-256, ~94 µs at `openssl speed -evp sha256`'s "
            "1.39 GB/s, + 10 µs)"
        )
    if on and op:
        lines.append(
            f"- One connection: p50 +{(op['p50_ms'] - on['p50_ms']) * 1000:.0f} µs, "
            f"p99 +{(op['p99_ms'] - on['p99_ms']) * 1000:.0f} µs over nginx's own proxying (goal p99 ≤ +30 µs)"
        )
    if idle:
        lines.append(
            f"- Idle keep-alive connections: {idle['connections']:,} held {idle['bytes_per_connection'] / 1024:.1f} KiB "
            f"of RSS each after {idle['settle_s']:.0f} s idle ({idle['bytes_per_connection_opened'] / 1024:.1f} KiB "
            f"right after opening; {idle['sampled_alive']} sampled connections still answered; goal ≤ 4 KiB)"
        )
