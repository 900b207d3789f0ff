#!/usr/bin/env python3
"""RSS of a server per idle keep-alive connection (bench/run.sh, scenario idle).

    idle_conns.py PID HOST PORT N SETTLE_S

Opens N connections to HOST:PORT, sends one `GET /healthz` on each and reads its answer
(so every connection has served a request and sits in the keep-alive wait), waits
SETTLE_S seconds, and reads the server's VmRSS from /proc/PID/status before and after.
Then checks that a sample of the connections still answers (they were idle, not
closed). Prints one JSON line.
"""

import json
import socket
import sys
import time

REQ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def answer(s):
    """Reads one response with a Content-Length body; returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the body")
        rest += chunk
    return int(head.split(b" ")[1])


def main(pid, host, port, n, settle):
    pid, port, n, settle = int(pid), int(port), int(n), float(settle)
    time.sleep(0.5)
    before = rss_kib(pid)
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.sendall(REQ)
        if answer(s) != 200:
            raise SystemExit("a /healthz answer was not 200")
        conns.append(s)
    opened = rss_kib(pid)
    time.sleep(settle)
    after = rss_kib(pid)
    alive = 0
    for s in conns[:: max(1, n // 20)]:
        s.sendall(REQ)
        alive += answer(s) == 200
    for s in conns:
        s.close()
    print(json.dumps({
        "scenario": "idle",
        "kind": "idle",
        "connections": n,
        "settle_s": settle,
        "rss_before_kib": before,
        "rss_opened_kib": opened,
        "rss_after_kib": after,
        "bytes_per_connection_opened": round((opened - before) * 1024 / n),
        "bytes_per_connection": round((after - before) * 1024 / n),
        "sampled_alive": alive,
    }))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
