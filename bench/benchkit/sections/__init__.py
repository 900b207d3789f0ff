"""The body of each RESULTS.md section, one module per script (run.sh, peers.sh, tls.sh,
budgets.sh): body(recs, lines) appends what lies between the header and the proxy
self-checks (report.cmd_report adds those)."""
