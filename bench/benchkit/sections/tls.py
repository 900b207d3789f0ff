"""The body of tls.sh's section: TLS beside plain HTTP for llmops-proxy and nginx, with
keep-alive and with a new connection per request (and the servers' handshake counts), then
tls_resume.py's sequential resumed vs full handshakes."""

import os

from ..records import find, fmt
from ..report import note_lines, oha_table, other_line, ratio, table

RUNS = [f"{c}-{who}-{p}" for c in ("ka", "nc") for who in ("proxy", "nginx") for p in ("plain", "tls")]


def body(recs, lines):
    e = os.environ
    lines.append(
        f"- TLS: {e.get('TLS_CERT_DESC', '?')}; chain = leaf + CA. llmops-proxy: rustls (ring), session cache "
        "+ tickets; nginx: `ssl_session_cache shared:SSL:10m; ssl_session_tickets on;`, built with "
        f"{e.get('NGINX_SSL', '?')}. oha trusts the test CA with `--cacert` (no `--insecure`)."
    )
    note_lines(recs, lines, lambda s: s == "negotiated")
    g = {s: find(recs, s, "oha") for s in RUNS}
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
    oha_table(recs, RUNS[:4], lines)
    lines.append("")
    ratio_line(lines, "llmops-proxy --threads 1", g["ka-proxy-plain"], g["ka-proxy-tls"], 0.85)
    ratio_line(lines, "nginx (1 worker)", g["ka-nginx-plain"], g["ka-nginx-tls"])
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
    oha_table(recs, RUNS[4:], lines)
    lines.append("")
    rows = []
    for s in ("nc-proxy-tls", "nc-nginx-tls"):
        h, o = find(recs, s, "handshakes"), g[s]
        if h:
            f = h["failures"]
            fs = "not counted" if f is None else (", ".join(f"{k}: {v}" for k, v in f.items()) or "0")
            rows.append([f"({s}) {h['label']}", f"{h['full']:,}", f"{h['resumed']:,}", fs, f"{o['requests'] if o else 0:,}"])
    head = ["run", "full handshakes", "resumed handshakes", "failed handshakes", "requests (oha)"]
    table(lines, head, "lrrlr", rows)
    lines.append("")
    lines.append(
        "oha's TLS client is rustls with one shared client configuration: it resumes with TLS 1.3 tickets, "
        "keeps at most 8 per server and uses each once, so when more than 8 of its connections open at the "
        "same moment the others find no ticket and do a full handshake, whatever the server does; how many "
        "depends on how the openings bunch up. A full handshake here is therefore not a refused ticket: "
        "the sequential runs below offer a ticket on every connection and show how many each server accepts."
    )
    lines.append("")
    ratio_line(lines, "llmops-proxy, new connection per request", g["nc-proxy-plain"], g["nc-proxy-tls"])
    ratio_line(lines, "nginx, new connection per request", g["nc-nginx-plain"], g["nc-nginx-tls"])
    sequential(recs, lines)
    note_lines(recs, lines, lambda s: s != "negotiated")
    other_line(recs, lines)


def ratio_line(lines, name, plain, tls, target=None):
    """TLS/plain requests/s (against TARGET when given) and CPU per request."""
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


def sequential(recs, lines):
    """tls_resume.py's runs (kind "resume") beside the servers' handshake counts."""
    res = [r for r in recs if r["kind"] == "resume"]
    if not res:
        return
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
    rows = []
    for r in res:
        h = find(recs, r["scenario"], "handshakes")
        rows.append([
            r["label"], r["mode"], f"{r['version']} {r['cipher']}", fmt(r["conn_per_s"], 0), fmt(r["p50_ms"], 3),
            fmt(r["p99_ms"], 3), fmt(r["cpu_s"], 2), fmt(r["cpu_s_per_1k"], 4),
            f"{r['client_reused']:,} / {r['connections']:,}", f"{h['full']:,} / {h['resumed']:,}" if h else "–",
            f"{r['ok']:,} / {r['connections']:,}",
        ])
    head = [
        "target", "mode", "protocol", "connections/s", "p50 ms", "p99 ms", "CPU s", "CPU s per 1k conn",
        "client saw resumed", "server: full / resumed", "200s",
    ]
    table(lines, head, "lllrrrrrrlr", rows)
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
