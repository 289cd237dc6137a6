#!/usr/bin/env python3
"""tapbusctl in front of several collectors: one probe, two collectors on a
real ZeroMQ bus over loopback, a third endpoint where nothing answers.
Streams are placed, found, stopped and listed across the collectors, and
the answers merged; a collector that does not answer gives a partial
answer and exit code 3, never a stream started twice."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

CAPTURES = {"s1": "babel.pcap", "s2": "pim-packet-assortment.pcap",
            "s3": "dhcp-rfc4388.pcap", "s4": "ospf-gmpls.pcap", "s5": "quic_vn.pcap",
            "01::10:01": "babel_rtt.pcap",
            "s6": "bgp-as-path-oobr.pcap", "s7": "babel.pcap"}


def run(collectors, *args, timeout_ms=5000, env=None):
    """tapbusctl with --collector for each of collectors; (code, out, err)."""
    cmd = [os.path.join(h.BIN, "tapbusctl"), "--timeout", str(timeout_ms)]
    for c in collectors:
        cmd += ["--collector", c]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                       env=env)
    return r.returncode, r.stdout, r.stderr


def run_json(collectors, *args, code=0):
    got, out, err = run(collectors, "--json", *args)
    if got != code:
        raise AssertionError("tapbusctl %s: exit %d, want %d: %s" % (args, got, code, err))
    return json.loads(out)


class SeveralCollectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sources = [(s, "file:" + h.corpus_file(f)) for s, f in CAPTURES.items()]
        cls.bus = h.Bus(sources)
        cls.a = cls.bus.control
        cls.b = cls.bus.add_collector()
        cls.both = [cls.a, cls.b]
        cls.silent = h.endpoint()  # nothing listens there
        cls.want = {s: h.tshark_expect(h.corpus_file(f)) for s, f in CAPTURES.items()}

    @classmethod
    def tearDownClass(cls):
        codes, logs = cls.bus.close()
        if codes != (0, 0):
            raise AssertionError(logs)

    def wait_finished(self, streams):
        def done():
            st = run_json(self.both, "status")
            states = {s["stream"]: s["state"] for s in st["streams"]}
            return all(states.get(s) == "finished" for s in streams)
        h.wait_for(done, 120, "streams to finish", interval=0.1)

    def owners(self):
        return {s["stream"]: s["collector"] for s in run_json(self.both, "status")["streams"]}

    def test_1_start_places_stats_finds_stop_routes(self):
        started = run_json(self.both, "start", "s1", "s2", "s3", "01::10:01")
        self.assertEqual(sorted(started["started"]), ["01::10:01", "s1", "s2", "s3"])
        where = started["collector_of"]
        # The fewest running streams first: two on each.
        self.assertEqual(sorted(list(where.values()).count(c) for c in self.both), [2, 2])
        self.assertEqual([(c["endpoint"], c["ok"], c["error"]) for c in started["collectors"]],
                         [(self.a, True, None), (self.b, True, None)])
        self.wait_finished(["s1", "s2", "s3", "01::10:01"])

        # Each collector measures only its own streams, completely.
        for c in self.both:
            own = sorted(s["stream"] for s in h.ctl_json(c, "status")["streams"])
            self.assertEqual(own, sorted(s for s, w in where.items() if w == c))
        status = run_json(self.both, "status")
        self.assertEqual(self.owners(), where)
        self.assertEqual([c["endpoint"] for c in status["collectors"]], self.both)
        for c in status["collectors"]:
            self.assertTrue(c["ok"])
            self.assertIn("version", c["collector"])
            self.assertIn("max_streams", c["limits"])
        for s in status["streams"]:
            self.assertEqual(s["packets"], self.want[s["stream"]]["packets"], s["stream"])

        for s in ("s1", "s2", "s3", "01::10:01"):
            got = run_json(self.both, "stats", s)
            self.assertEqual(got["collector"], where[s])
            for key in ("packets", "bytes", "min_len", "max_len", "first_ts", "last_ts"):
                self.assertEqual(got[key], self.want[s][key], (s, key))
        code, out, err = run(self.both, "stats", "nope")
        self.assertEqual(code, 1)
        self.assertIn("unknown stream 'nope'", err)

        # Human tables: both collectors, and where each stream lives.
        code, out, _ = run(self.both, "status")
        self.assertEqual(code, 0)
        self.assertIn("collector  %s: version" % self.a, out)
        self.assertIn("collector  %s: version" % self.b, out)
        self.assertRegex(out, r"\ns1 +finished .*  %s\n" % where["s1"])
        code, out, _ = run(self.both, "stats", "s2")
        self.assertIn("collector      %s\n" % where["s2"], out)

        # probes: one probe, heard by both collectors, all four streams.
        probes = run_json(self.both, "probes")
        self.assertEqual(len(probes["probes"]), 1)
        p = probes["probes"][0]
        self.assertEqual(p["id"], "it-probe")
        self.assertEqual(sorted(p["streams"]), ["01::10:01", "s1", "s2", "s3"])
        self.assertEqual(sorted(p["collectors"]), sorted(self.both))
        self.assertEqual(p["received"], sum(self.want[s]["packets"]
                                            for s in ("s1", "s2", "s3", "01::10:01")))

        # A stream a collector holds starts again there, a new one goes to
        # the collector with fewer running streams.
        run_json(self.both, "stop", "s1")
        again = run_json(self.both, "start", "s1", "s4")
        self.assertEqual(again["collector_of"]["s1"], where["s1"])
        self.wait_finished(["s1", "s4"])
        self.assertEqual(run_json(self.both, "stats", "s1")["packets"],
                         self.want["s1"]["packets"])
        where["s4"] = again["collector_of"]["s4"]

        # stop: each stream on its collector; an unknown one stops nothing.
        code, out, err = run(self.both, "stop", "s2", "nope")
        self.assertEqual(code, 1)
        self.assertIn("unknown stream 'nope'", err)
        self.assertEqual(run_json(self.both, "stats", "s2")["state"], "finished")
        stopped = run_json(self.both, "stop", "s2", "s3")
        self.assertEqual(sorted(stopped["stopped"]), ["s2", "s3"])
        self.assertEqual(stopped["collector_of"], {"s2": where["s2"], "s3": where["s3"]})
        code, out, _ = run(self.both, "stop", "s1")
        self.assertEqual(out, "stopped: s1 (%s)\n" % where["s1"])
        everything = run_json(self.both, "stop")
        self.assertEqual(sorted(everything["stopped"]), ["01::10:01", "s4"])
        states = {s["stream"]: s["state"] for s in run_json(self.both, "status")["streams"]}
        self.assertEqual(set(states.values()), {"stopped"})
        self.assertEqual(self.owners(), where)

        # top with several collectors: the owner's view (one-shot, no tty).
        code, out, _ = run(self.both, "top", "s2")
        self.assertEqual(code, 0)
        self.assertIn("s2", out.splitlines()[0])

    def test_2_a_silent_collector(self):
        run_json(self.both, "start", "s5")
        self.wait_finished(["s5"])
        three = self.both + [self.silent]
        # status: the others' answer, the silent one named, exit 3.
        code, out, err = run(three, "--json", "status", timeout_ms=1500)
        self.assertEqual(code, 3)
        self.assertIn("no reply from collector at %s" % self.silent, err)
        doc = json.loads(out)
        self.assertIn("s5", [s["stream"] for s in doc["streams"]])
        self.assertEqual([(c["endpoint"], c["ok"]) for c in doc["collectors"]],
                         [(self.a, True), (self.b, True), (self.silent, False)])
        code, out, _ = run(three, "status", timeout_ms=1500)
        self.assertEqual(code, 3)
        self.assertIn("collector  %s: NOT ANSWERING (no reply" % self.silent, out)
        # stats: found on a collector that answers: fine.
        code, out, _ = run(three, "--json", "stats", "s5", timeout_ms=1500)
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["packets"], self.want["s5"]["packets"])
        code, _, err = run(three, "stats", "nope", timeout_ms=1500)
        self.assertEqual(code, 3)
        self.assertIn("no reply from collector at %s" % self.silent, err)
        # start: a stream known to an answering collector starts there; a
        # new one cannot be placed (it may live on the silent one).
        code, out, err = run(three, "--json", "start", "s5", timeout_ms=1500)
        self.assertEqual(code, 0, err)
        code, out, err = run(three, "start", "newstream", timeout_ms=1500)
        self.assertEqual(code, 3)
        self.assertIn("cannot tell where 'newstream' lives", err)
        self.assertNotIn("newstream", self.owners())
        # stop of every stream: the others stop, the silent one is named.
        self.wait_finished(["s5"])
        code, out, err = run(three, "--json", "stop", timeout_ms=1500)
        self.assertEqual(code, 3)
        self.assertIn("s5", json.loads(out)["stopped"])

    def test_4_a_name_given_twice_starts_once(self):
        got = run_json(self.both, "start", "s6", "s6")
        self.assertEqual(got["started"], ["s6"])
        self.assertEqual(len(got["collector_of"]), 1)
        self.wait_finished(["s6"])
        self.assertEqual(list(self.owners()).count("s6"), 1)
        stopped = run_json(self.both, "stop", "s6", "s6")
        self.assertEqual(stopped["stopped"], ["s6"])
        # One collector: once too.
        self.assertEqual(h.ctl_json(self.a, "start", "s7", "s7")["started"], ["s7"])

    def test_3_configuration_lists_and_the_command_line_wins(self):
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "ctl.conf")
            with open(conf, "w") as f:
                f.write("collector = %s, %s\n" % (self.a, self.b))
            env = dict(os.environ, TAPBUSCTL_CONFIG=conf)
            code, out, _ = run([], "--json", "status", env=env)
            self.assertEqual(code, 0)
            self.assertEqual([c["endpoint"] for c in json.loads(out)["collectors"]], self.both)
            code, out, _ = run([], "--print-config", env=env)
            self.assertIn('collector = "%s, %s"' % (self.a, self.b), out)
            # One on the command line replaces the file's list: plain answer.
            code, out, _ = run([self.b], "--json", "status", env=env)
            self.assertEqual(code, 0)
            self.assertNotIn("collectors", json.loads(out))
            # A list in $TAPBUS_COLLECTOR, duplicates once.
            env = dict(os.environ, TAPBUS_COLLECTOR="%s,%s %s" % (self.a, self.b, self.a))
            code, out, _ = run([], "--json", "status", env=env)
            self.assertEqual([c["endpoint"] for c in json.loads(out)["collectors"]], self.both)
        # A malformed endpoint among them: usage error, nothing sent.
        code, _, err = run([self.a, "bogus"], "stop")
        self.assertEqual(code, 2)
        self.assertIn("invalid collector endpoint bogus", err)

    def test_5_forget_goes_to_the_holders(self):
        started = run_json(self.both, "start", "typo_a", "typo_b")
        where = started["collector_of"]
        self.assertEqual(set(where.values()), {self.a, self.b})  # one on each
        # An unknown name: refused before anything is forgotten.
        code, _, err = run(self.both, "forget", "typo_a", "typo_b", "nope")
        self.assertEqual(code, 1)
        self.assertIn("unknown stream 'nope'", err)
        self.assertEqual({k: v for k, v in self.owners().items() if k in where}, where)
        got = run_json(self.both, "forget", "typo_a", "typo_b")
        self.assertEqual(sorted(got["forgotten"]), ["typo_a", "typo_b"])
        self.assertEqual(got["collector_of"], where)
        self.assertFalse(set(where) & set(self.owners()))
        # Ended streams, each on its own collector; the human answer names it.
        owners = self.owners()
        code, out, err = run(self.both, "forget", "s1", "01::10:01")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "forgotten: s1 (%s) 01::10:01 (%s)\n" %
                         (owners["s1"], owners["01::10:01"]))
        # A silent collector: a name held by one that answers is forgotten
        # there; one nobody answering holds cannot be placed, nothing is done.
        three = self.both + [self.silent]
        code, out, err = run(three, "--json", "forget", "s2", timeout_ms=1500)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["forgotten"], ["s2"])
        code, _, err = run(three, "forget", "s3", "ghost", timeout_ms=1500)
        self.assertEqual(code, 3)
        self.assertIn("cannot tell where 'ghost' lives", err)
        self.assertIn("nothing forgotten", err)
        self.assertIn("s3", self.owners())


if __name__ == "__main__":
    if not h.BIN or not h.CORPUS:
        sys.exit("set TAPBUS_BIN and TAPBUS_CORPUS")
    unittest.main(verbosity=2)
