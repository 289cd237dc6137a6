#!/usr/bin/env python3
"""tapbusctl forget: streams that ended, failed or never got anything are
dropped from the collector (their slot, statistics and sink state); a stream
a probe is sending is refused. A real probe and collector on loopback; the
collector writes to a stand-in database (HttpCapture) so that the database
sink's per-stream state is released too (under ASan in the sanitizer
build)."""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402


def stream_points(capture, stream):
    """The tapbus_stream lines the database got for a stream."""
    lines = []
    for r in capture.requests:
        for line in (r.body_text or "").splitlines():
            if line.startswith("tapbus_stream,stream=%s," % stream):
                lines.append(line)
    return lines


class Forget(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tapbus-forget-")
        # A directory source runs on after reading what is there: a stream
        # that is receiving data and never finishes by itself.
        cls.dir = os.path.join(cls.tmp.name, "live")
        os.mkdir(cls.dir)
        shutil.copy(h.corpus_file("babel.pcap"), cls.dir)
        cls.db = h.HttpCapture()
        cls.bus = h.Bus([("live", "dir:" + cls.dir),
                         ("f", "file:" + h.corpus_file("babel.pcap")),
                         ("g", "file:" + h.corpus_file("pim-packet-assortment.pcap")),
                         ("bad", "file:" + os.path.join(cls.tmp.name, "missing.pcap"))],
                        collector_args=["--max-streams", "3", "--influx-url", cls.db.url,
                                        "--batch-ms", "100"])

    @classmethod
    def tearDownClass(cls):
        codes, logs = cls.bus.close()
        cls.db.close()
        cls.tmp.cleanup()
        if codes != (0, 0):
            raise AssertionError("exit codes %s\n%s" % (codes, logs))

    def streams(self):
        return {s["stream"]: s for s in h.ctl_json(self.bus.control, "status")["streams"]}

    def tearDown(self):
        # Every test leaves an empty collector behind.
        names = list(self.streams())
        if names:
            h.ctl(self.bus.control, "stop", *names)
            h.ctl(self.bus.control, "forget", *names)

    def test_refused_while_running_then_forgotten_after_stop(self):
        c = self.bus.control
        self.bus.start("live")
        h.wait_for(lambda: self.streams()["live"]["packets"] == 25, 30, "live to get its packets")
        code, out, err = h.ctl(c, "forget", "live", check=False)
        self.assertEqual(code, 1, (out, err))
        self.assertIn("stream 'live' is running (probe it-probe sends it): stop it first", err)
        code, out, _ = h.ctl(c, "--json", "forget", "live", check=False)
        self.assertEqual(code, 1)
        self.assertEqual(json.loads(out)["status"], "error")
        self.assertIn("stop it first", json.loads(out)["error"])
        self.assertEqual(self.streams()["live"]["state"], "running")

        self.assertEqual(h.ctl_json(c, "stop", "live"), {"stopped": ["live"]})
        # The end went to the database before the stream was forgotten.
        h.wait_for(lambda: stream_points(self.db, "live"), 20, "the stopped stream's point")
        self.assertIn("state=stopped", stream_points(self.db, "live")[0])
        self.assertEqual(h.ctl_json(c, "forget", "live"), {"forgotten": ["live"]})
        self.assertNotIn("live", self.streams())
        code, _, err = h.ctl(c, "stats", "live", check=False)
        self.assertEqual(code, 1)
        self.assertIn("unknown stream 'live'", err)
        # Started again, it starts from nothing (the directory source goes on
        # from its checkpoint: nothing new to read).
        self.bus.start("live")
        h.wait_for(lambda: self.streams()["live"]["probes"], 30, "the probe to be heard again")
        self.assertEqual((self.bus.stats("live")["packets"], self.streams()["live"]["state"]),
                         (0, "running"))

    def test_finished_and_failed_streams(self):
        c = self.bus.control
        self.bus.start("f", "bad")
        self.bus.wait_finished(["f", "bad"])
        self.assertEqual(self.bus.probe_view("bad")["source_state"], "error")
        _, out, _ = h.ctl(c, "forget", "f", "bad")
        self.assertEqual(out, "forgotten: f bad\n")
        self.assertEqual(self.streams(), {})

    def test_a_typo_that_never_got_data(self):
        c = self.bus.control
        self.bus.start("tpyo")
        st = self.streams()["tpyo"]
        self.assertEqual(st["probes"], [])
        self.assertEqual(h.ctl_json(c, "--json", "forget", "tpyo"), {"forgotten": ["tpyo"]})
        self.assertEqual(self.streams(), {})
        # Unsubscribed: the probe is asked for nothing any more, and the
        # database heard that the measurement ended.
        h.wait_for(lambda: stream_points(self.db, "tpyo"), 20, "the typo's end point")
        self.assertIn("state=stopped", stream_points(self.db, "tpyo")[0])

    def test_unknown_names_and_all_or_nothing(self):
        c = self.bus.control
        code, out, err = h.ctl(c, "forget", "nope", check=False)
        self.assertEqual((code, out), (1, ""))
        self.assertIn("unknown stream 'nope'", err)
        self.bus.start("f")
        self.bus.wait_finished(["f"])
        self.bus.start("typo")
        code, _, err = h.ctl(c, "forget", "f", "typo", "nope", check=False)
        self.assertEqual(code, 1)
        self.assertIn("unknown stream 'nope'", err)
        self.assertEqual(sorted(self.streams()), ["f", "typo"])  # nothing forgotten
        self.assertEqual(h.ctl_json(c, "forget", "typo", "f"), {"forgotten": ["typo", "f"]})
        self.assertEqual(self.streams(), {})
        # Usage: at least one name.
        code, _, err = h.ctl(c, "forget", check=False)
        self.assertEqual(code, 2)
        self.assertIn("forget needs at least one stream", err)

    def test_forget_frees_the_slot(self):
        # --max-streams 3: three typos hold every slot; forgetting one makes
        # room for a stream that does exist.
        c = self.bus.control
        self.bus.start("t1", "t2", "t3")
        code, _, err = h.ctl(c, "start", "g", check=False)
        self.assertEqual(code, 1)
        self.assertIn("0 slot(s) free of 3", err)
        h.ctl(c, "forget", "t2")
        self.bus.start("g")
        self.bus.wait_finished(["g"])
        want = h.tshark_expect(h.corpus_file("pim-packet-assortment.pcap"))
        self.assertEqual(self.bus.stats("g")["packets"], want["packets"])
        self.assertEqual(sorted(self.streams()), ["g", "t1", "t3"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
