#!/usr/bin/env python3
"""DPMI capfiles end to end: tb-gen-capfile turns Ethernet pcaps (the demo
capture and corpus captures) into capfiles (little- and big-endian, several
capture interfaces, a long comment, the legacy versions 0.5 and 0.6), a
real probe reads them through `cap:` and `dir:` sources, a real collector
measures them, and tshark's view of the original pcap says what the answer
must be. Files that cannot be read (not a capfile, a newer version, cut
inside the header, missing) put their
stream in the error state with the reason; a file cut inside a record
delivers every whole record before the cut. Each record's measurement point
and capture interface reach `stats` as a breakdown that tshark's frame
lengths, split as the generator split them, confirm, and that survives a
collector restart."""

import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402
import test_e2e as e2e  # noqa: E402  (compare)

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
DEMO = os.path.join(DATA, "demo.pcap")
# Ethernet captures of the corpus: VLAN/QinQ tags, DHCP, IPv6 routing
# headers, PIM, DCB (non-IP).
ETHERNET = ["dhcp-rfc4388.pcap", "802.1ad_QinQ.pcap", "ipv6-srh-ext-header.pcap",
            "dcb_ets.pcap", "pim-packet-assortment.pcap"]


def frame_lengths(path):
    """tshark's frame.len of every packet, in order."""
    r = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.len"],
                       capture_output=True, text=True, check=True, timeout=300)
    return [int(x) for x in r.stdout.split()]


def gen(src, dst, *opts):
    subprocess.run([os.path.join(h.BIN, "tb-gen-capfile")] + list(opts) + [src, dst],
                   check=True, capture_output=True)


class Capfile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tapbus-cap-")

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_capfiles_match_tshark(self):
        inputs = [DEMO] + [h.corpus_file(n) for n in ETHERNET]
        variants = [(), ("--big-endian",), ("--ci", "eth0,eth1,eth2", "--mp", "mp-7"),
                    ("--comment", "c" * 5000, "--mpid", "m" * 300)]
        sources = []
        for i, src in enumerate(inputs):
            out = self.path("c%d.cap" % i)
            gen(src, out, *variants[i % len(variants)])
            sources.append(("cap%d" % i, "cap:" + out))
        bus = h.Bus(sources)
        try:
            bus.start(*[s for s, _ in sources])
            bus.wait_finished([s for s, _ in sources])
            for (stream, _), src in zip(sources, inputs):
                got = bus.stats(stream)
                want = h.tshark_expect(src)
                self.assertEqual(want["tshark_error"], "", src)
                self.assertGreater(want["packets"], 0, src)
                self.assertEqual(got["state"], "finished", stream)
                self.assertEqual(got["loss"]["files_skipped"], 0, stream)
                e2e.compare(self, os.path.basename(src), got, want)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_points_breakdown_matches_tshark_and_survives_a_restart(self):
        # Three capture interfaces taken in turn (packet i on CI i % 3) and
        # one MP name: the breakdown must be tshark's frame lengths split the
        # same way, adding up to the totals. One name holds an escape
        # character, which tapbusctl's text must not pass to the terminal.
        cis = ["eth0", "eth1", "d\x1b[2J"]
        cap = self.path("points.cap")
        gen(DEMO, cap, "--ci", ",".join(cis), "--mp", "mp-7")
        lengths = frame_lengths(DEMO)
        self.assertGreater(len(lengths), 3)
        want = {ci: {"packets": len(lengths[k::3]), "bytes": sum(lengths[k::3])}
                for k, ci in enumerate(cis)}
        state = self.path("state")
        os.mkdir(state)
        args = ["--state-dir", state]
        bus = h.Bus([("mp7", "cap:" + cap), ("plain", "file:" + DEMO)], collector_args=args)
        try:
            bus.start("mp7", "plain")
            bus.wait_finished(["mp7", "plain"])

            def breakdown(st):
                self.assertEqual(st["state"], "finished")
                self.assertEqual(st["packets"], len(lengths))
                self.assertEqual(st["bytes"], sum(lengths))
                got = {}
                for e in st["points"]:
                    self.assertEqual(e["mp"], "mp-7", e)
                    got[e["ci"]] = {"packets": e["packets"], "bytes": e["bytes"]}
                self.assertEqual(got, want)
                self.assertEqual([e["ci"] for e in st["points"]], sorted(cis))
                self.assertEqual(st["points_overflow"], {"packets": 0, "bytes": 0})
                self.assertEqual(st["points_unnamed"], {"packets": 0, "bytes": 0})
                self.assertEqual(sum(e["packets"] for e in st["points"]), st["packets"])
                self.assertEqual(sum(e["bytes"] for e in st["points"]), st["bytes"])

            breakdown(bus.stats("mp7"))
            # A source without points has no breakdown.
            plain = bus.stats("plain")
            self.assertEqual(plain["packets"], len(lengths))
            self.assertNotIn("points", plain)
            # tapbusctl's text shows it, a line per point.
            _, text, _ = h.ctl(bus.control, "stats", "mp7")
            self.assertRegex(text, r"\nMP +CI +PACKETS +BYTES\n")
            self.assertNotIn("\x1b", text)
            for ci in cis:
                shown = re.escape(ci.replace("\x1b", "\\x1b"))
                self.assertRegex(text, r"\nmp-7 +%s +%d +%d\n"
                                 % (shown, want[ci]["packets"], want[ci]["bytes"]))
            _, text, _ = h.ctl(bus.control, "stats", "plain")
            self.assertNotIn("\nMP ", text)

            # A collector restart (its snapshot) keeps the breakdown.
            self.assertEqual(bus.collector.stop(signal.SIGTERM), 0, bus.collector.output())
            bus.collector = h.Proc("tapbus-collector", ["--probe", bus.pub, "--control",
                                                        bus.control] + args, bus.tmp.name)
            h.wait_for(lambda: h.ctl(bus.control, "status", timeout_ms=500,
                                     check=False)[0] == 0, 30, "the collector to answer again")
            breakdown(bus.stats("mp7"))
            self.assertNotIn("points", bus.stats("plain"))
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_points_in_influxdb(self):
        # The breakdown reaches a real influxd as tapbus_point, one point per
        # (MP, CI), equal to tshark's frame lengths split as the generator
        # split them.
        cis = ["eth0", "eth1", "dag0"]
        cap = self.path("points.cap")
        gen(DEMO, cap, "--ci", ",".join(cis), "--mp", "mp-7")
        lengths = frame_lengths(DEMO)
        want = sorted(("mp-7", ci, len(lengths[k::3]), sum(lengths[k::3]))
                      for k, ci in enumerate(cis))
        db = "tapbus_points"
        with h.Influx() as ix:
            bus = h.Bus([("mp7", "cap:" + cap)], collector_args=[
                "--influx-url", ix.url, "--influx-db", db, "--influx-create-db",
                "--batch-ms", "200"])
            try:
                bus.start("mp7")
                bus.wait_finished(["mp7"])

                def stored():
                    rows = ix.points(db, "SELECT * FROM tapbus_point WHERE stream = 'mp7'")
                    return rows if len(rows) == len(cis) else None
                rows = h.wait_for(stored, 60, "the points to be written")
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        self.assertEqual(sorted((r["mp"], r["ci"], r["packets"], r["bytes"]) for r in rows),
                         want)
        self.assertEqual({r["state"] for r in rows}, {"finished"})

    def test_legacy_versions_match_tshark(self):
        # 0.5 and 0.6 headers (no magic number; the records are 0.7's).
        inputs = [DEMO, h.corpus_file("802.1ad_QinQ.pcap"), h.corpus_file("dhcp-rfc4388.pcap"),
                  DEMO]
        versions = ["0.5", "0.6", "0.5", "0.6"]
        sources = []
        for i, (src, version) in enumerate(zip(inputs, versions)):
            out = self.path("v%d.cap" % i)
            gen(src, out, "--version", version, "--ci", "e0,e1", "--mp", "old",
                "--comment", "x" * (300 * i))
            sources.append(("v%d" % i, "cap:" + out))
        bus = h.Bus(sources)
        try:
            bus.start(*[s for s, _ in sources])
            bus.wait_finished([s for s, _ in sources])
            for (stream, _), src in zip(sources, inputs):
                got = bus.stats(stream)
                want = h.tshark_expect(src)
                self.assertEqual(want["tshark_error"], "", src)
                self.assertGreater(want["packets"], 0, src)
                self.assertEqual(got["state"], "finished", stream)
                self.assertEqual(got["loss"]["files_skipped"], 0, stream)
                e2e.compare(self, os.path.basename(src), got, want)
                lengths = frame_lengths(src)
                self.assertEqual(
                    [(e["mp"], e["ci"], e["packets"], e["bytes"]) for e in got["points"]],
                    [("old", "e0", len(lengths[0::2]), sum(lengths[0::2])),
                     ("old", "e1", len(lengths[1::2]), sum(lengths[1::2]))], stream)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_bad_capfiles_are_errors_of_their_streams(self):
        good = self.path("good.cap")
        gen(DEMO, good)
        with open(good, "rb") as f:
            data = f.read()
        files = {
            "junk": b"this is not a capture file at all\n" * 10,
            "head": data[:100],          # cut inside the 216-byte header
            "comment": data[:216 + 3],   # cut inside the comment
        }
        for name, blob in files.items():
            with open(self.path(name + ".cap"), "wb") as f:
                f.write(blob)
        gen(DEMO, self.path("v05.cap"), "--version", "0.5")
        with open(self.path("v05.cap"), "rb") as f:
            v05 = f.read()
        with open(self.path("v05.cap"), "wb") as f:
            f.write(v05[:150])  # cut inside its 212-byte header
        newer = bytearray(data)
        newer[10] = 8  # version 0.8
        files["v08"] = bytes(newer)
        with open(self.path("v08.cap"), "wb") as f:
            f.write(files["v08"])
        with open(self.path("pcap.cap"), "wb") as f:  # a pcap is not a capfile
            with open(DEMO, "rb") as g:
                f.write(g.read())
        names = list(files) + ["v05", "pcap", "missing"]
        sources = [(n, "cap:" + self.path(n + ".cap")) for n in names]
        reasons = {"junk": "not a DPMI capfile", "head": "cut short",
                   "comment": "cut short", "v05": "version 0.5) header cut short",
                   "v08": "version 0.8 is not supported",
                   "pcap": "not a DPMI capfile", "missing": "No such file"}
        bus = h.Bus(sources)
        try:
            bus.start(*names)
            bus.wait_finished(names)
            for n in names:
                view = bus.probe_view(n)
                self.assertEqual(view["source_state"], "error", n)
                self.assertIn(reasons[n], view["detail"], n)
                self.assertIn(n + ".cap", view["detail"], n)
                self.assertEqual(bus.stats(n)["packets"], 0, n)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_record_cut_at_the_end_delivers_the_rest(self):
        good = self.path("good.cap")
        gen(DEMO, good)
        with open(good, "rb") as f:
            data = f.read()
        with open(self.path("cut.cap"), "wb") as f:
            f.write(data[:-7])  # the last record cut
        want = h.tshark_expect(DEMO)
        bus = h.Bus([("cut", "cap:" + self.path("cut.cap"))])
        try:
            bus.start("cut")
            bus.wait_finished(["cut"])
            got = bus.stats("cut")
            self.assertEqual(got["packets"], want["packets"] - 1)
            self.assertEqual(got["loss"]["files_skipped"], 1)
            self.assertIn("cut short", bus.probe_view("cut")["detail"])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_picosecond_timestamps_keep_nanoseconds(self):
        # An Ethernet pcap with nanosecond timestamps: the capfile holds them
        # as picoseconds, the collector must see every nanosecond again.
        src = self.path("ns.pcap")
        t0 = 1700000000 * 10**9
        stamps = [t0 + 123456789, t0 + 123456790, t0 + 2 * 10**9 + 999999999]
        with open(src, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
            for i, ts in enumerate(stamps):
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + i, 1, 0, 64, 17, 0,
                                 bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7]))
                frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + \
                    struct.pack("!HHHH", 5000, 53, 8 + i, 0) + b"\0" * i
                f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(frame), len(frame))
                        + frame)
        cap = self.path("ns.cap")
        gen(src, cap)
        bus = h.Bus([("ns", "cap:" + cap)])
        try:
            bus.start("ns")
            bus.wait_finished(["ns"])
            got = bus.stats("ns")
            self.assertEqual(got["packets"], 3)
            self.assertEqual(got["first_ts"], stamps[0])
            self.assertEqual(got["last_ts"], stamps[-1])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_replay_speed_paces_by_capture_time(self):
        # 21 records over 8 s of capture time, replayed 4x as fast: the
        # replay cannot finish before 2 s have passed (a lower bound only: a
        # busy machine may take longer); the same file unpaced is read as
        # fast as the bus takes it, with the same result.
        src = self.path("paced.pcap")
        t0 = 1700000000
        stamps = [(t0 + i // 2, (i % 2) * 500000000) for i in range(17)] + [(t0 + 8, 0)] * 4
        with open(src, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
            frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x06" + b"\0" * 28  # ARP-sized
            for sec, ns in stamps:
                f.write(struct.pack("<IIII", sec, ns, len(frame), len(frame)) + frame)
        cap = self.path("paced.cap")
        gen(src, cap, "--ci", "a,b,c")
        bus = h.Bus([("p", "cap:" + cap)], probe_args=["--replay-speed", "4"])
        try:
            started = time.monotonic()
            bus.start("p")
            bus.wait_finished(["p"], timeout=60)
            elapsed = time.monotonic() - started
            got = bus.stats("p")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        self.assertGreaterEqual(elapsed, 2.0)
        self.assertEqual(got["state"], "finished")
        self.assertEqual(got["packets"], 21)
        self.assertEqual(got["first_ts"], t0 * 10**9)
        self.assertEqual(got["last_ts"], (t0 + 8) * 10**9)
        self.assertEqual([(e["ci"], e["packets"]) for e in got["points"]],
                         [("a", 7), ("b", 7), ("c", 7)])

    def test_directory_of_capfiles(self):
        spool = self.path("spool")
        os.mkdir(spool)
        inputs = [DEMO, h.corpus_file("dhcp-rfc4388.pcap"), h.corpus_file("802.1ad_QinQ.pcap")]
        for i, src in enumerate(inputs):
            gen(src, os.path.join(spool, "trace" + (str(i) if i else "")),
                *(("--big-endian",) if i == 1 else ()))
        # A pcap among them is read as before.
        with open(os.path.join(spool, "trace3"), "wb") as f:
            with open(h.corpus_file("dcb_ets.pcap"), "rb") as g:
                f.write(g.read())
        inputs.append(h.corpus_file("dcb_ets.pcap"))
        wants = [h.tshark_expect(p) for p in inputs]
        total = sum(w["packets"] for w in wants)
        bus = h.Bus([("d", "dir:" + spool)])
        try:
            bus.start("d")
            h.wait_for(lambda: bus.stats("d")["packets"] == total, 60, "every packet")
            h.wait_for(lambda: "trace3" in bus.probe_view("d").get("detail", ""), 30,
                       "the last file to be read")
            got = bus.stats("d")
            self.assertEqual(got["packets"], total)
            self.assertEqual(got["bytes"], sum(w["bytes"] for w in wants))
            for cls in wants[0]["protocols"]:
                self.assertEqual(got["protocols"][cls]["packets"],
                                 sum(w["protocols"][cls]["packets"] for w in wants), cls)
                self.assertEqual(got["protocols"][cls]["bytes"],
                                 sum(w["protocols"][cls]["bytes"] for w in wants), cls)
            self.assertEqual(got["loss"]["files_skipped"], 0)
            # The capfiles' records name their point (the generator's
            # defaults); the pcap's packets name none.
            caps = wants[:3]
            self.assertEqual(got["points"], [{
                "mp": "mp-1", "ci": "eth0", "packets": sum(w["packets"] for w in caps),
                "bytes": sum(w["bytes"] for w in caps)}])
            self.assertEqual(got["points_unnamed"], {"packets": wants[3]["packets"],
                                                     "bytes": wants[3]["bytes"]})
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_directory_capfile_cut_short_is_counted(self):
        spool = self.path("spool")
        os.mkdir(spool)
        cap = self.path("demo.cap")
        gen(DEMO, cap)
        with open(cap, "rb") as f:
            blob = f.read()
        with open(os.path.join(spool, "trace1"), "wb") as f:
            f.write(blob[:-7])  # the last record cut
        with open(os.path.join(spool, "trace2"), "wb") as f:
            f.write(blob)
        want = h.tshark_expect(DEMO)["packets"]
        bus = h.Bus([("d", "dir:" + spool)])
        try:
            bus.start("d")
            h.wait_for(lambda: bus.stats("d")["packets"] == 2 * want - 1, 60,
                       "every whole record")
            h.wait_for(lambda: bus.stats("d")["loss"]["files_skipped"] == 1, 30,
                       "the file cut short to be counted")
            self.assertIn("trace1: cut short", bus.probe_view("d")["detail"])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_directory_capfile_growing_in_pieces(self):
        # Written as capdump would while the probe reads: the header arrives
        # in two pieces, records are cut across writes; then a second file.
        src = self.path("gen.pcap")
        subprocess.run([os.path.join(h.BIN, "tb-gen-pcap"), "-o", src, "--packets", "3000",
                        "--flows", "50"], check=True, capture_output=True)
        cap = self.path("gen.cap")
        gen(src, cap, "--ci", "eth0,eth1")
        with open(cap, "rb") as f:
            blob = f.read()
        spool = self.path("spool")
        os.mkdir(spool)
        want = h.tshark_expect(src)
        bus = h.Bus([("d", "dir:" + spool)])
        try:
            bus.start("d")
            with open(os.path.join(spool, "trace"), "wb") as f:
                pieces = [blob[:100]] + [blob[off:off + 997] for off in range(100, len(blob), 997)]
                for i, piece in enumerate(pieces):
                    f.write(piece)
                    f.flush()
                    if i in (0, len(pieces) // 2):
                        # The probe has seen the file this far before it grows.
                        size = 100 if i == 0 else sum(len(p) for p in pieces[:i + 1])
                        h.wait_for(lambda: "trace" in bus.probe_view("d").get("detail", ""),
                                   30, "the probe to look at the file (%d bytes)" % size)
            h.wait_for(lambda: bus.stats("d")["packets"] == want["packets"], 60,
                       "every record of the grown file")
            with open(os.path.join(spool, "trace1"), "wb") as f:
                f.write(blob)
            h.wait_for(lambda: bus.stats("d")["packets"] == 2 * want["packets"], 60,
                       "every record of both files")
            got = bus.stats("d")
            self.assertEqual(got["bytes"], 2 * want["bytes"])
            self.assertEqual(got["loss"]["files_skipped"], 0)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)


if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    unittest.main(verbosity=2)
