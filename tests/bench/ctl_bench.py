#!/usr/bin/env python3
"""ctl_bench.py — how long a tapbusctl command takes, against one to N
collectors on loopback (each with STREAMS streams started, so that status
has something to carry), and with one silent endpoint among them.

usage: tests/bench/ctl_bench.py BUILD_DIR [N]     (default N = 3)

Environment: CALLS=50 (calls per measurement), STREAMS=20.
Reports the median and 90th percentile wall time of a whole tapbusctl
process (start, request, reply, print, exit) for status, status --json and
stats, the time a command takes when one collector never answers (that
is --timeout, by design), and status from a collector while a db query of
another client waits for a database that never answers."""

import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, calls):
    times = []
    code = None
    for _ in range(calls):
        t0 = time.perf_counter()
        code = subprocess.run(cmd, capture_output=True).returncode
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return code, statistics.median(times), times[int(len(times) * 0.9) - 1]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bindir = os.path.join(sys.argv[1], "bin")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    calls = int(os.environ.get("CALLS", "50"))
    nstreams = int(os.environ.get("STREAMS", "20"))
    ctl = os.path.join(bindir, "tapbusctl")
    procs, endpoints = [], []
    try:
        for _ in range(n):
            ep = "tcp://127.0.0.1:%d" % free_port()
            procs.append(subprocess.Popen(
                [os.path.join(bindir, "tapbus-collector"), "--listen",
                 "tcp://127.0.0.1:%d" % free_port(), "--control", ep, "--log-level", "warn"]))
            endpoints.append(ep)
        time.sleep(0.5)
        for i, ep in enumerate(endpoints):
            names = ["c%d-s%d" % (i, k) for k in range(nstreams)]
            subprocess.run([ctl, "--collector", ep, "start"] + names, check=True,
                           capture_output=True)
        print("%-34s %5s %10s %10s" % ("command", "exit", "median ms", "p90 ms"))
        for k in range(1, n + 1):
            base = [ctl, "--collector", ",".join(endpoints[:k])]
            for what, args in (("status", ["status"]), ("status --json", ["--json", "status"]),
                               ("stats", ["stats", "c0-s0"])):
                code, med, p90 = timed(base + args, calls)
                print("%-34s %5d %10.2f %10.2f" % ("%s, %d collector(s)" % (what, k), code, med,
                                                   p90))
        silent = "tcp://127.0.0.1:%d" % free_port()
        code, med, _ = timed([ctl, "--timeout", "1000", "--collector",
                              ",".join(endpoints + [silent]), "status"], 3)
        print("%-34s %5d %10.2f %10s" % ("status, one silent (--timeout 1000)", code, med, "-"))
        # A database that accepts connections (the kernel's backlog) and never answers.
        db = socket.socket()
        db.bind(("127.0.0.1", 0))
        db.listen(64)
        ep = "tcp://127.0.0.1:%d" % free_port()
        procs.append(subprocess.Popen(
            [os.path.join(bindir, "tapbus-collector"), "--listen",
             "tcp://127.0.0.1:%d" % free_port(), "--control", ep, "--log-level", "error",
             "--influx-url", "http://127.0.0.1:%d" % db.getsockname()[1],
             "--influx-timeout-ms", "60000"]))
        time.sleep(0.5)
        query = subprocess.Popen([ctl, "--collector", ep, "--timeout", "60000", "db"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(query)
        time.sleep(0.5)
        code, med, p90 = timed([ctl, "--collector", ep, "status"], calls)
        print("%-34s %5d %10.2f %10.2f" % ("status while a db query waits", code, med, p90))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()
