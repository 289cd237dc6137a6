#!/usr/bin/env python3
"""Runs of a file source under the operator's and the network's hands: restart
a stream mid-replay, start it again when finished, a second collector, a probe
killed or stopped mid-replay. Each must end with the exact packet count of the
file, never a mix of two runs and never a stream stuck in "running"."""

import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

PACKETS = 60000
# Small batches and a one-message queue make a replay slow enough (seconds)
# to act on it midway, without a large file.
SLOW = ["--batch", "20", "--hwm", "1"]


class Runs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tapbus-runs-")
        cls.pcap = os.path.join(cls.tmp.name, "runs.pcap")
        subprocess.run([os.path.join(h.BIN, "tb-gen-pcap"), "-o", cls.pcap, "--packets",
                        str(PACKETS), "--flows", "300"], check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def midway(self, control, stream="r"):
        """Wait until a replay is under way but not finished."""
        def under_way():
            s = h.ctl_json(control, "stats", stream)
            return s["state"] == "running" and 0 < s["packets"] < PACKETS
        h.wait_for(under_way, 60, "the replay to be under way", interval=0.01)

    def exact(self, control, stream="r", gaps=0):
        s = h.ctl_json(control, "stats", stream)
        self.assertEqual(s["state"], "finished")
        self.assertEqual(s["packets"], PACKETS)
        self.assertEqual(s["loss"]["lost_packets"], 0)
        if gaps is not None:
            self.assertEqual(s["loss"]["seq_gaps"], gaps)
        return s

    def test_restart_mid_replay_counts_one_run(self):
        bus = h.Bus([("r", "file:" + self.pcap)], probe_args=SLOW)
        try:
            bus.start("r")
            self.midway(bus.control)
            bus.start("r")  # start over: data still in flight must not count
            bus.wait_finished(["r"])
            self.exact(bus.control)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_start_again_when_finished_replays(self):
        bus = h.Bus([("r", "file:" + self.pcap)])
        try:
            for _ in range(3):
                bus.start("r")
                bus.wait_finished(["r"])
                self.exact(bus.control)
            h.ctl(bus.control, "stop", "r")
            bus.start("r")
            bus.wait_finished(["r"])
            self.exact(bus.control)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_second_collector_gets_the_whole_file(self):
        bus = h.Bus([("r", "file:" + self.pcap)], probe_args=SLOW)
        try:
            bus.start("r")
            self.midway(bus.control)
            second = bus.add_collector()
            h.ctl(second, "start", "r")  # joins mid-replay: the probe starts a new run
            bus.wait_finished(["r"], control=second)
            self.exact(second)
            bus.wait_finished(["r"])
            self.assertEqual(self.exact(bus.control)["run_resets"], 1)
            h.ctl(second, "start", "r")  # and once more after both finished
            bus.wait_finished(["r"], control=second)
            self.exact(second)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_probe_killed_mid_replay(self):
        bus = h.Bus([("r", "file:" + self.pcap)], probe_args=SLOW)
        try:
            bus.start("r")
            self.midway(bus.control)
            bus.restart_probe(signal.SIGKILL)
            bus.wait_finished(["r"])
            # Messages the killed probe had queued but not sent are lost (and
            # counted as gaps); the new run is complete.
            s = self.exact(bus.control, gaps=None)
            self.assertEqual(s["loss"]["probe_restarts"], 1)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_vanished_collector_does_not_stall_the_probe(self):
        bus = h.Bus([("r", "file:" + self.pcap)], probe_args=SLOW)
        try:
            bus.start("r")
            self.midway(bus.control)
            bus.collector.p.send_signal(signal.SIGSTOP)  # alive, but silent
            try:
                h.wait_for(lambda: "no subscriber left" in bus.probe.output(), 40,
                           "the probe to drop the silent collector")
            finally:
                bus.collector.p.send_signal(signal.SIGCONT)
            # Back, the collector reconnects and re-subscribes: a new run.
            bus.wait_finished(["r"], timeout=120)
            self.exact(bus.control, gaps=None)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_silent_probe_is_shown(self):
        bus = h.Bus([("r", "file:" + self.pcap)])
        try:
            bus.start("r")
            bus.wait_finished(["r"])

            def silent():
                return bus.probe_view("r")["silent"]
            self.assertFalse(silent())
            bus.probe.p.send_signal(signal.SIGSTOP)
            try:
                h.wait_for(silent, 30, "the probe to be reported silent", interval=0.2)
                _, out, _ = h.ctl(bus.control, "status")
                self.assertRegex(out, r"it-probe +r +silent")
            finally:
                bus.probe.p.send_signal(signal.SIGCONT)
            h.wait_for(lambda: not silent(), 30, "the probe to be heard again", interval=0.2)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_probe_stopped_mid_replay_ends_the_stream(self):
        bus = h.Bus([("r", "file:" + self.pcap)], probe_args=SLOW)
        try:
            bus.start("r")
            self.midway(bus.control)
            self.assertEqual(bus.probe.stop(signal.SIGTERM), 0)
            bus.wait_finished(["r"], timeout=30)
            probe = bus.probe_view("r")
            self.assertEqual(probe["source_state"], "error")
            self.assertIn("probe stopped", probe["detail"])
            s = h.ctl_json(bus.control, "stats", "r")
            self.assertLess(s["packets"], PACKETS)
            self.assertEqual(s["loss"]["lost_packets"], 0)  # what was sent arrived
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes[1], 0, logs)


class Limits(unittest.TestCase):
    def test_long_names_tiny_batches_and_odd_text(self):
        name = "s" * 64
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "\u00e9" * 80 + ".pcap")  # cut mid-character
            bus = h.Bus([(name, "file:" + missing)], probe_args=["--id", "p" * 64, "--batch", "1"])
            try:
                bus.start(name)
                bus.wait_finished([name], timeout=30)
                status = h.ctl_json(bus.control, "status")
                self.assertEqual(status["streams"][0]["probes"][0]["source_state"], "error")
                h.ctl(bus.control, "status")  # the human table too
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_stop_lists_every_stream_and_start_is_all_or_nothing(self):
        bus = h.Bus([("x", "file:/nonexistent")], collector_args=["--max-streams", "100"])
        try:
            names = ["n%03d" % i for i in range(90)]
            h.ctl(bus.control, "start", *names[:45])
            h.ctl(bus.control, "start", *names[45:])
            self.assertEqual(sorted(h.ctl_json(bus.control, "stop")["stopped"]), names)
            # 90 stopped slots are reusable, so 64 new ones fit; 100 running would not.
            h.ctl(bus.control, "start", *["m%02d" % i for i in range(60)])
            code, _, err = h.ctl(bus.control, "start", *["k%02d" % i for i in range(50)],
                                 check=False)
            self.assertEqual(code, 1)
            self.assertIn("slot", err)
            streams = h.ctl_json(bus.control, "status")["streams"]
            self.assertFalse([s for s in streams if s["stream"].startswith("k")])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)


if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    unittest.main(verbosity=2)
