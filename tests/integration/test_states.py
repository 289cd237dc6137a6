#!/usr/bin/env python3
"""Failures are states, and streams are discovered: a file source that cannot
be read puts its stream in state `error` with the reason in status, stats,
their JSON, the HTTP gateway and the `tapbus_stream` point of a real influxd;
probes announce the streams they offer and `tapbusctl streams` (and /streams)
lists them with their kind and who measures them, across two collectors; a
stream started before any probe offers it warns, waits, and runs once a probe
offering it appears."""

import os
import shutil
import signal
import tempfile
import unittest

import tapbus_harness as h
from test_gateway import Gateway, curl

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "data", "demo.pcap")
DB = "tapbus"
OK = "ops:pa:ss w0rd"


def status_streams(control):
    return {s["stream"]: s for s in h.ctl_json(control, "status")["streams"]}


def wait_state(control, stream, state, timeout=60):
    h.wait_for(lambda: status_streams(control).get(stream, {}).get("state") == state, timeout,
               "stream %s to be %s" % (stream, state), interval=0.1)


class UnreadableSources(unittest.TestCase):
    def test_unreadable_files_are_errors_everywhere(self):
        with tempfile.TemporaryDirectory() as tmp, h.Influx() as ix:
            with open(DEMO, "rb") as f:
                data = f.read()
            junk = os.path.join(tmp, "junk.pcap")
            with open(junk, "wb") as f:
                f.write(b"this is not a capture file at all\n" * 10)
            head = os.path.join(tmp, "head.pcap")  # cut inside the file header
            with open(head, "wb") as f:
                f.write(data[:10])
            first = os.path.join(tmp, "first.pcap")  # cut inside the first packet
            with open(first, "wb") as f:
                f.write(data[:24 + 16 + 5])
            missing = os.path.join(tmp, "missing.pcap")
            bad = {"missing": missing, "junk": junk, "head": head, "first": first}
            sources = [(s, "file:" + p) for s, p in bad.items()] + [("good", "file:" + DEMO)]
            bus = h.Bus(sources, collector_args=[
                "--influx-url", ix.url, "--influx-db", DB, "--influx-create-db",
                "--batch-ms", "200"])
            gw = Gateway(bus.control, bus.tmp.name)
            try:
                bus.start(*[s for s, _ in sources])
                bus.wait_finished([s for s, _ in sources])
                st = status_streams(bus.control)
                self.assertEqual(st["good"]["state"], "finished")
                self.assertEqual(st["good"]["reason"], "")
                for stream, path in bad.items():
                    self.assertEqual(st[stream]["state"], "error", st[stream])
                    self.assertIn("probe it-probe: ", st[stream]["reason"])
                    self.assertIn(os.path.basename(path), st[stream]["reason"])
                    stats = bus.stats(stream)
                    self.assertEqual((stats["state"], stats["reason"]),
                                     ("error", st[stream]["reason"]))
                    _, text, _ = h.ctl(bus.control, "stats", stream)
                    self.assertIn("a (error)".replace("a", stream), text)
                    self.assertIn("reason         " + st[stream]["reason"], text)
                    code, body = curl(gw.base + "/stats?stream=" + stream, OK)
                    self.assertEqual((code, body["state"], body["reason"]),
                                     (200, "error", st[stream]["reason"]))
                self.assertIn("No such file", st["missing"]["reason"])
                _, text, _ = h.ctl(bus.control, "status")
                for stream in bad:
                    self.assertRegex(text, r"\n%s +error +0 +0 +0 .*  probe it-probe: " % stream)
                self.assertIn("REASON", text)
                code, body = curl(gw.base + "/status", OK)
                self.assertEqual(code, 200)
                gws = {s["stream"]: s for s in body["streams"]}
                for stream in bad:
                    self.assertEqual((gws[stream]["state"], gws[stream]["reason"]),
                                     ("error", st[stream]["reason"]))

                # The database: the measurement's end, state tag error, reason.
                def stored():
                    rows = ix.points(DB, "SELECT * FROM tapbus_stream")
                    return rows if len(rows) == len(sources) else None
                rows = {r["stream"]: r for r in h.wait_for(stored, 60, "tapbus_stream points")}
                self.assertEqual(rows["good"]["state"], "finished")
                self.assertIsNone(rows["good"].get("reason"))
                for stream in bad:
                    self.assertEqual(rows[stream]["state"], "error")
                    self.assertEqual(rows[stream]["reason"], st[stream]["reason"])
                    self.assertEqual(rows[stream]["packets"], 0)
            finally:
                gw_code = gw.proc.stop()
                codes, logs = bus.close()
            self.assertEqual(codes, (0, 0), logs[-3000:])
            self.assertEqual(gw_code, 0)

    def test_a_cut_file_with_packets_finishes_with_its_reason(self):
        """Packets came before the source failed: the stream finished (its
        data is good), and the reason says what went wrong."""
        with tempfile.TemporaryDirectory() as tmp:
            with open(DEMO, "rb") as f:
                data = f.read()
            cut = os.path.join(tmp, "cut.pcap")
            with open(cut, "wb") as f:
                f.write(data[:len(data) - 7])
            bus = h.Bus([("cut", "file:" + cut)])
            try:
                bus.start("cut")
                bus.wait_finished(["cut"])
                stats = bus.stats("cut")
                self.assertEqual(stats["state"], "finished")
                self.assertGreater(stats["packets"], 0)
                self.assertIn("probe it-probe: ", stats["reason"])
            finally:
                codes, logs = bus.close()
            self.assertEqual(codes, (0, 0), logs[-3000:])


class Discovery(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tapbus-it-")
        self.procs = []

    def tearDown(self):
        bad = []
        for p in reversed(self.procs):
            code = p.stop()
            if code != 0 and not getattr(p, "killed", False):
                bad.append("%s exited %s:\n%s" % (p.name, code, p.output()[-2000:]))
        self.tmp.cleanup()
        self.assertEqual(bad, [])

    def proc(self, name, args):
        p = h.Proc(name, args, self.tmp.name)
        self.procs.append(p)
        return p

    def collector(self, *probes):
        control = h.endpoint()
        args = ["--control", control]
        for p in probes:
            args += ["--probe", p]
        self.proc("tapbus-collector", args)
        h.wait_for(lambda: h.ctl(control, "status", timeout_ms=500, check=False)[0] == 0, 30,
                   "the collector to answer")
        return control

    def offered(self, control):
        return {(e["stream"], e["probe"]): e
                for e in h.ctl_json(control, "streams")["streams"]}

    def test_two_probes_two_collectors(self):
        spool = os.path.join(self.tmp.name, "spool")
        os.mkdir(spool)
        pub1, pub2 = h.endpoint(), h.endpoint()
        self.proc("tapbus-probe", ["--id", "p1", "--publish", pub1,
                                   "--source", "a=file:" + DEMO, "--source", "d=dir:" + spool])
        self.proc("tapbus-probe", ["--id", "p2", "--publish", pub2,
                                   "--source", "b=file:" + DEMO, "--source", "e=iface:lo"])
        c1 = self.collector(pub1, pub2)
        c2 = self.collector(pub1, pub2)
        want = {("a", "p1"): "file", ("d", "p1"): "dir", ("b", "p2"): "file",
                ("e", "p2"): "iface"}
        for c in (c1, c2):
            h.wait_for(lambda: set(self.offered(c)) == set(want), 30, "both probes' offers")
            got = self.offered(c)
            self.assertEqual({k: e["kind"] for k, e in got.items()}, want)
            self.assertTrue(all(e["measured_by"] == [] for e in got.values()))
            self.assertTrue(all(e["source_state"] == "waiting" for e in got.values()))
        self.assertEqual(h.ctl_json(c1, "start", "a")["warnings"], [])
        self.assertEqual(h.ctl_json(c2, "start", "b")["warnings"], [])
        h.wait_for(lambda: status_streams(c1).get("a", {}).get("state") == "finished", 60,
                   "a to finish")
        h.wait_for(lambda: status_streams(c2).get("b", {}).get("state") == "finished", 60,
                   "b to finish")

        both = c1 + "," + c2
        got = self.offered(both)
        self.assertEqual(set(got), set(want))
        self.assertEqual(got[("a", "p1")]["measured_by"], [{"collector": c1, "state": "finished"}])
        self.assertEqual(got[("b", "p2")]["measured_by"], [{"collector": c2, "state": "finished"}])
        self.assertEqual(got[("d", "p1")]["measured_by"], [])
        h.wait_for(lambda: all(self.offered(both)[k]["source_state"] == "finished"
                               for k in (("a", "p1"), ("b", "p2"))), 30,
                   "the probes to offer a and b as finished")

        _, text, _ = h.ctl(both, "streams")
        self.assertRegex(text, r"\na +p1 +file +finished +%s \(finished\)\n" % c1)
        self.assertRegex(text, r"\nb +p2 +file +finished +%s \(finished\)\n" % c2)
        self.assertRegex(text, r"\nd +p1 +dir +waiting +-\n")
        self.assertRegex(text, r"\ne +p2 +iface +waiting +-\n")
        self.assertIn("collector %s: 2 probes (at most 64), 4 offered streams" % c1, text)

        gw = Gateway([c1, c2], self.tmp.name)
        try:
            code, body = curl(gw.base + "/streams", OK)
        finally:
            self.assertEqual(gw.proc.stop(), 0, gw.proc.output())
        self.assertEqual(code, 200)
        gws = {(e["stream"], e["probe"]): e for e in body["streams"]}
        self.assertEqual({k: e["kind"] for k, e in gws.items()}, want)
        self.assertEqual(gws[("b", "p2")]["measured_by"][0]["collector"], c2)
        self.assertEqual([c["endpoint"] for c in body["collectors"]], [c1, c2])

    def test_start_before_any_probe_offers(self):
        spool = os.path.join(self.tmp.name, "spool")
        os.mkdir(spool)
        pub = h.endpoint()
        control = self.collector(pub)
        code, out, err = h.ctl(control, "start", "late")
        self.assertEqual(code, 0)
        self.assertEqual(out, "started: late\n")
        self.assertIn("warning: no probe offers 'late'", err)
        self.assertEqual(h.ctl_json(control, "start", "late")["warnings"],
                         ["no probe offers 'late' (yet): it shows as waiting until a probe "
                          "sends it"])
        gw = Gateway(control, self.tmp.name)
        try:
            code, body = curl(gw.base + "/start?stream=late2", OK)
            self.assertEqual(code, 200)
            self.assertEqual(body["started"], ["late2"])
            self.assertIn("no probe offers 'late2'", body["warnings"][0])
        finally:
            self.assertEqual(gw.proc.stop(), 0, gw.proc.output())
        st = status_streams(control)
        self.assertEqual(st["late"]["state"], "waiting")
        self.assertEqual(st["late"]["reason"], "no probe offers this stream (yet)")
        self.assertEqual(h.ctl_json(control, "stats", "late")["state"], "waiting")
        _, text, _ = h.ctl(control, "status")
        self.assertRegex(text, r"\nlate +waiting +0 +0 +0 .*no probe offers this stream")
        got = self.offered(control)
        self.assertEqual(got[("late", None)]["measured_by"][0]["state"], "waiting")

        # The probe comes: the stream runs, the offer is listed.
        shutil.copy(DEMO, os.path.join(spool, "trace0.pcap"))
        self.proc("tapbus-probe", ["--id", "pl", "--publish", pub, "--source", "late=dir:" + spool])
        wait_state(control, "late", "running")
        h.wait_for(lambda: status_streams(control)["late"]["packets"] == 5000, 60,
                   "the directory's packets")
        self.assertEqual(status_streams(control)["late"]["reason"], "")
        got = self.offered(control)
        self.assertEqual(got[("late", "pl")]["kind"], "dir")
        self.assertEqual(got[("late", "pl")]["measured_by"],
                         [{"collector": control, "state": "running"}])
        self.assertNotIn(("late", None), got)
        # A second start of a stream that is offered now: no warning.
        self.assertEqual(h.ctl_json(control, "start", "late")["warnings"], [])

        # A probe that goes away is forgotten once its offer expires.
        self.procs[-1].killed = True
        self.procs[-1].stop(signal.SIGKILL)
        h.wait_for(lambda: ("late", "pl") not in self.offered(control), 30,
                   "the probe's offer to expire")
        self.assertGreaterEqual(
            h.ctl_json(control, "status")["collector"]["offers"]["expired"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
