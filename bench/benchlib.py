#!/usr/bin/env python3
"""Helpers of bench/run.sh, peers.sh, tls.sh, budgets.sh and ledger.sh: CPU time, oha JSON, TTFB, proxy checks, report.

    benchlib.py cpu PID...                           CPU seconds (utime+stime) of PIDs and descendants
    benchlib.py oha SCEN LABEL JSON CPU0 CPU1 [TARGET]  one JSON line; exit 1 if < 99% of answers are 200
    benchlib.py ttfb SCEN LABEL FILE                 one JSON line from curl -w lines; exit 1 on non-200
    benchlib.py proxy-check NAME METRICS USAGE_DIR LOG [SENT_JSON...]  one JSON line
    benchlib.py show RESULTS.jsonl SCEN              prints one scenario's figures
    benchlib.py rate RESULTS.jsonl SCEN              half of SCEN's requests/s, as an integer
    benchlib.py report RESULTS.jsonl KIND            the markdown section (KIND: run | peers | tls | budgets | ledger)
    benchlib.py handshakes SCEN LABEL M0 M1          TLS handshakes llmops-proxy counted between two /metrics scrapes
    benchlib.py handshakes-count SCEN LABEL RESUMED FULL  the same, counted elsewhere (nginx's log)
    benchlib.py note SCEN TEXT                       a line for the report
    benchlib.py busy PID                             machine busy ticks, PID's tree ticks, monotonic time
    benchlib.py other SCEN B0 O0 T0 B1 O1 T1      one JSON line: CPU of other processes between two `busy`
    benchlib.py show-any RESULTS.jsonl SCEN          show, plus handshake and tls_resume.py records
    benchlib.py thread-cpu PID NAME                  CPU seconds of PID's threads named NAME
    benchlib.py writer RESULTS.jsonl SCEN CPU0 CPU1  one JSON line: the usage writer's CPU per row in SCEN

CPU ticks come from /proc/PID/stat fields 14 and 15 (utime, stime; every thread of the
process), divided by CLK_TCK (os.sysconf("SC_CLK_TCK"), as `getconf CLK_TCK`). For nginx
the master's children (the worker) are added.
"""

import importlib
import sys

sys.dont_write_bytecode = True  # no __pycache__ left behind in bench/

# The code lives in bench/benchkit/, one module per purpose; this file only finds the
# module of a command and calls its cmd_<command> ("-" as "_") with the arguments as they
# come.
MODULES = {
    "measure": ("cpu", "oha", "ttfb", "busy", "other", "thread-cpu", "writer"),
    "checks": ("proxy-check",),
    "handshakes": ("handshakes", "handshakes-count"),
    "records": ("note", "show", "show-any", "rate"),
    "report": ("report",),
}
COMMANDS = {cmd: module for module, cmds in MODULES.items() for cmd in cmds}


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd not in COMMANDS:
        sys.exit(f"unknown command {cmd}")
    # Only the module a command needs is imported: `busy` runs every second in wait_quiet.
    module = importlib.import_module(f"benchkit.{COMMANDS[cmd]}")
    return getattr(module, "cmd_" + cmd.replace("-", "_"))(*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
