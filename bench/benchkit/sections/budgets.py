"""The body of budgets.sh's section: every run, then per configuration (none, 100 budgets,
100 with one exhausted) the mean requests/s against none, per round, CPU per request, and
the spread of the none runs (the noise)."""

import os

from ..records import find, fmt
from ..report import mean, note_lines, oha_table, other_line, ratio, table

CONFIGS = [("none", "no budgets"), ("b100", "100 budgets"), ("b100x", "100 budgets, one exhausted")]


def body(recs, lines):
    e = os.environ
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
    base = mean([r["rps"] for r in runs if r["scenario"].startswith("none-")])
    base_cpu = mean([r["cpu_s_per_1k"] for r in runs if r["scenario"].startswith("none-")])
    summary, rows = {}, []
    for key, name in CONFIGS:
        rs = [r for r in runs if r["scenario"].startswith(key + "-")]
        if not rs:
            continue
        m = mean([r["rps"] for r in rs])
        c = mean([r["cpu_s_per_1k"] for r in rs])
        summary[key] = (m, c)
        rows.append([
            name, ", ".join(fmt(r["rps"], 0) for r in rs), fmt(m, 0), f"{ratio(m, base)} ({(m / base - 1) * 100:+.1f} %)",
            fmt(c, 4), ", ".join(fmt(r["p99_ms"], 3) for r in rs),
        ])
    head = [
        "configuration", "req/s of each run", "mean req/s", "mean / no budgets", "CPU s per 1k req (mean)",
        "p99 ms of each run",
    ]
    table(lines, head, "llrrrl", rows)
    lines.append("")
    for key, name in CONFIGS[1:]:
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
    note_lines(recs, lines)
    other_line(recs, lines)
