#!/usr/bin/env python3
"""Live capture (`iface:NAME`) end to end, in network namespaces.

Each test builds two namespaces joined by a veth pair (netns.py): A sends a
known set of UDP datagrams, B runs probe, collector and tapbusctl, the probe
capturing on B's end of the pair. Without root or `ip netns`, the tests are
skipped, not passed."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402
from netns import ADDR_A, ADDR_B, NsInflux, VethPair, run  # noqa: E402

SPORT = 40000
SIZES = (100, 500, 1400)  # UDP payloads; frames are 42 bytes longer (Ethernet/IPv4/UDP)
HDR = 14 + 20 + 8
COUNT = 1000
# Small ring: several probes may run at once in a test machine.
LIVE = ["--buffer-mb", "8", "--filter", "udp port 9999"]

SENDER = r"""
import socket, sys
src, dst, sport = sys.argv[1], sys.argv[2], int(sys.argv[3])
sizes = [int(x) for x in sys.argv[6].split(",")]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
for i in range(int(sys.argv[5])):
    s.sendto(b"x" * sizes[i % len(sizes)], (dst, int(sys.argv[4])))
"""


def frames(count, every=1):
    """Wire lengths of the packets the sender's packets i (every `every`th,
    from the first) have."""
    return [SIZES[i % len(SIZES)] + HDR for i in range(0, count, every)]


class Live(VethPair):
    def send(self, count, dport=9999, sizes=SIZES):
        r = subprocess.run(["ip", "netns", "exec", self.ns_a, sys.executable, "-c", SENDER,
                            ADDR_A, ADDR_B, str(SPORT), str(dport), str(count),
                            ",".join(str(s) for s in sizes)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def capture(self, args=LIVE, sources=(("live", "iface:vethB"),), collector_args=()):
        """A bus whose streams are started, "live" capturing."""
        bus = self.open_bus(list(sources), args, collector_args)
        bus.start(*[name for name, _ in sources])
        self.wait_capturing("live")
        return bus

    def wait_packets(self, stream, want):
        """Wait until the collector has `want` packets and the probe's
        heartbeat says it published exactly as many (so none is still coming)."""
        h.wait_for(lambda: self.bus.stats(stream)["packets"] >= want, 30,
                   "%d packets on %s" % (want, stream))
        h.wait_for(lambda: self.probe_view(stream).get("published", 0) == want, 30,
                   "a heartbeat counting %d packets on %s" % (want, stream))
        s = self.bus.stats(stream)
        self.assertEqual(s["packets"], want)
        return s

    def check_totals(self, s, lengths):
        self.assertEqual(s["state"], "running")
        self.assertEqual(s["bytes"], sum(lengths))
        self.assertEqual(s["min_len"], min(lengths))
        self.assertEqual(s["max_len"], max(lengths))
        self.assertEqual(s["protocols"]["udp"]["packets"], len(lengths))
        flow = s["top_flows"][0]
        self.assertEqual((flow["src"], flow["dst"], flow["sport"], flow["dport"], flow["proto"],
                          flow["packets"], flow["bytes"]),
                         (ADDR_A, ADDR_B, SPORT, 9999, 17, len(lengths), sum(lengths)))
        self.assertEqual(len(s["top_flows"]), 1)
        self.assertEqual(s["loss"]["bus_drops"], 0)
        self.assertEqual(s["loss"]["seq_gaps"], 0)

    def test_live_capture_counts_every_packet(self):
        self.capture()
        before = time.time_ns()
        self.send(COUNT)
        after = time.time_ns()
        s = self.wait_packets("live", COUNT)
        self.check_totals(s, frames(COUNT))
        # Snap length 128: the wire length is kept, the captured part is cut.
        self.assertEqual(s["max_packet"]["caplen"], 128)
        self.assertEqual(s["max_packet"]["len"], max(frames(COUNT)))
        # Capture time: now, to the nanosecond clock of the host.
        self.assertLessEqual(before - 10**9, s["first_ts"])
        self.assertLessEqual(s["last_ts"], after + 10**9)
        # ... with nanosecond digits (TPACKET_V3 gives them; microseconds would
        # make both a multiple of 1000, a one-in-a-million chance otherwise).
        self.assertTrue(s["first_ts"] % 1000 or s["last_ts"] % 1000, s)
        self.assertEqual(s["loss"]["capture_drops"], 0)

    def test_filter_counts_only_matching_packets(self):
        self.capture()
        self.send(300, dport=8888)
        self.send(COUNT)
        self.send(300, dport=8888)
        s = self.wait_packets("live", COUNT)
        self.check_totals(s, frames(COUNT))

    def test_filter_per_stream(self):
        # Two streams on one interface, each with its own filter; the global
        # --filter (port 9999) applies to the stream that has none of its own.
        self.capture(LIVE + ["--filter-for", "other=udp port 8888"],
                     sources=(("live", "iface:vethB"), ("other", "iface:vethB")))
        self.wait_capturing("other")
        self.send(300, dport=8888, sizes=(200,))
        self.send(COUNT)
        self.check_totals(self.wait_packets("live", COUNT), frames(COUNT))
        other = self.wait_packets("other", 300)
        self.assertEqual(other["bytes"], 300 * (200 + HDR))

    def test_permission_error_is_an_error_of_its_stream(self):
        if shutil.which("setpriv") is None:
            self.skipTest("needs setpriv (util-linux) to run the probe unprivileged")
        # The probe runs as nobody: capturing is refused, the stream says why.
        probe = os.path.join(self.saved_bin, "tapbus-probe")
        r = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", probe, "--help")
        if r.returncode != 0:
            self.skipTest("user nobody cannot run %s (a parent folder is private)" % probe)
        unpriv = tempfile.TemporaryDirectory(prefix="tapbus-unpriv-")
        self.addCleanup(unpriv.cleanup)
        for prog in ("tapbus-probe", "tapbus-collector", "tapbusctl"):
            path = os.path.join(unpriv.name, prog)
            drop = "setpriv --reuid=65534 --regid=65534 --clear-groups " \
                if prog == "tapbus-probe" else ""
            with open(path, "w") as f:
                f.write('#!/bin/sh\nexec ip netns exec %s %s%s "$@"\n'
                        % (self.ns_b, drop, os.path.join(self.saved_bin, prog)))
            os.chmod(path, 0o755)
        os.chmod(unpriv.name, 0o755)
        h.BIN = unpriv.name
        bus = self.open_bus([("live", "iface:vethB")], LIVE)
        bus.start("live")
        detail = self.wait_error("live", "the unprivileged capture to report an error")
        self.assertIn("vethB", detail)
        self.assertRegex(detail.lower(), "permission|operation not permitted")

    def test_sampling_keeps_every_nth(self):
        self.capture(LIVE + ["--sample", "10"])
        self.send(COUNT)
        # The 1st, 11th, 21st ... packet the filter passed.
        s = self.wait_packets("live", COUNT // 10)
        self.check_totals(s, frames(COUNT, every=10))
        # Heartbeats say how many were passed over.
        h.wait_for(lambda: self.probe_view("live").get("sampled_out") == COUNT - COUNT // 10,
                   30, "a heartbeat counting the sampled-out packets")

    def test_missing_interface_is_an_error_of_its_stream(self):
        bus = self.capture(sources=(("gone", "iface:nosuch0"), ("live", "iface:vethB")))
        detail = self.wait_error("gone", "the missing interface's stream to report an error")
        self.assertIn("nosuch0", detail)
        self.assertIn("No such device", detail)
        self.send(COUNT)
        self.check_totals(self.wait_packets("live", COUNT), frames(COUNT))
        self.assertEqual(bus.probe.output().count("nosuch0"), 1, bus.probe.output())

    def test_bad_filter_is_an_error_of_its_stream(self):
        bus = self.open_bus([("live", "iface:vethB")], ["--filter", "udp port"])
        bus.start("live")
        detail = self.wait_error("live", "the stream with a bad filter to report an error")
        self.assertIn("bad filter 'udp port'", detail)
        self.assertIsNone(bus.probe.p.poll(), "the probe exited")

    def test_full_bus_drops_batches_and_counts_only_what_was_sent(self):
        # One summary per batch and a one-message queue: a burst overflows the
        # bus. Capture must go on; every batch is either published (and
        # arrives) or counted as a bus drop, never both.
        bus = self.capture(LIVE + ["--batch", "1", "--hwm", "1"])
        self.send(COUNT)

        def accounted():
            s = bus.stats("live")
            published = self.probe_view("live").get("published", 0)
            return published + s["loss"]["bus_drops"] == COUNT and s["packets"] == published
        h.wait_for(accounted, 30, "every packet to be published or counted as dropped")
        s = bus.stats("live")
        self.assertEqual(s["loss"]["seq_gaps"], 0)
        self.assertEqual(s["loss"]["capture_drops"], 0)
        print("(%d of %d batches dropped on the full bus)" % (s["loss"]["bus_drops"], COUNT),
              file=sys.stderr)

    def test_second_subscriber_joins_a_running_capture(self):
        bus = self.capture()
        self.send(99)
        self.wait_packets("live", 99)
        second = bus.add_collector()
        h.ctl(second, "start", "live")
        h.wait_for(lambda: h.ctl_json(second, "stats", "live")["state"] == "running", 20,
                   "the second collector to run the stream")
        # Joining must not restart the capture: the first collector's counts go on.
        self.send(COUNT)
        h.wait_for(lambda: h.ctl_json(second, "stats", "live")["packets"] >= COUNT, 30,
                   "the second collector to count the new packets")
        s = self.wait_packets("live", 99 + COUNT)
        self.assertEqual(s["run_resets"], 0)
        self.assertEqual(h.ctl_json(second, "stats", "live")["packets"], COUNT)
        # Both leave: the capture stops. A new start captures again.
        h.ctl(second, "stop", "live")
        h.ctl(bus.control, "stop", "live")
        h.wait_for(lambda: "no subscriber left" in bus.probe.output(), 20,
                   "the probe to stop capturing")
        bus.start("live")
        # (The collector still shows the last run's heartbeat: ask the probe.)
        h.wait_for(lambda: bus.probe.output().count("iface source started") == 2, 20,
                   "the capture to start again")
        self.send(COUNT)
        self.check_totals(self.wait_packets("live", COUNT), frames(COUNT))

    def test_interface_vanishing_is_an_error_of_its_stream(self):
        bus = self.capture()
        self.send(100)
        self.wait_packets("live", 100)
        r = run("ip", "-n", self.ns_a, "link", "del", "vethA")  # takes vethB along
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("vethB", self.wait_error("live", "the capture to fail"))
        self.assertEqual(self.bus.stats("live")["packets"], 100)
        self.assertIsNone(bus.probe.p.poll(), "the probe exited")

    def test_idle_live_stream_writes_zeros_until_stopped(self):
        """A live stream with the database sink (a real influxd inside B):
        a burst, then silence while the stream runs. The burst's seconds
        reach the database exactly, without a stop and without later
        traffic; the idle seconds after it come as zero points (every class)
        and zero intervals; after stop, the stream writes nothing more while
        a second live stream (the witness) shows the collector's clock and
        writer going on."""
        ix = NsInflux(self.ns_b)
        self.addCleanup(ix.close)  # before the namespaces go (cleanups run last first)
        ix.start()
        ix.create_db("tapbus")
        self.capture(LIVE + ["--filter-for", "witness=udp port 8888"],
                     sources=(("live", "iface:vethB"), ("witness", "iface:vethB")),
                     collector_args=["--influx-url", ix.url, "--influx-db", "tapbus",
                                     "--batch-ms", "200", "--influx-timeout-ms", "2000",
                                     "--lateness", "1", "--interval", "2"])
        self.wait_capturing("witness")
        # The witness's clock starts with its first packet.
        self.send(3, dport=8888, sizes=(50,))
        self.wait_packets("witness", 3)

        def traffic(stream):
            return ix.points("tapbus", "SELECT packets, bytes FROM tapbus_traffic WHERE "
                                       "stream = '%s' GROUP BY class" % stream)

        def intervals(stream):
            return ix.points("tapbus", "SELECT * FROM tapbus_interval WHERE stream = '%s'"
                             % stream)

        before = time.time()
        self.send(COUNT)
        t_sent = time.monotonic()
        after = time.time()
        lengths = frames(COUNT)

        # (a) The burst's seconds, exact, while the stream runs on.
        def burst_written():
            rows = [r for r in traffic("live") if r["packets"] > 0]
            return rows if sum(r["packets"] for r in rows) >= COUNT else None
        rows = h.wait_for(burst_written, 30, "the burst's seconds in tapbus_traffic")
        latency = time.monotonic() - t_sent
        self.assertEqual(sum(r["packets"] for r in rows), COUNT, rows)
        self.assertEqual(sum(r["bytes"] for r in rows), sum(lengths), rows)
        self.assertEqual({r["class"] for r in rows}, {"udp"}, rows)
        busy = sorted({r["time"] // 10**9 for r in rows})
        self.assertLessEqual(int(before) - 1, busy[0])
        self.assertLessEqual(busy[-1], int(after) + 1)
        self.assertEqual(self.bus.stats("live")["state"], "running")
        print("(burst's seconds in the database %.2f s after the burst was sent; "
              "lateness 1 s, batch 0.2 s)" % latency, file=sys.stderr, flush=True)
        s = self.wait_packets("live", COUNT)
        self.check_totals(s, lengths)
        self.assertEqual(s["loss"]["capture_drops"], 0)

        # (b) Idle seconds after the burst: zeros for every class, and zero
        # intervals, while the stream still runs.
        classes = {"tcp", "udp", "icmp", "icmpv6", "other", "non_ip"}

        def zero_seconds():
            return sorted({r["time"] // 10**9 for r in traffic("live") if r["packets"] == 0})

        def zero_intervals():
            return [r for r in intervals("live") if r["time"] // 10**9 > busy[-1]]
        h.wait_for(lambda: len(zero_seconds()) >= 4, 30, "four zero seconds")
        h.wait_for(zero_intervals, 30, "a zero interval")
        self.assertEqual(self.bus.stats("live")["state"], "running")
        self.assertEqual(self.bus.stats("live")["packets"], COUNT)
        rows = traffic("live")
        zeros = zero_seconds()
        # Right after the burst, without a gap, never before its first packet,
        # and no later than now.
        self.assertEqual(zeros[0], busy[-1] + 1, (busy, zeros))
        self.assertEqual(zeros, list(range(zeros[0], zeros[-1] + 1)))
        self.assertLessEqual(zeros[-1], time.time())
        for second in zeros:
            got = {r["class"]: (r["packets"], r["bytes"]) for r in rows
                   if r["time"] // 10**9 == second}
            self.assertEqual(got, {c: (0, 0) for c in classes}, second)
        for r in zero_intervals():
            self.assertEqual((r["packets"], r["bytes"], r["pps"], r["bps"], r["flows"]),
                             (0, 0, 0, 0, 0), r)
        self.assertEqual(sum(r["packets"] for r in intervals("live")), COUNT)

        # (c) Stopped: no more zeros, while the witness's go on.
        h.ctl(self.bus.control, "stop", "live")
        stopped = time.time()

        def witness_zero_after(t):
            return any(r["packets"] == 0 and r["time"] // 10**9 > t for r in traffic("witness"))
        h.wait_for(lambda: witness_zero_after(stopped + 1), 30, "the witness's zeros after stop")
        seconds, ivals = traffic("live"), intervals("live")
        self.assertLessEqual(max(r["time"] for r in seconds) // 10**9, int(stopped), seconds)
        h.wait_for(lambda: witness_zero_after(stopped + 4), 30, "more witness zeros")
        self.assertEqual(traffic("live"), seconds)
        self.assertEqual(intervals("live"), ivals)
        self.assertEqual(self.bus.stats("live")["state"], "stopped")
        print("(%d zero seconds and %d zero intervals written while idle; none after stop)"
              % (len(zero_seconds()), len([r for r in ivals if r["packets"] == 0])),
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    unittest.main(verbosity=2)
