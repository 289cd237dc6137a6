#!/usr/bin/env python3
"""Live capture benchmark: the highest packet rate a probe captures on a veth
pair without losing a packet.

    tests/bench/live_bench.py BUILD_DIR [PACKETS] [--dpmi]

Needs root, iproute2 and tcpreplay (Debian: apt-get install tcpreplay). Two
network namespaces joined by a veth pair; tcpreplay in A replays a synthetic
capture (tb-gen-pcap, full frames) onto vethA at increasing rates; probe and
collector run in B, the probe capturing vethB with its defaults. For each rate
it reports what tcpreplay achieved, what the collector counted, and the
capture (kernel) and bus drops from the probe's heartbeats. Everything is
removed at the end.

--dpmi: the same packets (96 bytes captured of each, as MPs usually keep)
packed by tb-gen-dpmi into DPMI measurement frames of up to 9000 bytes (the
veth pair's MTU), received by a dpmi: source; rates are frames per second,
and the packets (records) per second reached are reported too."""

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
DPMI_RATES = ["5000", "10000", "20000", "40000", "topspeed"]  # frames/s


def sh(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        sys.exit("live_bench: %s failed: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    dpmi = "--dpmi" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--dpmi"]
    build = os.path.abspath(args[0])
    packets = int(args[1]) if len(args) > 1 else 200000
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
            if dpmi:
                sh("ip", "-n", ns, "link", "set", dev, "mtu", "9000")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        pcap = os.path.join(tmp.name, "live.pcap")
        sh(os.path.join(build, "bin", "tb-gen-pcap"), "-o", pcap, "--packets", str(packets),
           "--snaplen", "96" if dpmi else "2000")
        frames = packets
        if dpmi:
            packed = os.path.join(tmp.name, "dpmi.pcap")
            r = sh(os.path.join(build, "bin", "tb-gen-dpmi"), "--out", packed, pcap)
            frames = json.loads(r.stdout)["frames"]
            pcap = packed
            print("%d packets in %d measurement frames (%.1f per frame)"
                  % (packets, frames, packets / frames))
        wrappers = os.path.join(tmp.name, "bin")
        os.mkdir(wrappers)
        for prog in ("tapbus-probe", "tapbus-collector", "tapbusctl"):
            path = os.path.join(wrappers, prog)
            with open(path, "w") as f:
                f.write('#!/bin/sh\nexec ip netns exec %s %s "$@"\n'
                        % (b, os.path.join(build, "bin", prog)))
            os.chmod(path, 0o755)
        h.BIN = wrappers
        bus = h.Bus([("live", "dpmi:vethB/01::10:01" if dpmi else "iface:vethB")])
        bus.start("live")

        def probe_view():
            st = h.ctl_json(bus.control, "status")["streams"][0]
            return st["probes"][0] if st["probes"] else {}
        h.wait_for(lambda: probe_view().get("source_state") == "running", 30,
                   "the capture to start")
        print("%-10s %14s %12s %12s %12s %10s%s" % ("rate", "replayed pps", "sent", "counted",
                                                    "cap.drops", "bus drops",
                                                    "  packets/s" if dpmi else ""))
        best = None
        for rate in (DPMI_RATES if dpmi else RATES):
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
            print("%-10s %14.0f %12d %12d %12d %10d%s"
                  % (rate, achieved, sent, counted, cap, busd,
                     "  %.0f" % (achieved * packets / frames) if dpmi else ""))
            # (A few packets more than sent: the interface's own IPv6 chatter.)
            if counted >= sent and cap == 0 and busd == 0:
                best = max(best or 0, achieved)
        if dpmi and best:
            print("highest loss-free rate: %.0f frames/s, %.0f packets/s (at most what "
                  "tcpreplay could send)" % (best, best * packets / frames))
        else:
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
