"""What every RESULTS.md section shares: its header (machine, commit, tool versions, load),
markdown tables (table; the oha runs; the proxy self-checks), ratios and means, notes, the
"Other load" line, and the folded exact commands. cmd_report puts the section of a KIND
together around the body of sections/KIND.py."""

import importlib
import os

from .records import find, fmt, load

SECTIONS = ("run", "tls", "budgets", "ledger")  # sections/KIND.py; any other KIND gets peers.py


def cmd_report(path, kind):
    """Prints the section of KIND: header, body, proxy self-checks, exact commands."""
    name = kind if kind in SECTIONS else "peers"
    body = importlib.import_module(f".sections.{name}", __package__).body
    recs = load(path)
    lines = []
    header_lines(kind, lines)
    body(recs, lines)
    proxy_table(recs, lines)
    commands_block(lines)
    print("\n".join(lines))
    return 0


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


def table(lines, head, align, rows):
    """A markdown table: HEAD the column titles, ALIGN one letter a column (l: left, r:
    right), ROWS lists of cells."""
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join({"l": "---", "r": "---:"}[a] for a in align) + " |")
    lines.extend("| " + " | ".join(cells) + " |" for cells in rows)


def oha_table(recs, scens, lines):
    """The oha runs of SCENS (those present), one row each."""
    rows = []
    for s in scens:
        r = find(recs, s, "oha")
        if r is not None:
            rows.append([
                f"({s}) {r['label']}", fmt(r["rps"], 0), fmt(r["p50_ms"], 3), fmt(r["p99_ms"], 3),
                fmt(r["p999_ms"], 3), fmt(r["max_ms"], 1), fmt(r["cpu_s"], 2), fmt(r["cpu_s_per_1k"], 4),
                f"{r['ok']:,} / {r['requests']:,}",
            ])
    head = ["scenario", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "CPU s", "CPU s per 1k req", "200s / requests"]
    table(lines, head, "lrrrrrrrr", rows)


def proxy_table(recs, lines):
    """The proxy-check records: a table, then what in them needs a reader's eye."""
    ps = [r for r in recs if r["kind"] == "proxy"]
    if not ps:
        return
    lines.append("")
    lines.append(
        "Proxy self-checks (from its `/metrics` just before SIGTERM, its stderr log, and the Parquet "
        "files it left after a clean drain; rows are compared with the answers the load generators counted):"
    )
    lines.append("")
    rows = []
    for p in ps:
        st = ", ".join(f"{k}: {v:,}" for k, v in sorted(p["requests_by_status"].items())) or "–"
        ue = ", ".join(f"{k}: {v}" for k, v in p["upstream_errors"].items()) or "none"
        lv = ", ".join(f"{k}: {v}" for k, v in sorted(p["log_levels"].items())) or "–"
        rows.append([
            p["name"], ", ".join(p["drivers"]) or "?", st, f"{p['answers_seen_by_load_generators']:,}",
            fmt(p["parquet_rows"]), fmt(p["dropped"]), f"{fmt(p['upstream_connects'])} / {fmt(p['upstream_reused'])}",
            ue, lv,
        ])
    head = [
        "run", "driver", "requests by status", "answers counted by clients", "Parquet rows", "dropped rows",
        "upstream connects / reused", "upstream errors", "proxy log lines by level",
    ]
    table(lines, head, "lllrrrlll", rows)
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


def ratio(a, b):
    if not a or not b:
        return "–"
    return f"{a / b:.2f}"


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def note_lines(recs, lines, keep=lambda scen: True):
    """The notes (kind "note") whose scenario KEEP accepts, a bullet each."""
    lines.extend(f"- {r['text']}" for r in recs if r["kind"] == "note" and keep(r["scenario"]))


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


def commands_block(lines):
    """The commands the script recorded (CMDS_FILE), folded."""
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
