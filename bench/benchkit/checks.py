"""proxy-check: what one llmops-proxy instance says about itself once it has drained:
its /metrics scrape (requests by status, drivers, upstream connects and errors, dropped
rows), its stderr log (lines by level, the first of each notable kind), and the rows of
the Parquet files it left, beside the answers the load generators counted."""

import glob
import json
import os
import re


def parse_metrics(path):
    """{name: [(labels, value)]} of a Prometheus text scrape; {} when PATH is unreadable."""
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


def by_label(samples, label, skip_zero=False):
    """{value of LABEL: summed sample} over SAMPLES of parse_metrics."""
    out = {}
    for labels, v in samples:
        k = re.search(label + r'="([^"]+)"', labels)
        if k and (v or not skip_zero):
            out[k.group(1)] = out.get(k.group(1), 0) + int(v)
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


def log_levels(log_path):
    """Lines of the proxy's log by level, and for each level above info and event the
    count and the first line."""
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
    return levels, notable


def answers_sent(sent_files):
    """Answers the load generators counted: oha JSON files, or plain numbers."""
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
    return sent


def cmd_proxy_check(name, metrics_path, usage_dir, log_path, *sent_files):
    m = parse_metrics(metrics_path)

    def one(k):
        v = m.get(k)
        return int(sum(x for _, x in v)) if v else None

    drivers = sorted(
        {re.search(r'driver="([^"]+)"', lab).group(1) for lab, _ in m.get("llmops_shard_driver", []) if "driver=" in lab}
    )
    levels, notable = log_levels(log_path)
    nfiles, rows = parquet_rows(usage_dir)
    rec = {
        "kind": "proxy",
        "name": name,
        "drivers": drivers,
        "requests_by_status": by_label(m.get("llmops_requests_total", []), "status"),
        "errors": by_label(m.get("llmops_errors_total", []), "type", skip_zero=True),
        "bad_requests": one("llmops_bad_requests_total"),
        "dropped": one("usage_records_dropped_total"),
        "upstream_connects": one("llmops_upstream_connects_total"),
        "upstream_reused": one("llmops_upstream_reused_total"),
        "upstream_retries": one("llmops_upstream_retries_total"),
        "upstream_errors": by_label(m.get("llmops_upstream_errors_total", []), "kind", skip_zero=True),
        "client_connections": one("llmops_client_connections_total"),
        "write_errors": one("llmops_usage_write_errors_total"),
        "parquet_files": nfiles,
        "parquet_rows": rows,
        "answers_seen_by_load_generators": answers_sent(sent_files),
        "log_levels": levels,
        "log_notable": notable,
    }
    print(json.dumps(rec))
    return 0
