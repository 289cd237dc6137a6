#!/usr/bin/env python3
"""demo.sh, run for real with the programs of this build (TAPBUS_BIN: it
builds nothing then): a private influxd, two probes, a collector writing to
the database and the HTTP gateway; streams started with curl, status, stats
and the database shown, everything stopped. Checked: the curl start answered
200 naming both streams, status shows them finished with their captures'
packet counts (tshark's), the database output has rows, and nothing the
demo started is left running or on disk afterwards — also when it is
interrupted (Ctrl-C), terminated, or fails to start its database.

Each run gets its own session and its own TMPDIR, so "nothing left" is
exact: no process of that session outlives the script, and TMPDIR is empty."""

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
DEMO = os.path.join(SRC, "demo.sh")
CAPTURES = {"demo": os.path.join(SRC, "tests", "data", "demo.pcap"),
            "mptcp": os.path.join(SRC, "tests", "data", "corpus", "mptcp-v0.pcap")}


def session_members(sid):
    """Processes (not zombies) whose session is sid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append("%s %s" % (pid, stat[stat.index("(") + 1:stat.rindex(")")]))
    return found


class Demo(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tapbus-demo-test-")
        self.env = dict(os.environ, TAPBUS_BIN=h.BIN, TMPDIR=self.tmp)
        self.p = None

    def tearDown(self):
        # A failed test may leave the demo running: its whole session goes.
        if self.p is not None:
            if self.p.poll() is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
            for member in session_members(self.p.pid):
                os.kill(int(member.split()[0]), signal.SIGKILL)
            if self.p.stdout:
                self.p.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def launch(self, env=None, args=()):
        """demo.sh in a session of its own (its pid is the session id),
        standard error into standard output."""
        self.p = subprocess.Popen([DEMO] + list(args), cwd=SRC, env=env or self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                  start_new_session=True)
        return self.p

    def assert_nothing_left(self, out):
        self.assertEqual(session_members(self.p.pid), [],
                         "processes the demo started still run\n" + out)
        self.assertEqual(os.listdir(self.tmp), [], "the demo left files in TMPDIR\n" + out)

    def test_the_whole_job(self):
        p = self.launch()
        out, _ = p.communicate(timeout=240)
        print(out)
        self.assertEqual(p.returncode, 0, out)

        # The work directory was made in our TMPDIR (so its removal is seen).
        m = re.search(r"work directory (\S+)", out)
        self.assertTrue(m and m.group(1).startswith(self.tmp + os.sep), out)
        self.assertRegex(out, r"credentials file mode 600")

        # The start, as DPMI analyzer users typed it, and its answer.
        m = re.search(r'^\$ curl -sS -u demo:([0-9a-f]{24}) "http://127\.0\.0\.1:(\d+)/start\?'
                      r'streamname1=demo&streamname2=mptcp"\n(.*)\nHTTP (\d+)$', out, re.M)
        self.assertTrue(m, out)
        self.assertEqual(m.group(4), "200", out)
        self.assertRegex(m.group(3), r'"started":\s*\["demo",\s*"mptcp"\]')
        gateway_port = int(m.group(2))

        # status: both streams finished with every packet of their capture.
        status = out.split("$ tapbusctl status\n", 1)[1].split("\n$ ", 1)[0]
        for stream, path in CAPTURES.items():
            want = h.tshark_expect(path)
            row = re.search(r"^%s +finished +\d+ +(\d+) +(\d+) " % stream, status, re.M)
            self.assertTrue(row, "%s not finished in status:\n%s" % (stream, status))
            self.assertEqual((int(row.group(1)), int(row.group(2))),
                             (want["packets"], want["bytes"]), status)
        self.assertRegex(status, r"database +InfluxDB 1\.x .*, connected")

        # stats of the demo stream.
        self.assertRegex(out, r"(?m)^\$ tapbusctl stats demo\nstream +demo \(finished\)\npackets +%d$"
                         % h.tshark_expect(CAPTURES["demo"])["packets"])

        # What reached the database: rows under each db command.
        def section(cmd):
            text = out.split("$ tapbusctl %s\n" % cmd, 1)[1].split("\n$ ", 1)[0]
            return [ln for ln in text.splitlines() if ln.strip()]
        measurements = section("db")
        for name in ("tapbus_traffic", "tapbus_interval", "tapbus_top_flow", "tapbus_stream"):
            self.assertIn(name, measurements)
        traffic = section("db tapbus_traffic demo -n 12")
        self.assertEqual(len(traffic), 13, traffic)  # a header and 12 seconds x classes
        for row in traffic[1:]:
            self.assertRegex(row, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d+ +"
                                  r"(tcp|udp|icmp|icmpv6|other|non_ip) +\d+ +demo$")
        interval = section("db tapbus_interval demo")
        self.assertGreaterEqual(len(interval), 2, interval)
        self.assertIn(" 5000 ", interval[1])
        flows = section("db tapbus_top_flow demo -n 10")
        self.assertEqual(len(flows), 11, flows)
        ended = section("db tapbus_stream")
        for stream in CAPTURES:
            self.assertTrue(any(re.search(r" finished +%s " % stream, r) for r in ended), ended)
        self.assertRegex(out, r"(?m)^\$ tapbusctl stop\nstopped: demo mptcp$")

        self.assert_nothing_left(out)
        # Nobody answers on the gateway's port any more.
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:%d/status"
                            % gateway_port], capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0, "the gateway still answers")

    def interrupt(self, signal_it):
        """Start the demo with --keep (everything stays up after it), signal
        it once it says so, and check it ends with everything stopped and
        removed."""
        p = self.launch(args=["--keep"])
        seen = []
        for line in p.stdout:
            seen.append(line)
            if line.startswith("Ctrl-C stops it all"):
                break
        self.assertTrue(seen and seen[-1].startswith("Ctrl-C stops it all"), "".join(seen))
        # Every program of the demo runs now: influxd, two probes, the
        # collector, the gateway, and the script itself (maybe in a sleep).
        names = [m.split(" ", 1)[1] for m in session_members(p.pid)]
        for name in ("influxd", "tapbus-probe", "tapbus-collecto", "tapbusctl"):
            self.assertIn(name, names)
        self.assertEqual(names.count("tapbus-probe"), 2, names)
        signal_it(p)
        out = "".join(seen) + p.communicate(timeout=120)[0]
        print(out)
        self.assert_nothing_left(out)
        return out

    def test_ctrl_c(self):
        """Ctrl-C in a terminal signals the whole foreground process group."""
        self.interrupt(lambda p: os.killpg(p.pid, signal.SIGINT))
        self.assertEqual(self.p.returncode, 130)

    def test_terminated(self):
        """SIGTERM to the script alone: it stops what it started itself."""
        self.interrupt(lambda p: p.send_signal(signal.SIGTERM))
        self.assertEqual(self.p.returncode, 143)

    def test_database_does_not_start(self):
        env = dict(self.env, TAPBUS_INFLUXD=shutil.which("false") or "/bin/false")
        p = self.launch(env)
        out, _ = p.communicate(timeout=120)
        print(out)
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("demo.sh: influxd exited while starting", out)
        self.assert_nothing_left(out)


if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    unittest.main(verbosity=2)
