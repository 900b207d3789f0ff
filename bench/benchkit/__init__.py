"""The Python side of bench/'s scripts, run through bench/benchlib.py (its command line).

    measure.py     CPU of process trees (/proc), oha JSON and curl TTFB lines as records,
                   CPU of other processes (busy / other)
    checks.py      proxy-check: llmops-proxy's /metrics, stderr log and Parquet files
    handshakes.py  TLS handshakes counted by llmops-proxy (/metrics) or nginx (its log)
    records.py     results.jsonl: reading it, notes, the console lines (show, show-any, rate)
    report.py      what every RESULTS.md section shares (header, tables, exact commands)
    sections/      one RESULTS.md section per script: run, peers, tls, budgets

Standard library only (checks.py reads Parquet row counts with pyarrow when it is there).
"""
