#!/usr/bin/env python3
"""Live capture benchmark: the highest packet rate a probe captures on a veth
pair without losing a packet.

    tests/bench/live_bench.py BUILD_DIR [PACKETS]

Needs root, iproute2 and tcpreplay (Debian: apt-get install tcpreplay). Two
network namespaces joined by a veth pair; tcpreplay in A replays a synthetic
capture (tb-gen-pcap, full frames) onto vethA at increasing rates; probe and
collector run in B, the probe capturing vethB with its defaults. For each rate
it reports what tcpreplay achieved, what the collector counted, and the
capture (kernel) and bus drops from the probe's heartbeats. Everything is
removed at the end."""

import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import tapbus_harness as h  # noqa: E402

RATES = ["50000", "100000", "200000", "400000", "800000", "topspeed"]


def sh(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        sys.exit("live_bench: %s failed: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    packets = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    if os.geteuid() != 0:
        sys.exit("live_bench: needs root (network namespaces, raw capture)")
    if sh("which", "tcpreplay", check=False).returncode != 0:
        sys.exit("live_bench: needs tcpreplay (apt-get install tcpreplay)")
    a, b = "tbbA-%d" % os.getpid(), "tbbB-%d" % os.getpid()
    tmp = tempfile.TemporaryDirectory(prefix="tapbus-livebench-")
    bus = None
    try:
        for ns in (a, b):
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "vethA", "netns", a, "type", "veth", "peer", "name", "vethB",
           "netns", b)
        for ns, dev in ((a, "vethA"), (b, "vethB")):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        pcap = os.path.join(tmp.name, "live.pcap")
        sh(os.path.join(build, "bin", "tb-gen-pcap"), "-o", pcap, "--packets", str(packets),
           "--snaplen", "2000")
        wrappers = os.path.join(tmp.name, "bin")
        os.mkdir(wrappers)
        for prog in ("tapbus-probe", "tapbus-collector", "tapbusctl"):
            path = os.path.join(wrappers, prog)
            with open(path, "w") as f:
                f.write('#!/bin/sh\nexec ip netns exec %s %s "$@"\n'
                        % (b, os.path.join(build, "bin", prog)))
            os.chmod(path, 0o755)
        h.BIN = wrappers
        bus = h.Bus([("live", "iface:vethB")])
        bus.start("live")

        def probe_view():
            st = h.ctl_json(bus.control, "status")["streams"][0]
            return st["probes"][0] if st["probes"] else {}
        h.wait_for(lambda: probe_view().get("source_state") == "running", 30,
                   "the capture to start")
        print("%-10s %14s %12s %12s %12s %10s" % ("rate", "replayed pps", "sent", "counted",
                                                  "cap.drops", "bus drops"))
        best = None
        for rate in RATES:
            before = h.ctl_json(bus.control, "stats", "live")
            view0 = probe_view()
            arg = ["--topspeed"] if rate == "topspeed" else ["--pps=" + rate]
            r = sh("ip", "netns", "exec", a, "tcpreplay", "--intf1=vethA", *arg, pcap)
            m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", r.stdout)
            achieved = float(m.group(1)) if m else 0.0
            sent = packets

            def settled(last=[None]):
                n = h.ctl_json(bus.control, "stats", "live")["packets"]
                done = n == last[0]
                last[0] = n
                return done
            h.wait_for(settled, 60, "the count to settle", interval=1.0)
            after = h.ctl_json(bus.control, "stats", "live")
            view = probe_view()
            counted = after["packets"] - before["packets"]
            cap = (view.get("capture_drops", 0) - view0.get("capture_drops", 0))
            busd = after["loss"]["bus_drops"] - before["loss"]["bus_drops"]
            print("%-10s %14.0f %12d %12d %12d %10d" % (rate, achieved, sent, counted, cap, busd))
            # (A few packets more than sent: the interface's own IPv6 chatter.)
            if counted >= sent and cap == 0 and busd == 0:
                best = max(best or 0, achieved)
        print("highest loss-free rate: %s packets/s (at most what tcpreplay could send)"
              % ("%.0f" % best if best else "none"))
    finally:
        if bus is not None:
            bus.close()
        for ns in (a, b):
            sh("ip", "netns", "del", ns, check=False)
        tmp.cleanup()


if __name__ == "__main__":
    main()
