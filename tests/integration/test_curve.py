#!/usr/bin/env python3
"""CURVE on every ZeroMQ connection, with the real programs on loopback:
keys from `tapbusctl keygen`; an allowed probe (whichever side binds) and
allowed controllers (tapbusctl and the HTTP gateway) work end to end; a
read-only key reads but cannot act; an unknown key, a client without CURVE
and a wrong server key are refused, told in words, logged and counted; a
probe's id belongs to the first key it came with; tcpdump of the loopback
sees no stream name with CURVE (and does without it); bad key set-ups are
refused at start with one line; endpoints open to the network without CURVE
are warned about."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "data", "demo.pcap")
DEMO_PACKETS = 5000  # tshark agrees: see test_end_to_end_in_both_directions


def run(name, *args, env=None, timeout=60):
    r = subprocess.run([os.path.join(h.BIN, name)] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


class Keys:
    """A directory of key pairs made by `tapbusctl keygen`, and the
    collector's allow-lists: act (ops), read (viewer), probes (edge1, edge2).
    stranger is in no list."""

    NAMES = ("collector", "ops", "viewer", "edge1", "edge2", "stranger")

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "keys")
        os.mkdir(self.dir)
        for n in self.NAMES:
            code, out, err = run("tapbusctl", "keygen", self.cert(n))
            assert code == 0, err
            assert "wrote %s_secret" % self.cert(n) in out, out
        self.act = self._allow("allow-act", ["ops"])
        self.read = self._allow("allow-read", ["viewer"])
        self.probes = self._allow("allow-probes", ["edge1", "edge2"])

    def cert(self, name):
        return os.path.join(self.dir, name)

    def secret(self, name):
        return self.cert(name) + "_secret"

    def public_key(self, name):
        with open(self.cert(name)) as f:
            return re.search(r'public-key = "(.{40})"', f.read()).group(1)

    def _allow(self, dirname, names):
        d = os.path.join(os.path.dirname(self.dir), dirname)
        os.mkdir(d)
        for n in names:
            shutil.copy(self.cert(n), d)  # public certificates only
        return d

    def collector_args(self):
        return ["--curve-key", self.secret("collector"), "--curve-allow", self.act,
                "--curve-allow-read", self.read, "--curve-allow-probes", self.probes]

    def client_args(self, name, server="collector"):
        return ["--curve-key", self.secret(name), "--curve-server-key", self.cert(server)]


def ctl(control, keys, name, *args, timeout_ms=5000, server="collector"):
    """tapbusctl with the keys of `name` (None: without CURVE); returns
    (exit code, stdout, stderr)."""
    extra = keys.client_args(name, server) if name is not None else []
    return run("tapbusctl", "--collector", control, "--timeout", str(timeout_ms), *extra, *args,
               timeout=timeout_ms / 1000 + 60)


def ctl_json(control, keys, name, *args):
    code, out, err = ctl(control, keys, name, "--json", *args)
    if code != 0:
        raise AssertionError("tapbusctl %s failed (%d): %s" % (" ".join(args), code, err))
    return json.loads(out)


class Deployment:
    """A collector with CURVE and probes, on loopback."""

    def __init__(self, keys, tmp, reverse=False):
        self.keys = keys
        self.tmp = tmp
        self.reverse = reverse
        self.bus = h.endpoint()
        self.control = h.endpoint()
        self.probes = []
        self.collector = h.Proc("tapbus-collector",
                                ["--listen" if reverse else "--probe", self.bus,
                                 "--control", self.control] + keys.collector_args(), tmp)
        try:
            h.wait_for(lambda: self.ctl("ops", "status", timeout_ms=500)[0] == 0, 30,
                       "the collector to answer with CURVE")
        except BaseException:
            self.collector.p.kill()
            raise

    def add_probe(self, key, pid, sources, curve=True, server="collector", endpoint=None):
        args = ["--id", pid, "--connect" if self.reverse else "--publish",
                endpoint or self.bus]
        for stream in sources:
            args += ["--source", "%s=file:%s" % (stream, DEMO)]
        if curve:
            args += self.keys.client_args(key, server)
        p = h.Proc("tapbus-probe", args, self.tmp)
        self.probes.append(p)
        return p

    def ctl(self, name, *args, timeout_ms=5000):
        return ctl(self.control, self.keys, name, *args, timeout_ms=timeout_ms)

    def json(self, *args, name="ops"):
        return ctl_json(self.control, self.keys, name, *args)

    def security(self):
        return self.json("status")["collector"]["security"]

    def offered(self):
        return {(e["stream"], e["probe"]) for e in self.json("streams")["streams"]
                if e["probe"] is not None}

    def wait_finished(self, streams, timeout=120):
        def done():
            now = {s["stream"]: s["state"] for s in self.json("status")["streams"]}
            return all(now.get(s) == "finished" for s in streams)
        h.wait_for(done, timeout, "streams %s to finish" % streams, interval=0.1)

    def close(self):
        for p in self.probes:
            p.stop()
        return self.collector.stop()


class Curve(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="tapbus-curve-")
        self.tmp = self.tmpdir.name
        self.keys = Keys(self.tmp)
        self.deployments = []

    def tearDown(self):
        for d in self.deployments:
            d.close()
        self.tmpdir.cleanup()

    def deployment(self, reverse=False):
        d = Deployment(self.keys, self.tmp, reverse)
        self.deployments.append(d)
        return d

    def test_keygen_writes_czmq_certificates(self):
        k = self.keys
        st = os.stat(k.secret("edge1"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(k.secret("edge1")) as f:
            secret = f.read()
        with open(k.cert("edge1")) as f:
            public = f.read()
        # CZMQ's layout: a metadata section and a curve section, keys quoted.
        self.assertRegex(secret, r'(?m)^curve\n    public-key = ".{40}"\n    secret-key = ".{40}"$')
        self.assertRegex(public, r'(?m)^metadata\n    name = "edge1"\ncurve\n    public-key = ".{40}"\n')
        self.assertNotIn("secret-key", public)
        # Never overwritten.
        code, _, err = run("tapbusctl", "keygen", k.cert("edge1"))
        self.assertEqual(code, 1)
        self.assertIn("exists: not overwritten", err)
        with open(k.secret("edge1")) as f:
            self.assertEqual(f.read(), secret)
        code, _, err = run("tapbusctl", "keygen")
        self.assertEqual(code, 2)
        self.assertIn("keygen needs exactly one NAME", err)

    def test_end_to_end_in_both_directions(self):
        self.assertEqual(h.tshark_expect(DEMO)["packets"], DEMO_PACKETS)
        for reverse in (False, True):
            with self.subTest(reverse=reverse):
                d = self.deployment(reverse)
                d.add_probe("edge1", "edge1", ["demo"])
                h.wait_for(lambda: ("demo", "edge1") in d.offered(), 30, "the probe's offer")
                self.assertEqual(d.json("start", "demo")["started"], ["demo"])
                d.wait_finished(["demo"])
                stats = d.json("stats", "demo")
                self.assertEqual(stats["packets"], DEMO_PACKETS)
                self.assertEqual(stats["loss"]["seq_gaps"], 0)
                sec = d.security()
                self.assertTrue(sec["curve"])
                self.assertEqual(sec["keys"], {"act": 1, "read": 1, "probes": 2})
                self.assertEqual(sec["probe_ids"], 1)
                self.assertEqual(sec["refused_keys"], {"control": 0, "bus": 0})
                self.assertEqual(sec["refused_probe_ids"], 0)
                self.assertEqual(sec["failed_handshakes"], 0)
                endpoint = d.json("status")["collector"]["endpoints"][0]
                self.assertEqual(endpoint["state"], "listening" if reverse else "connected")
                self.assertNotIn("without CURVE", d.collector.output())

    def test_gateway_with_an_act_key_and_a_read_key(self):
        d = self.deployment()
        d.add_probe("edge1", "edge1", ["demo"])
        h.wait_for(lambda: ("demo", "edge1") in d.offered(), 30, "the probe's offer")
        cred = os.path.join(self.tmp, "cred")
        h.write_private(cred, "ops:secret\n")
        gateways = {}
        for name in ("ops", "viewer"):
            port = h.free_port()
            gateways[name] = "http://127.0.0.1:%d" % port
            g = h.Proc("tapbusctl", ["--collector", d.control] + self.keys.client_args(name) +
                       ["serve", "--http", "127.0.0.1:%d" % port, "--credentials", cred],
                       self.tmp)
            d.probes.append(g)  # stopped with the deployment

        def curl(base, path):
            r = subprocess.run(["curl", "-s", "-u", "ops:secret", "-w", "\n%{http_code}",
                                base + path], capture_output=True, text=True, timeout=60)
            body, _, code = r.stdout.rpartition("\n")
            return int(code or 0), json.loads(body) if body else None
        for base in gateways.values():
            h.wait_for(lambda: curl(base, "/status")[0] == 200, 30, "the gateways to answer")
        code, body = curl(gateways["viewer"], "/start?stream=demo")
        self.assertEqual(code, 409, body)
        self.assertIn("start refused: this client's key may only read", body["error"])
        code, body = curl(gateways["ops"], "/start?stream=demo")
        self.assertEqual((code, body["started"]), (200, ["demo"]))
        d.wait_finished(["demo"])
        code, body = curl(gateways["viewer"], "/stats?stream=demo")
        self.assertEqual((code, body["packets"]), (200, DEMO_PACKETS))
        self.assertEqual(d.security()["refused_read_only"], 1)

    def test_read_only_key_reads_but_cannot_act(self):
        d = self.deployment()
        self.assertEqual(d.json("start", "s1")["started"], ["s1"])
        code, out, _ = d.ctl("viewer", "status")
        self.assertEqual(code, 0)
        self.assertIn("s1", out)
        for cmd in (["start", "s2"], ["stop", "s1"], ["stop"], ["forget", "s1"]):
            code, _, err = d.ctl("viewer", *cmd)
            self.assertEqual(code, 1, cmd)
            self.assertIn("%s refused: this client's key may only read (status, stats, probes, "
                          "streams, db)" % cmd[0], err)
        for cmd in (["stats", "s1"], ["streams"], ["probes"]):
            self.assertEqual(d.ctl("viewer", *cmd)[0], 0, cmd)
        self.assertEqual(d.security()["refused_read_only"], 4)
        st = {s["stream"]: s["state"] for s in d.json("status")["streams"]}
        self.assertEqual(st, {"s1": "waiting"})  # nothing the viewer asked for happened
        self.assertIn("refused start from read-only key %s (viewer)"
                      % self.keys.public_key("viewer"), d.collector.output())

    def test_strangers_are_refused_logged_and_counted(self):
        d = self.deployment()
        # An unknown key: the collector says no at once.
        code, _, err = d.ctl("stranger", "status")
        self.assertEqual(code, 3)
        self.assertIn("refused this client's CURVE key", err)
        stranger = self.keys.public_key("stranger")
        h.wait_for(lambda: d.security()["refused_keys"]["control"] >= 1, 30, "the refusal count")
        self.assertIn("its key %s is in neither --curve-allow nor --curve-allow-read" % stranger,
                      d.collector.output())
        # A client without CURVE.
        code, _, err = d.ctl(None, "status")
        self.assertEqual(code, 3)
        # Which side notices the other mechanism first is a race (below).
        self.assertRegex(err, "(requires|may require) CURVE")
        h.wait_for(lambda: d.security()["failed_handshakes"] >= 1, 30, "the handshake count")
        # Which side notices the other mechanism first is a race: the one
        # that loses sees the connection break off.
        self.assertRegex(d.collector.output(), "a client failed the handshake: (it does not use "
                                               "CURVE|the handshake broke off)")
        # The right client key, the wrong server key: it gets nothing.
        before = d.security()["failed_handshakes"]
        code, _, err = ctl(d.control, self.keys, "ops", "status", timeout_ms=1500,
                           server="stranger")
        self.assertEqual(code, 3)
        self.assertIn("broke off the CURVE handshake: --curve-server-key is probably not its "
                      "public key", err)
        h.wait_for(lambda: d.security()["failed_handshakes"] > before, 30, "the handshake count")
        self.assertIn("its --curve-server-key is not this collector's public key",
                      d.collector.output())
        last = d.security()["last_refused"]["client"]
        self.assertIn("failed the handshake", last)
        # None of them changed anything.
        self.assertEqual(d.json("status")["streams"], [])

    def test_probes_with_unknown_keys_or_none_send_nothing(self):
        for reverse, key in ((False, "stranger"), (True, "stranger"), (False, None),
                             (True, None)):
            with self.subTest(reverse=reverse, key=key):
                d = self.deployment(reverse)
                d.add_probe(key, "edge1", ["demo"], curve=key is not None)
                ep = lambda: d.json("status")["collector"]["endpoints"][0]  # noqa: E731
                h.wait_for(lambda: ep()["handshake_failures"] >= 1, 30,
                           "the probe's handshake to fail")
                if key is not None:
                    h.wait_for(lambda: d.security()["refused_keys"]["bus"] >= 1, 30,
                               "the probe to be counted as refused")
                    self.assertIn("its key %s is not in --curve-allow-probes"
                                  % self.keys.public_key(key), d.collector.output())
                    self.assertIn("not in --curve-allow-probes", ep()["detail"])
                else:  # which side notices the other mechanism first is a race
                    self.assertRegex(ep()["detail"], "another security mechanism|broke off")
                if reverse:
                    self.assertIn("listen endpoint %s: a peer failed the handshake" % d.bus,
                                  d.collector.output())
                else:
                    self.assertEqual(ep()["state"], "handshake_failed")
                self.assertEqual(d.offered(), set())
                self.assertEqual(d.json("status")["collector"]["bus"]["messages"], 0)

    def test_a_probe_id_belongs_to_its_first_key(self):
        d = self.deployment(reverse=True)
        d.add_probe("edge1", "edge", ["s1"])
        h.wait_for(lambda: ("s1", "edge") in d.offered(), 30, "the first probe's offer")
        # Another allowed probe, given the same --id by mistake (or by malice).
        d.add_probe("edge2", "edge", ["s2"])
        h.wait_for(lambda: d.security()["refused_probe_ids"] >= 1, 30,
                   "the second probe's offer to be refused")
        sec = d.security()
        self.assertEqual(sec["probe_ids"], 1)
        self.assertIn("probe id 'edge' claimed by key %s (edge2), but it came with key %s first"
                      % (self.keys.public_key("edge2"), self.keys.public_key("edge1")),
                      sec["last_refused"]["probe_id"])
        self.assertNotIn(("s2", "edge"), d.offered())
        before = sec["refused_probe_ids"]
        d.json("start", "s1", "s2")
        d.wait_finished(["s1"])
        # The second probe sends s2 (it was subscribed): every message refused.
        h.wait_for(lambda: d.security()["refused_probe_ids"] > before + 5, 30,
                   "the second probe's data to be refused")
        stats = {s["stream"]: s for s in d.json("status")["streams"]}
        self.assertEqual(stats["s1"]["packets"], DEMO_PACKETS)
        self.assertEqual(stats["s2"]["packets"], 0)
        self.assertEqual(stats["s2"]["state"], "waiting")
        self.assertIn("bus: refused a message: probe id 'edge' claimed by key",
                      d.collector.output())

    def _capture(self, curve, name):
        """Run a measurement of stream `name` under tcpdump on the loopback,
        with or without CURVE; returns (bytes captured, packets captured)."""
        pcap = os.path.join(self.tmp, "lo-%s.pcap" % ("curve" if curve else "plain"))
        bus, control = h.free_port(), h.free_port()
        errlog = open(os.path.join(self.tmp, "tcpdump.err"), "w+")
        dump = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "-Z", "root", "-w", pcap,
                                 "tcp port %d or tcp port %d" % (bus, control)],
                                stdout=subprocess.DEVNULL, stderr=errlog)
        h.Proc.running.append(dump)
        procs = []
        try:
            def listening():
                errlog.seek(0)
                text = errlog.read()
                if dump.poll() is not None:
                    if re.search(r"ermission|not permitted|No such device", text):
                        raise unittest.SkipTest("tcpdump cannot capture on lo here: "
                                                + text.strip()[-200:])
                    raise AssertionError("tcpdump ended: " + text)
                return "listening on lo" in text
            h.wait_for(listening, 30, "tcpdump to listen")
            ck = self.keys.collector_args() if curve else []
            pk = self.keys.client_args("edge1") if curve else []
            procs.append(h.Proc("tapbus-collector",
                                ["--probe", "tcp://127.0.0.1:%d" % bus, "--control",
                                 "tcp://127.0.0.1:%d" % control] + ck, self.tmp))
            procs.append(h.Proc("tapbus-probe", ["--id", "edge1", "--publish",
                                                 "tcp://127.0.0.1:%d" % bus, "--source",
                                                 "%s=file:%s" % (name, DEMO)] + pk, self.tmp))
            ep = "tcp://127.0.0.1:%d" % control
            who = "ops" if curve else None
            h.wait_for(lambda: name in [e["stream"] for e in
                                        ctl_json(ep, self.keys, who, "streams")["streams"]],
                       30, "the offer")
            ctl_json(ep, self.keys, who, "start", name)
            h.wait_for(lambda: ctl_json(ep, self.keys, who, "stats", name)["state"] ==
                       "finished", 120, "the stream to finish")
            self.assertEqual(ctl_json(ep, self.keys, who, "stats", name)["packets"],
                             DEMO_PACKETS)
        finally:
            for p in procs:
                p.stop()
            if dump.poll() is None:
                dump.send_signal(signal.SIGINT)
            dump.wait(30)
            errlog.seek(0)
            err = errlog.read()
            errlog.close()
        m = re.search(r"(\d+) packets? captured", err)
        with open(pcap, "rb") as f:
            return f.read(), int(m.group(1)) if m else 0

    def test_tcpdump_sees_no_stream_name(self):
        if shutil.which("tcpdump") is None:
            self.skipTest("tcpdump is not installed (Debian package tcpdump; deps.sh)")
        if os.geteuid() != 0:
            self.skipTest("capturing on the loopback needs root (CAP_NET_RAW)")
        name = "tb.secret-stream.7f3a"
        plain, n_plain = self._capture(False, name)
        self.assertIn(name.encode(), plain)  # the test can see it when it is there
        data, n = self._capture(True, name)
        # The measurement's traffic was captured (5000 packet summaries in a
        # few large messages of some 45 KB each)... The capture's size is not
        # compared with the plain run's: on a busy machine either run holds
        # 100-300 KB, tcpdump reporting no drop, so half of the one was more
        # than the other now and then.
        self.assertGreater(n, 20)
        self.assertGreater(len(data), 50000)
        self.assertNotIn(name.encode(), data)  # ...and the name is not in it

    def test_bad_set_ups_are_refused_at_start(self):
        k = self.keys
        exe = "tapbus-collector"
        base = ["--probe", h.endpoint(), "--control", h.endpoint()]
        missing = os.path.join(self.tmp, "nope")
        os.chmod(k.cert("ops"), 0o644)
        open_secret = os.path.join(self.tmp, "open_secret")
        shutil.copy(k.secret("edge1"), open_secret)
        os.chmod(open_secret, 0o644)
        cases = [
            (exe, ["--curve-key", k.secret("collector"), "--curve-allow", k.act],
             "--curve-key needs --curve-allow-probes DIR"),
            (exe, ["--curve-key", k.secret("collector"), "--curve-allow-probes", k.probes],
             "--curve-key needs --curve-allow DIR and/or --curve-allow-read DIR"),
            (exe, ["--curve-allow", k.act], "--curve-allow needs --curve-key"),
            (exe, k.collector_args()[:-2] + ["--curve-allow-probes", missing],
             "cannot read --curve-allow-probes directory %s: No such file or directory"
             % missing),
            (exe, k.collector_args()[:-2] + ["--curve-allow-probes", k.cert("edge1")],
             "Not a directory"),
            (exe, ["--curve-key", k.cert("collector")], "holds no secret key"),
            (exe, ["--curve-key", open_secret], "accessible by others (mode 0644): chmod 600"),
            (exe, ["--curve-key", missing], "cannot read certificate %s" % missing),
            ("tapbus-probe", ["--source", "a=file:" + DEMO, "--curve-key", k.secret("edge1")],
             "--curve-key needs --curve-server-key"),
            ("tapbus-probe", ["--source", "a=file:" + DEMO, "--curve-server-key",
                              k.cert("collector")], "--curve-server-key needs --curve-key"),
            ("tapbusctl", ["--curve-key", k.secret("ops"), "status"],
             "--curve-key needs --curve-server-key"),
            ("tapbusctl", ["--curve-key", open_secret, "--curve-server-key",
                           k.cert("collector"), "status"], "accessible by others"),
        ]
        for prog, args, want in cases:
            with self.subTest(prog=prog, args=args):
                code, _, err = run(prog, *((base if prog == exe else []) + args))
                self.assertEqual(code, 2, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(want, err)
        # From a configuration file and the environment, like every option.
        conf = os.path.join(self.tmp, "collector.conf")
        with open(conf, "w") as f:
            f.write("curve-key = %s\ncurve-allow-probes = %s\n" % (k.secret("collector"),
                                                                  k.probes))
        env = dict(os.environ, TAPBUS_COLLECTOR_CURVE_ALLOW_READ=k.read)
        code, out, err = run(exe, "--config", conf, "--print-config", *base, env=env)
        self.assertEqual(code, 0, err)
        self.assertIn('curve-key = "%s"    # %s:1' % (k.secret("collector"), conf), out)
        self.assertIn('curve-allow-read = "%s"    # $TAPBUS_COLLECTOR_CURVE_ALLOW_READ' % k.read,
                      out)
        self.assertIn("# curve-allow    # not set", out)

    def test_open_endpoints_without_curve_are_warned_about(self):
        tmp = self.tmp
        port = h.free_port()
        plain = h.Proc("tapbus-collector", ["--listen", "tcp://0.0.0.0:%d" % h.free_port(),
                                            "--control", "tcp://0.0.0.0:%d" % port], tmp)
        local = h.Proc("tapbus-collector", ["--listen", h.endpoint(), "--control",
                                            h.endpoint()], tmp)
        probe = h.Proc("tapbus-probe", ["--id", "p", "--source", "a=file:" + DEMO,
                                        "--publish", "tcp://*:%d" % h.free_port()], tmp)
        secured = h.Proc("tapbus-collector", ["--listen", "tcp://0.0.0.0:%d" % h.free_port(),
                                              "--control", "tcp://0.0.0.0:%d" % h.free_port()]
                         + self.keys.collector_args(), tmp)
        try:
            for p in (plain, local, secured):
                h.wait_for(lambda: "control on" in p.output(), 30, "the collector to start")
            h.wait_for(lambda: "publishing" in probe.output(), 30, "the probe to start")
            out = plain.output()
            self.assertRegex(out, r"WARN +collector: tcp://0\.0\.0\.0:\d+ takes probes from the "
                                  r"network without CURVE")
            self.assertIn("control tcp://0.0.0.0:%d is open to the network without CURVE: anyone "
                          "who reaches it can start and stop measurements" % port, out)
            self.assertIn("publishes to the network without CURVE", probe.output())
            self.assertNotIn("without CURVE", local.output())
            self.assertNotIn("without CURVE", secured.output())
        finally:
            for p in (plain, local, probe, secured):
                p.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
