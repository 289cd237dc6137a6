#!/usr/bin/env python3
"""tapbusctl against a collector that says odd or hostile things: replies
served by tb-fake-rep (a REP socket answering with a file's bytes). Every
reply is either shown or refused as malformed (exit 4, 502 through the
gateway); nothing crashes (the suite runs this under ASan+UBSan too), the
terminal views clip what they draw, and counters past 2^63 saturate."""

import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402


def mp(v):
    """A minimal msgpack encoder: None, bool, int (to uint64), float, str,
    bytes, list, dict."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(mp(k) + mp(x)
                                                             for k, x in v.items())
    raise TypeError(v)


def ok(data):
    return mp({"v": 1, "status": "ok", "data": data})


HUGE = 2 ** 64 - 1  # a uint64 counter: a real on the JSON side

STATS = {
    "stream": "s1", "state": "running", "packets": 1, "bytes": HUGE,
    "min_len": HUGE, "max_len": -5, "pps_now": 1e308,
    "protocols": {"tcp": {"packets": 10 ** 12, "bytes": 1}, "udp": {"packets": -10 ** 12},
                  "x" * 200: {"packets": HUGE}, "icmp": "not a map"},
    "top_flows": [{"src": "a" * 5000, "dst": 7, "proto": None, "packets": HUGE},
                  "junk", 42, {"key": {"deep": []}}],
    "top_hosts": {"not": "a list"},
    "loss": {"seq_gaps": HUGE, "lost_packets": HUGE, "capture_drops": 2 ** 63,
             "bus_drops": 2 ** 63, "bad_messages": HUGE},
}

STATUS = {
    "collector": {"version": 7, "uptime_s": HUGE, "control": ["x"],
                  "endpoints": [{"endpoint": "e" * 3000, "kind": 5, "state": "refused",
                                 "since_s": 1e308, "since_time": None, "retries": HUGE,
                                 "detail": "x" * 2000},
                                "junk", {"state": None, "kind": "listen", "peers": HUGE,
                                         "handshake_failures": -5},
                                {"state": "s" * 100, "since_s": "soon"}]},
    "limits": "none",
    "database": {"target": "x" * 2000, "connected": "yes", "written": HUGE,
                 "queued_points": 2 ** 63 - 1, "batch_points": 2 ** 63 - 1},
    "bus": {"bad_frames": 2 ** 63 - 1, "bad_bodies": 2 ** 63 - 1, "bad_topic": 5},
    "streams": [{"stream": "s1", "state": "running", "packets": HUGE,
                 "loss": {"seq_gaps": HUGE, "lost_packets": HUGE},
                 "probes": [{"id": "p" * 500, "endpoint": None, "received": 2 ** 63 - 1,
                             "capture_drops": 2 ** 63 - 1, "last_heard_s": -1e308}, "junk"]},
                {"stream": "s2", "state": 3,
                 "probes": [{"id": "p" * 500, "received": 2 ** 63 - 1,
                             "capture_drops": HUGE, "last_heard_s": 1e308}]},
                {"stream": ["no"], "probes": "none"}, 5, None],
}


class HostileReplies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.file = os.path.join(cls.tmp.name, "reply")
        cls.endpoint = h.endpoint()
        cls.rep = h.Proc("tb-fake-rep", [cls.endpoint, cls.file], cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.rep.stop()
        cls.tmp.cleanup()

    def reply(self, raw):
        with open(self.file, "wb") as f:
            f.write(raw)

    def ctl(self, *args, collectors=None):
        cmd = [os.path.join(h.BIN, "tapbusctl"), "--timeout", "2000", "--retries", "0"]
        for c in collectors or [self.endpoint]:
            cmd += ["--collector", c]
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
        self.assertNotIn("Sanitizer", r.stderr)
        self.assertNotIn("runtime error", r.stderr)
        return r.returncode, r.stdout, r.stderr

    def test_odd_values_are_shown_not_crashed_on(self):
        self.reply(ok(STATS))
        for args in (["stats", "s1"], ["top", "s1"], ["top", "s1", "-n", "64"]):
            code, out, err = self.ctl(*args)
            self.assertEqual(code, 0, (args, err))
            self.assertIn("s1 (running)" if args[0] == "top" else "s1", out)
        # A protocol claiming more packets than the stream: a full bar, no more.
        code, out, _ = self.ctl("top", "s1")
        tcp = [ln for ln in out.splitlines() if ln.startswith("tcp ")][0]
        self.assertEqual(tcp.count("#"), 40, tcp)
        code, out, _ = self.ctl("--json", "stats", "s1")
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["packets"], 1)
        self.reply(ok(STATUS))
        for args in (["status"], ["probes"], ["--json", "probes"]):
            code, out, err = self.ctl(*args)
            self.assertEqual(code, 0, (args, err))
        code, out, _ = self.ctl("status")
        self.assertIn(": REFUSED for ", out)
        self.assertIn("S" * 31 + " for 0 s", out)  # a long state cut, not overrun
        # One probe in two streams: its counters add up, saturated.
        code, out, _ = self.ctl("--json", "probes")
        probe = json.loads(out)["probes"][0]
        self.assertEqual(probe["received"], 2 ** 63 - 1)

    def test_malformed_replies_exit_4(self):
        nested = {"a": 1}
        for _ in range(200):
            nested = {"a": nested}
        for raw in (b"", b"\x00garbage", ok("a string"), ok([1, 2]), ok(None), ok(nested),
                    mp({"v": 99, "status": "ok", "data": {}}), mp({"status": "ok"}),
                    ok(STATS)[:-3]):
            self.reply(raw)
            for args in (["status"], ["--json", "stats", "s1"], ["stop"]):
                code, out, err = self.ctl(*args)
                self.assertEqual(code, 4, (raw[:20], args, code, out, err))
                self.assertIn("malformed reply from collector at %s" % self.endpoint, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_network_text_is_printable(self):
        """Escape sequences in names, details, probe ids, keys and errors are
        shown escaped in the tables; --json keeps them exact."""
        esc = "\x1b]0;owned\x07\x1b[2J"
        status = {
            "collector": {"version": "1\x1b[31m", "uptime_s": 1, "control": "c"},
            "database": {"target": "db" + esc, "connected": False, "requests": 1,
                         "last_error": "HTTP 400: " + esc, "last_error_age_s": 1.0},
            "streams": [{"stream": "s" + esc, "state": "running", "packets": 1,
                         "probes": [{"id": "p" + esc, "source_state": "error",
                                     "detail": "cannot open " + esc + "\u009b2J\u202e",
                                     "received": 1, "last_heard_s": 0.5}]}]}
        self.reply(ok(status))
        for args in (["status"], ["probes"]):
            code, out, err = self.ctl(*args)
            self.assertEqual(code, 0, (args, err))
            self.assertNotIn("\x1b", out)
            self.assertNotIn("\x07", out)
            self.assertIn("\\x1b]0;owned\\x07", out)
        _, out, _ = self.ctl("status")
        self.assertIn("\\u009b2J\\u202e", out)
        self.assertNotIn("\u009b", out)
        self.assertNotIn("\u202e", out)
        code, out, _ = self.ctl("--json", "status")
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["streams"][0]["probes"][0]["id"], "p" + esc)
        self.assertIn("\\u001b", out.lower())  # JSON-escaped, exactly
        stats = {"stream": "s1", "state": "running", "protocols": {"t" + esc: {"packets": 1}},
                 "top_flows": [{"src": "1.2.3.4" + esc, "dst": "5.6.7.8", "class": "tcp"}],
                 "top_hosts": [{"addr": "h" + esc}]}
        self.reply(ok(stats))
        for args in (["stats", "s1"], ["top", "s1"]):
            code, out, err = self.ctl(*args)
            self.assertEqual(code, 0, (args, err))
            self.assertNotIn("\x1b", out)
            self.assertIn("h\\x1b]0;owned", out)
        table = {"query": "q", "columns": ["time", "name" + esc, "rank", "bps"],
                 "rows": [[2, "a" + esc, "10", 1e6], [2, "b", "2", 2.5e7], [2, "c", "1", 0.5],
                          [1, "d", "2", 1e-7], [1, "e", "1", 123456.789]]}
        self.reply(ok(table))
        code, out, err = self.ctl("db", "tapbus_top_flow")
        self.assertEqual(code, 0, err)
        self.assertNotIn("\x1b", out)
        # Numbers without exponents; rows of one time in rank order.
        self.assertNotIn("e+", out)
        self.assertNotIn("e-", out)
        cells = [ln.split() for ln in out.splitlines()[1:]]
        self.assertEqual([(c[0], c[2], c[3]) for c in cells],
                         [("2", "1", "0.5"), ("2", "2", "25000000"), ("2", "10", "1000000"),
                          ("1", "1", "123457"), ("1", "2", "0.0000001")])
        # The collector's refusal, escaped on the terminal, exact in JSON.
        self.reply(mp({"v": 1, "status": "error", "error": "bad " + esc}))
        code, out, err = self.ctl("stats", "s1")
        self.assertEqual(code, 1)
        self.assertNotIn("\x1b", err)
        self.assertIn("bad \\x1b]0;owned", err)
        code, out, err = self.ctl("--json", "stats", "s1")
        self.assertEqual(json.loads(out)["error"], "bad " + esc)

    def test_database_not_written_to_yet(self):
        """No write tried yet is not a database down; a failed one is."""
        status = {"collector": {"version": "1"}, "streams": [],
                  "database": {"target": "t", "connected": False, "requests": 0,
                               "last_error": ""}}
        self.reply(ok(status))
        _, out, _ = self.ctl("status")
        self.assertIn("database   t, not written to yet\n", out)
        status["database"]["requests"] = 3
        status["database"]["last_error"] = "HTTP 503"
        self.reply(ok(status))
        _, out, _ = self.ctl("status")
        self.assertIn("database   t, NOT CONNECTED\n", out)

    def test_a_refusal_is_exit_1(self):
        self.reply(mp({"v": 1, "status": "error", "error": "no such thing\nforged line"}))
        code, _, err = self.ctl("stats", "s1")
        self.assertEqual(code, 1)
        self.assertIn("no such thing", err)

    def test_beside_a_real_collector_and_through_the_gateway(self):
        bus = h.Bus([("web", "file:" + h.corpus_file("babel.pcap"))])
        gw = None
        try:
            self.reply(ok("a string"))
            both = [bus.control, self.endpoint]
            code, out, err = self.ctl("--json", "status", collectors=both)
            self.assertEqual(code, 4, err)
            doc = json.loads(out)
            self.assertEqual([c["ok"] for c in doc["collectors"]], [True, False])
            cred = os.path.join(self.tmp.name, "cred")
            h.write_private(cred, "u:p\n")
            port = h.free_port()
            gw = h.Proc("tapbusctl", ["--collector", self.endpoint, "serve", "--http",
                                      "127.0.0.1:%d" % port, "--credentials", cred],
                        self.tmp.name)

            def get(path):
                r = subprocess.run(["curl", "-s", "-u", "u:p", "-w", "\n%{http_code}",
                                    "http://127.0.0.1:%d%s" % (port, path)],
                                   capture_output=True, text=True, timeout=30)
                body, _, status = r.stdout.rpartition("\n")
                return status, body
            h.wait_for(lambda: get("/status")[0] != "000", 30, "the gateway")
            status, body = get("/status")
            self.assertEqual(status, "502", body)
            self.assertIn("malformed reply", json.loads(body)["error"])
        finally:
            if gw is not None:
                gw.stop()
            bus.close()


if __name__ == "__main__":
    if not h.BIN or not h.CORPUS:
        sys.exit("set TAPBUS_BIN and TAPBUS_CORPUS")
    unittest.main(verbosity=2)
