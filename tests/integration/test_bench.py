#!/usr/bin/env python3
"""The benchmark suite (tests/bench/suite.py) runs as the README says: a
small run prints every row for both captures, with a rate for each (no
speed is asserted: machines are noisy); a build without the test tools is
refused in one line that names what is missing."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SUITE = os.path.join(SRC, "tests", "bench", "suite.py")
ROWS = ["raw read (libpcap)", "probe alone", "collector alone", "collector alone, per CPU second",
        "collector alone + InfluxDB", "collector alone + InfluxDB, per CPU second", "end to end",
        "end to end + InfluxDB"]


class Suite(unittest.TestCase):
    def test_small_run_prints_every_row(self):
        if shutil.which(os.environ.get("TAPBUS_INFLUXD", "influxd")) is None:
            self.skipTest("no influxd (Debian package influxdb; deps.sh installs it)")
        build = os.path.dirname(os.path.abspath(h.BIN))
        # Its own process group: on a timeout the suite's collector, probe
        # and influxd go with it.
        p = subprocess.Popen([sys.executable, SUITE, build, "--packets", "20000", "--runs", "1",
                              "--no-peers", "--streams", "1,2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=480)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            self.fail("the suite did not finish within 480 s")
        r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        self.assertEqual(r.returncode, 0, r.stderr)
        sections = r.stdout.split("\n\n")
        titles = ["20000 packets, 10,000 Zipf flows", "20000 packets, every one a new flow"]
        for title in titles:
            sec = [s for s in sections if s.strip().startswith(title)]
            self.assertEqual(len(sec), 1, r.stdout)
            for row in ROWS:
                m = re.search(r"^%s +([0-9,]+) +[0-9]+%%" % re.escape(row), sec[0], re.M)
                self.assertIsNotNone(m, "%s: no row '%s'\n%s" % (title, row, sec[0]))
                self.assertGreater(int(m.group(1).replace(",", "")), 0)
            self.assertIn("tapbusctl status during the run with InfluxDB", sec[0])
        # The collector with several streams: 40,000 packets with 2.
        sec = [s for s in sections if s.strip().startswith("the collector with several streams")]
        self.assertEqual(len(sec), 1, r.stdout)
        for n in (1, 2):
            m = re.search(r"^%d +([0-9,]+) +([0-9,]+) +[0-9.]+ MiB" % n, sec[0], re.M)
            self.assertIsNotNone(m, "no row for %d streams\n%s" % (n, sec[0]))
            self.assertGreater(int(m.group(1).replace(",", "")), 0)
            self.assertGreater(int(m.group(2).replace(",", "")), 0)
        print(r.stdout, file=sys.stderr)

    def test_build_without_the_tools_is_refused(self):
        with tempfile.TemporaryDirectory(prefix="tapbus-bench-") as d:
            os.mkdir(os.path.join(d, "bin"))
            for name in ("tapbus-probe", "tapbus-collector", "tapbusctl"):
                os.symlink(os.path.join(os.path.abspath(h.BIN), name), os.path.join(d, "bin", name))
            r = subprocess.run([sys.executable, SUITE, d, "--runs", "1"], capture_output=True,
                               text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("has no tb-gen-pcap, tb-pcap-rate, tb-bus-sink, tb-bus-replay",
                          r.stderr)
            self.assertIn("cmake --build", r.stderr)
            # A bad stream count is refused before anything runs.
            r = subprocess.run([sys.executable, SUITE, d, "--streams", "1,x"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("--streams takes stream counts", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
