#!/usr/bin/env python3
"""Badly framed control requests sent to a real collector from a raw DEALER
socket (tb-ctl-raw): what REQ sends (an empty delimiter, then one frame) is
answered, behind whatever routing frames came first; several frames are
answered as malformed; a message without the delimiter, too many routing
frames or an oversized frame are dropped without an answer. The collector
keeps answering and ends cleanly (the suite runs this under ASan+UBSan too)."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402
from test_replies import mp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "data", "demo.pcap")
STATUS = mp({"v": 1, "cmd": "status"}).hex()


class BadlyFramedRequests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bus = h.Bus([("demo", "file:" + DEMO)])

    @classmethod
    def tearDownClass(cls):
        codes, logs = cls.bus.close()
        assert codes[1] == 0, (codes, logs[-2000:])
        assert "Sanitizer" not in logs and "runtime error" not in logs

    def raw(self, *frames, wait_ms=2000):
        """The reply's frames, as bytes ([] when none came)."""
        r = subprocess.run([os.path.join(h.BIN, "tb-ctl-raw"), self.bus.control, str(wait_ms)]
                           + list(frames), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[-1], "frames %d" % (len(lines) - 1), r.stdout)
        out = []
        for ln in lines[:-1]:
            size, _, data = ln.partition(" ")
            out.append(bytes.fromhex(data))
            self.assertEqual(len(out[-1]), int(size))
        return out

    def assertAnswers(self):
        code, _, err = h.ctl(self.bus.control, "status", check=False)
        self.assertEqual(code, 0, err)

    def test_as_req_sends_it(self):
        reply = self.raw("", STATUS)
        self.assertEqual(len(reply), 2, reply)
        self.assertEqual(reply[0], b"")
        self.assertIn(b"\xa6status\xa2ok", reply[1])
        self.assertIn(b"collector", reply[1])

    def test_routing_frames_come_back(self):
        reply = self.raw("aa01", "bb02", "", STATUS)
        self.assertEqual(reply[:3], [b"\xaa\x01", b"\xbb\x02", b""], reply)
        self.assertIn(b"\xa2ok", reply[3])

    def test_malformed_bodies_get_an_error(self):
        for frames in (["", "00676172626167"], ["", STATUS, "00"], ["", STATUS, STATUS], [""],
                       ["", ""], ["", mp({"v": 1, "cmd": "reboot"}).hex()]):
            reply = self.raw(*frames)
            self.assertEqual(len(reply), 2, (frames, reply))
            self.assertIn(b"\xa5error", reply[1], frames)
        self.assertAnswers()

    def counters(self):
        return h.ctl_json(self.bus.control, "status")["collector"]["requests"]

    def test_malformed_and_dropped_are_counted(self):
        before = self.counters()
        self.raw("", "00")
        self.raw(STATUS, wait_ms=300)
        after = self.counters()
        self.assertEqual(after["malformed"] - before["malformed"], 1, (before, after))
        self.assertEqual(after["dropped"] - before["dropped"], 1, (before, after))
        # the two above and the first status request
        self.assertEqual(after["received"] - before["received"], 3, (before, after))
        code, out, _ = h.ctl(self.bus.control, "status")
        self.assertIn("requests   %d received, %d malformed, %d dropped" % (
            after["received"] + 1, after["malformed"], after["dropped"]), out)

    def test_unanswerable_messages_are_dropped(self):
        too_many = ["ab"] * 20 + ["", STATUS]
        big = "zeros:%d" % (1024 * 1024 + 16)
        for frames in ([STATUS], ["01", "02"], too_many):
            before = self.counters()["dropped"]
            self.assertEqual(self.raw(*frames, wait_ms=500), [], frames[:3])
            self.assertEqual(self.counters()["dropped"], before + 1, frames[:3])
        # Over the size limit: the connection is closed before a message exists.
        self.assertEqual(self.raw("", big, wait_ms=500), [])
        self.assertAnswers()


if __name__ == "__main__":
    if not h.BIN or not h.CORPUS:
        sys.exit("set TAPBUS_BIN and TAPBUS_CORPUS")
    unittest.main(verbosity=2)
