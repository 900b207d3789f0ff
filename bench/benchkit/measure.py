"""Measurements: CPU seconds of process trees, oha's JSON and curl's TTFB lines turned into
results.jsonl records, and the CPU that processes outside the benchmark use (busy, other).

CPU ticks come from /proc/PID/stat fields 14 and 15 (utime, stime; every thread of the
process), divided by CLK_TCK (os.sysconf("SC_CLK_TCK"), as `getconf CLK_TCK`). For nginx
the master's children (the worker) are added.
"""

import glob
import json
import os
import statistics
import sys
import time

MIN_OK = 0.99  # share of 200s below which a measured run fails


def stat_fields(pid):
    """/proc/PID/stat from field 3 (state) on, or None once PID is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2 :].split()


def ticks(pid, reaped=False):
    """utime+stime of PID (fields 14, 15), with REAPED also cutime+cstime (16, 17: the
    children it has reaped); 0 once PID is gone."""
    f = stat_fields(pid)
    if f is None:
        return 0
    return sum(int(x) for x in f[11 : 15 if reaped else 13])


def children(pid):
    out = []
    for d in glob.glob("/proc/[0-9]*"):
        child = int(d.split("/")[2])
        f = stat_fields(child)
        if f is not None and int(f[1]) == pid:
            out.append(child)
    return out


def tree(pids):
    """PIDS and every descendant, each once."""
    seen, todo = set(), [int(p) for p in pids]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        yield p
        todo.extend(children(p))


def cpu_seconds(pids):
    """utime+stime of PIDS and their descendants, in seconds."""
    return sum(ticks(p) for p in tree(pids)) / os.sysconf("SC_CLK_TCK")


def cmd_cpu(*pids):
    print(f"{cpu_seconds(pids):.3f}")
    return 0


def ms(v):
    return None if v is None else round(v * 1000.0, 3)


def pctl(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


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


def cmd_busy(pid):
    """Prints "BUSY OURS T": ticks the whole machine spent in user+nice+system (/proc/stat),
    ticks of PID's process tree (children already reaped are in their parent's
    cutime/cstime, so the sum does not drop when one exits), and CLOCK_MONOTONIC seconds."""
    with open("/proc/stat") as f:
        cpu = f.readline().split()
    busy = int(cpu[1]) + int(cpu[2]) + int(cpu[3])
    ours = sum(ticks(p, reaped=True) for p in tree([pid]))
    print(f"{busy} {ours} {time.monotonic():.3f}")
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


def thread_ticks(pid, name):
    """utime+stime of PID's threads called NAME (/proc/PID/task/*/comm)."""
    total = 0
    for task in glob.glob(f"/proc/{pid}/task/[0-9]*"):
        try:
            with open(f"{task}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"{task}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total


def cmd_thread_cpu(pid, name):
    """CPU seconds of PID's threads named NAME."""
    print(f"{thread_ticks(pid, name) / os.sysconf('SC_CLK_TCK'):.3f}")
    return 0


def cmd_writer(results, scen, cpu0, cpu1):
    """One JSON line: the usage writer thread's CPU over SCEN's measured run, per row, and
    the rows per second it could take on one core at that cost (each answered request is
    one row)."""
    with open(results) as f:
        runs = [json.loads(x) for x in f if x.strip()]
    run = next(r for r in runs if r.get("kind") == "oha" and r["scenario"] == scen)
    cpu = float(cpu1) - float(cpu0)
    rows = run["ok"]
    rec = {
        "kind": "writer",
        "scenario": scen,
        "cpu_s": round(cpu, 3),
        "rows": rows,
        "cpu_us_per_row": round(cpu / rows * 1e6, 2) if rows else None,
        "capacity_rows_per_s": round(rows / cpu) if cpu > 0 else None,
    }
    print(json.dumps(rec))
    return 0
