"""The body of ledger.sh's section: every run, then per binary (the last commit without the
journal, the journal) the mean requests/s, the ratio against the one without (goal: within
3 %), and the usage writer thread's CPU per row with the rate one core of it could take,
against one shard's rate (goal: 4×)."""

import os

from ..records import fmt
from ..report import mean, note_lines, oha_table, other_line, ratio, table

CONFIGS = [("prev", "without the journal"), ("journal", "with the journal")]


def body(recs, lines):
    e = os.environ
    runs = [r for r in recs if r["kind"] == "oha"]
    writers = {r["scenario"]: r for r in recs if r["kind"] == "writer"}
    lines.append("")
    lines.append("### The usage journal on the hot path: llmops-proxy --threads 1, plain HTTP, keep-alive")
    lines.append("")
    lines.append(
        f"The load of run.sh's (c) ({e.get('CONC', '?')} connections), binaries interleaved over "
        f"{e.get('ROUNDS', '?')} rounds, a fresh proxy and usage directory for each run. *Without the journal*: "
        f"{e.get('PREV_DESC', '?')}. *With the journal*: the binary named in the header "
        f"(`--fsync-interval {e.get('FSYNC', '200ms')}`). Writer CPU is the `usage-writer` thread's utime+stime "
        "(/proc/PID/task/TID/stat) over the measured run; one row per answered request."
    )
    lines.append("")
    oha_table(recs, [r["scenario"] for r in runs], lines)
    lines.append("")
    base = mean([r["rps"] for r in runs if r["scenario"].startswith("prev-")])
    rows, summary = [], {}
    for key, name in CONFIGS:
        rs = [r for r in runs if r["scenario"].startswith(key + "-")]
        if not rs:
            continue
        m = mean([r["rps"] for r in rs])
        w = [writers.get(r["scenario"]) for r in rs]
        us = mean([x["cpu_us_per_row"] for x in w if x])
        cap = mean([x["capacity_rows_per_s"] for x in w if x])
        summary[key] = (m, us, cap, mean([r["cpu_s_per_1k"] for r in rs]))
        rows.append([
            name, ", ".join(fmt(r["rps"], 0) for r in rs), fmt(m, 0),
            f"{ratio(m, base)} ({(m / base - 1) * 100:+.1f} %)" if base else "–",
            fmt(mean([r["cpu_s_per_1k"] for r in rs]), 4), fmt(us, 2), fmt(cap, 0),
        ])
    head = [
        "binary", "req/s of each run", "mean req/s", "mean / without", "proxy CPU s per 1k req",
        "writer CPU µs per row", "writer rows/s on one core",
    ]
    table(lines, head, "llrrrrr", rows)
    lines.append("")
    if "journal" in summary and base:
        m, us, cap, cpu = summary["journal"]
        d = (m / base - 1) * 100
        # The goal bounds what the journal costs: a journal binary that measured faster
        # than the one without costs nothing measurable in this run.
        lines.append(
            f"- With the journal vs without: **{m / base:.3f}** ({d:+.1f} %; goal: at most 3 % fewer req/s: "
            f"**{'met' if d > -3 else 'NOT met'}**)."
        )
        if "prev" in summary and summary["prev"][3]:
            c = (cpu / summary["prev"][3] - 1) * 100
            lines.append(f"- Proxy CPU per request (all threads), with vs without: **{c:+.1f} %**.")
        if cap:
            lines.append(
                f"- The writer at {us:.1f} µs of CPU per row could take {cap:,.0f} rows/s on one core, "
                f"**{cap / m:.1f}×** one shard's {m:,.0f} req/s (goal: 4×: **{'met' if cap >= 4 * m else 'NOT met'}**)."
            )
    prevs = [r["rps"] for r in runs if r["scenario"].startswith("prev-")]
    if len(prevs) > 1:
        lines.append(f"- Noise: the runs without the journal alone differ by {(max(prevs) / min(prevs) - 1) * 100:.1f} % (max/min).")
    note_lines(recs, lines)
    other_line(recs, lines)
