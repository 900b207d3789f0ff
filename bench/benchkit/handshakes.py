"""TLS handshakes of a measured run as "handshakes" records: counted by llmops-proxy
(llmops_tls_handshakes_total and llmops_tls_handshake_failures_total in two /metrics
scrapes) or elsewhere (nginx's $ssl_session_reused log, counted by lib.sh)."""

import json
import sys

from .checks import by_label, parse_metrics


def tls_counts(path):
    m = parse_metrics(path)
    hs = {"full": 0, "resumed": 0, **by_label(m.get("llmops_tls_handshakes_total", []), "kind")}
    fails = by_label(m.get("llmops_tls_handshake_failures_total", []), "reason")
    return hs, fails, bool(m)


def cmd_handshakes(scen, label, m0, m1):
    """Handshakes llmops-proxy counted between two /metrics scrapes over TLS, less the
    second scrape's own (full) handshake."""
    (h0, f0, ok0), (h1, f1, ok1) = tls_counts(m0), tls_counts(m1)
    if not (ok0 and ok1):
        sys.stderr.write(f"({scen}) cannot read /metrics scrapes {m0} {m1}\n")
        return 1
    fails = {k: f1.get(k, 0) - f0.get(k, 0) for k in set(f0) | set(f1)}
    return record(
        scen,
        label,
        "llmops_tls_handshakes_total (/metrics, less the scrape's own handshake)",
        h1["full"] - h0["full"] - 1,
        h1["resumed"] - h0["resumed"],
        {k: v for k, v in fails.items() if v},
    )


def cmd_handshakes_count(scen, label, resumed, full):
    return record(scen, label, "nginx access log, $ssl_session_reused per request", int(full), int(resumed), None)


def record(scen, label, source, full, resumed, failures):
    """Prints the handshakes record; FAILURES by reason, or None where not counted."""
    rec = {"kind": "handshakes", "scenario": scen, "label": label, "source": source,
           "full": full, "resumed": resumed, "failures": failures}
    print(json.dumps(rec))
    return 0
