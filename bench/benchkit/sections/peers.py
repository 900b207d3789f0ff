"""The body of peers.sh's section: the stub, llmops-proxy (c) and LiteLLM's proxy under the
same Converse load, and how (c) and LiteLLM compare."""

import os

from ..records import find
from ..report import oha_table, ratio


def body(recs, lines):
    c, lt = find(recs, "c", "oha"), find(recs, "litellm", "oha")
    lines.append("")
    lines.append("### Peers: the same Converse load through LiteLLM's proxy")
    lines.append("")
    lines.append(
        "CPU = utime+stime of the proxy process and its children over the measured run; LiteLLM "
        "receives OpenAI `/chat/completions` and calls the stub's `/model/{id}/converse`."
    )
    lines.append("")
    oha_table(recs, ["a", "c", "litellm"], lines)
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
