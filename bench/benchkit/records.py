"""results.jsonl, one JSON record per line as the scripts append them: reading it (load,
find), formatting its values (fmt), free-text notes, and the console lines the scripts
print after each run (show, show-any) or derive from one (rate)."""

import json


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


def cmd_note(scen, text):
    print(json.dumps({"kind": "note", "scenario": scen, "text": text}))
    return 0


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


def cmd_rate(path, scen):
    """Half of SCEN's requests/s, at least 1: the fixed rate of run.sh."""
    r = find(load(path), scen, "oha")
    print(max(1, int(r["rps"] / 2)))
    return 0
