#!/usr/bin/env python3
"""Live DPMI measurement streams (`dpmi:IFACE[/ADDRESS]`) end to end.

Namespaces A and B joined by a veth pair with jumbo frames (MTU 9000, as
measurement area networks use; netns.py). In A, tb-gen-dpmi sends a pcap's
packets as DPMI measurement frames (records packed up to the MTU) to a
stream address; in B the probe receives the stream and the collector
measures it. What the collector counts is compared with tshark's view of the
pcap the frames were made from, and the loss counters with the gaps and bad
frames the generator made on purpose. Without root or `ip netns`, the tests
are skipped, not passed."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402
from netns import NsInflux, VethPair, run  # noqa: E402

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "demo.pcap")
ADDRESS = "01::10:01"
ARGS = ["--buffer-mb", "8"]


class Dpmi(VethPair):
    MTU = 9000

    def send(self, *args, pcap=DEMO):
        """Run tb-gen-dpmi in A on vethA; returns what it says it sent."""
        gen = os.path.join(self.saved_bin, "tb-gen-dpmi")
        r = subprocess.run(["ip", "netns", "exec", self.ns_a, gen, "--iface", "vethA",
                            "--rate", "2000"] + list(args) + [pcap],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def receive(self, sources, collector_args=()):
        bus = self.open_bus(list(sources), ARGS, collector_args)
        bus.start(*[name for name, _ in sources])
        for name, _ in sources:
            self.wait_capturing(name)
        return bus

    def wait_packets(self, stream, want):
        h.wait_for(lambda: self.bus.stats(stream)["packets"] >= want, 60,
                   "%d packets on %s" % (want, stream))
        h.wait_for(lambda: self.probe_view(stream).get("published", 0) == want, 30,
                   "a heartbeat counting %d packets on %s" % (want, stream))
        s = self.bus.stats(stream)
        self.assertEqual(s["packets"], want)
        return s

    def groups(self):
        r = run("ip", "-n", self.ns_b, "maddr", "show", "dev", "vethB")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_stream_matches_tshark_and_ends_with_the_sender(self):
        """A stream at the address its name spells: every packet of the pcap,
        as tshark sees it (totals, extremes, protocol mix, first and last
        time to the nanosecond), in frames of up to 9000 bytes; the sender's
        terminate flag is shown; no loss."""
        self.receive([(ADDRESS, "dpmi:vethB")])
        sent = self.send("--ci", "d00,d01,d02", "--mp", "mp-1", "--terminate")
        want = h.tshark_expect(DEMO)
        self.assertEqual(sent["records"], want["packets"])
        self.assertGreater(sent["records"], 10 * sent["frames"])  # jumbo frames, many records
        s = self.wait_packets(ADDRESS, want["packets"])
        self.assertEqual(s["bytes"], want["bytes"])
        self.assertEqual(s["min_len"], want["min_len"])
        self.assertEqual(s["max_len"], want["max_len"])
        self.assertEqual(s["first_ts"], want["first_ts"])
        self.assertEqual(s["last_ts"], want["last_ts"])
        for cls, n in want["protocols"].items():
            self.assertEqual(s["protocols"][cls], n, cls)
        for key in ("frames_lost", "frames_bad", "capture_drops", "seq_gaps", "bus_drops"):
            self.assertEqual(s["loss"][key], 0, key)
        # The breakdown by MP and CI: record i on CI i % 3, all from mp-1.
        r = subprocess.run(["tshark", "-n", "-r", DEMO, "-T", "fields", "-e", "frame.len"],
                           capture_output=True, text=True, timeout=120)
        lengths = [int(x) for x in r.stdout.split()]
        self.assertEqual(len(lengths), want["packets"])
        self.assertEqual(
            [(e["mp"], e["ci"], e["packets"], e["bytes"]) for e in s["points"]],
            [("mp-1", ci, len(lengths[k::3]), sum(lengths[k::3]))
             for k, ci in enumerate(("d00", "d01", "d02"))])
        h.wait_for(lambda: "terminated" in self.probe_view(ADDRESS).get("detail", ""), 10,
                   "the sender's termination to be shown")
        detail = self.probe_view(ADDRESS)["detail"]
        self.assertIn("01:00:00:00:10:01", detail)
        self.assertIn("%d frames from 1 sender" % sent["frames"], detail)
        self.assertIn("02:00:00:00:00:01", detail)

    def test_gaps_are_lost_frames_and_bad_frames_are_dropped(self):
        """Sequence numbers left out are counted as lost frames; frames cut
        short, longer than their records, with a record of 0 bytes or of
        another version are dropped and counted; the records of every good
        frame arrive. The figures are in stats, status and tapbus_loss."""
        ix = NsInflux(self.ns_b)
        self.addCleanup(ix.close)
        ix.start()
        ix.create_db("tapbus")
        self.receive([(ADDRESS, "dpmi:vethB")],
                     ["--influx-url", ix.url, "--influx-db", "tapbus", "--batch-ms", "200"])
        sent = self.send("--mtu", "1500", "--skip", "3:5", "--skip", "20:2", "--bad", "6:cut",
                         "--bad", "9:extra", "--bad", "12:zero", "--bad", "15:version",
                         "--seq", "65530")  # the gaps cross the wrap after 0xFFFE
        self.assertEqual(sent["skipped"], 7)
        self.assertEqual(sent["frames"] - sent["good_frames"], 4)
        s = self.wait_packets(ADDRESS, sent["records"])
        self.assertEqual(s["bytes"], sent["bytes"])
        h.wait_for(lambda: self.bus.stats(ADDRESS)["loss"]["frames_bad"] == 4, 10,
                   "the bad frames in a heartbeat")
        loss = self.bus.stats(ADDRESS)["loss"]
        self.assertEqual(loss["frames_lost"], 7)
        self.assertEqual(loss["frames_bad"], 4)
        view = self.probe_view(ADDRESS)
        self.assertEqual((view["frames_lost"], view["frames_bad"]), (7, 4))
        text = h.ctl(self.bus.control, "stats", ADDRESS)[1]
        self.assertIn("7 measurement frames lost, 4 bad frames dropped", text)

        def loss_point():
            rows = ix.points("tapbus", "SELECT last(frames_lost) AS lost, "
                                       "last(frames_bad) AS bad FROM tapbus_loss "
                                       "WHERE stream = '%s'" % ADDRESS)
            return rows and rows[0]["lost"] == 7 and rows[0]["bad"] == 4
        h.wait_for(loss_point, 30, "tapbus_loss to count the lost and bad frames")

    def test_streams_share_an_interface_and_ignore_other_addresses(self):
        """Two streams on one interface, one at the address after '/':
        each counts only its own frames; frames to a third address and
        frames of another ethertype reach neither."""
        self.receive([(ADDRESS, "dpmi:vethB"), ("second", "dpmi:vethB/01:00:00:00:10:02")])
        one = self.send("--address", ADDRESS)
        two = self.send("--address", "01:00:00:00:10:02", "--records", "7", "--big-endian",
                        "--src", "02:00:00:00:00:02")
        self.send("--address", "01:00:00:00:10:03")
        self.assertGreater(one["records"], 0)
        self.wait_packets(ADDRESS, one["records"])
        s = self.wait_packets("second", two["records"])
        self.assertEqual(s["bytes"], two["bytes"])
        for stream in (ADDRESS, "second"):
            loss = self.bus.stats(stream)["loss"]
            self.assertEqual((loss["frames_lost"], loss["frames_bad"]), (0, 0), stream)

    def test_group_joined_only_while_subscribed(self):
        """The probe is a member of the stream's multicast group only while
        the stream is started."""
        self.open_bus([(ADDRESS, "dpmi:vethB")], ARGS)
        self.assertNotIn("01:00:00:00:10:01", self.groups())
        self.bus.start(ADDRESS)
        self.wait_capturing(ADDRESS)
        self.assertIn("01:00:00:00:10:01", self.groups())
        h.ctl(self.bus.control, "stop", ADDRESS)
        h.wait_for(lambda: "01:00:00:00:10:01" not in self.groups(), 20,
                   "the probe to leave the group")

    def test_missing_interface_is_an_error_of_its_stream(self):
        """A stream on an interface that does not exist is in the error
        state with the reason; the probe's other streams go on."""
        self.open_bus([(ADDRESS, "dpmi:nosuch0"), ("ok", "dpmi:vethB/01::10:05")], ARGS)
        self.bus.start(ADDRESS, "ok")
        self.assertIn("nosuch0", self.wait_error(ADDRESS, "the missing interface's error"))
        self.wait_capturing("ok")


class DpmiArguments(unittest.TestCase):
    """What the probe says about dpmi: sources it cannot make (no root needed)."""

    def refuse(self, spec, stream="s"):
        probe = os.path.join(h.BIN, "tapbus-probe")
        r = subprocess.run([probe, "--publish", h.endpoint(), "--source", "%s=%s" % (stream, spec)],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        return r.stderr

    def test_bad_sources_are_refused_with_a_reason(self):
        self.assertIn("is not a stream address", self.refuse("dpmi:eth0", "uplink"))
        self.assertIn("is not a stream address", self.refuse("dpmi:eth0/01::02::03"))
        self.assertIn("needs an interface", self.refuse("dpmi:/01::10:01"))


if __name__ == "__main__":
    unittest.main()
