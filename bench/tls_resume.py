#!/usr/bin/env python3
"""Sequential TLS connections, each new: connect, handshake, one request, read the answer,
close. With --mode resumed each connection offers the session (ticket) of the previous
one (`SSLContext.wrap_socket(..., session=prev.session)`); with --mode full none
(session=None), so every handshake is a full one. Prints one JSON line for
bench/benchlib.py (kind "resume").

    tls_resume.py --port P --path PATH --cafile CA --body FILE [-H 'K: V']... --n N
                  --mode full|resumed --scenario S --label L [--cpu-pid PID]... [--warmup 50]

The client is Python's ssl module (OpenSSL), one connection at a time: connections/s are
bound by the round trips and by both ends' handshake CPU, not by concurrency. The server's
CPU over the timed connections (utime+stime of --cpu-pid and its descendants) is reported
per 1,000 connections.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left behind in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit.measure import cpu_seconds, pctl  # noqa: E402


def complete(data):
    """Whether DATA holds a whole answer (head and Content-Length bytes of body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in data[:end].decode("latin-1").lower().split("\r\n"):
        if line.startswith("content-length:"):
            return len(data) >= end + 4 + int(line.split(":", 1)[1])
    return False


def one(ctx, port, request, session):
    """Returns (status, reused, session, seconds, version, cipher)."""
    t0 = time.perf_counter()
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    try:
        s.sendall(request)
        data = bytearray()
        while not complete(data):
            try:
                chunk = s.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
        reused = s.session_reused
        sess = s.session
        version, cipher = s.version(), (s.cipher() or ("?",))[0]
    finally:
        s.close()
    return status, reused, sess, time.perf_counter() - t0, version, cipher


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50, help="connections before the timed ones (not counted)")
    ap.add_argument("--mode", choices=["full", "resumed"], required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--cpu-pid", type=int, action="append", default=[])
    a = ap.parse_args()

    body = open(a.body, "rb").read()
    head = f"POST {a.path} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    head += "".join(h + "\r\n" for h in a.headers)
    request = head.encode() + b"\r\n" + body

    ctx = ssl.create_default_context(cafile=a.cafile)
    session = None
    for _ in range(a.warmup):
        _, _, sess, _, _, _ = one(ctx, a.port, request, session)
        if a.mode == "resumed":
            session = sess

    statuses, reused, times = {}, 0, []
    version = cipher = "?"
    c0 = cpu_seconds(a.cpu_pid)
    t0 = time.perf_counter()
    for _ in range(a.n):
        st, ru, sess, dt, version, cipher = one(ctx, a.port, request, session)
        statuses[str(st)] = statuses.get(str(st), 0) + 1
        reused += 1 if ru else 0
        times.append(dt * 1000.0)
        if a.mode == "resumed":
            session = sess
    elapsed = time.perf_counter() - t0
    c1 = cpu_seconds(a.cpu_pid)
    ok = statuses.get("200", 0)
    rec = {
        "kind": "resume",
        "scenario": a.scenario,
        "label": a.label,
        "mode": a.mode,
        "connections": a.n,
        "ok": ok,
        "status": statuses,
        "client_reused": reused,
        "seconds": round(elapsed, 3),
        "conn_per_s": round(a.n / elapsed, 1),
        "p50_ms": round(pctl(times, 50), 3),
        "p99_ms": round(pctl(times, 99), 3),
        "cpu_s": round(c1 - c0, 3),
        "cpu_s_per_1k": round((c1 - c0) / a.n * 1000.0, 4),
        "version": version,
        "cipher": cipher,
        "openssl": ssl.OPENSSL_VERSION,
    }
    print(json.dumps(rec))
    if ok < a.n:
        sys.stderr.write(f"({a.scenario}) {a.label}: {ok} of {a.n} answers were 200 ({statuses})\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
