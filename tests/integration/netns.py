"""Two network namespaces joined by a veth pair, for tests of live sources.

A (the sender's side) and B (the measuring side): B runs probe, collector
and tapbusctl (127.0.0.1 inside B is B's own loopback) through small exec
wrappers (`ip netns exec B PROGRAM "$@"`, the same process, so signals reach
it) that the harness finds through its BIN directory, so the harness needs no
change. Addresses 192.0.2.0/24 (TEST-NET-1, never outside the namespaces).
Everything is torn down after each test, also on failure. Without root or
`ip netns`, the tests are skipped, not passed."""

import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import tapbus_harness as h

ADDR_A, ADDR_B = "192.0.2.1", "192.0.2.2"

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name):
    """Run the block's sockets (and programs it starts) in network namespace
    `name`: setns(2) moves only the calling thread, and back afterwards. A
    socket keeps the namespace it was made in."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join("/run/netns", name), os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns to %s" % name)
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)


class NsInflux(h.Influx):
    """The harness's influxd, run inside a namespace (on its own loopback,
    where the collector of that namespace writes to it) and asked from
    there."""

    def __init__(self, ns):
        super().__init__()
        self.ns = ns

    def start(self, timeout=30):
        with in_netns(self.ns):
            return super().start(timeout)

    def query(self, *args, **kwargs):
        with in_netns(self.ns):
            return super().query(*args, **kwargs)

    def write(self, *args, **kwargs):
        with in_netns(self.ns):
            return super().write(*args, **kwargs)


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)



class VethPair(unittest.TestCase):
    """Namespaces A and B joined by vethA (in A) and vethB (in B), up, with
    static neighbours; programs started through the harness run inside B.
    MTU: the pair's MTU when set (None keeps the default)."""

    MTU = None
    @classmethod
    def setUpClass(cls):
        cls.ns_a = "tbA-%d" % os.getpid()
        cls.ns_b = "tbB-%d" % os.getpid()
        cls.wrappers = tempfile.TemporaryDirectory(prefix="tapbus-live-")
        for prog in ("tapbus-probe", "tapbus-collector", "tapbusctl"):
            path = os.path.join(cls.wrappers.name, prog)
            with open(path, "w") as f:
                f.write('#!/bin/sh\nexec ip netns exec %s %s "$@"\n'
                        % (cls.ns_b, os.path.join(h.BIN, prog)))
            os.chmod(path, 0o755)

    @classmethod
    def tearDownClass(cls):
        cls.wrappers.cleanup()

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("live capture tests need root (network namespaces, raw capture)")
        if shutil.which("ip") is None:
            self.skipTest("live capture tests need iproute2 ('ip')")
        self.addCleanup(self.remove_namespaces)
        for ns in (self.ns_a, self.ns_b):
            r = run("ip", "netns", "add", ns)
            if r.returncode != 0:
                self.skipTest("cannot create network namespace %s: %s" % (ns, r.stderr.strip()))
        a, b = self.ns_a, self.ns_b
        for cmd in (["ip", "link", "add", "vethA", "netns", a, "type", "veth",
                     "peer", "name", "vethB", "netns", b],
                    ["ip", "-n", a, "addr", "add", ADDR_A + "/24", "dev", "vethA"],
                    ["ip", "-n", b, "addr", "add", ADDR_B + "/24", "dev", "vethB"],
                    ["ip", "-n", a, "link", "set", "lo", "up"],
                    ["ip", "-n", b, "link", "set", "lo", "up"],
                    ["ip", "-n", a, "link", "set", "vethA", "up"],
                    ["ip", "-n", b, "link", "set", "vethB", "up"]):
            r = run(*cmd)
            if r.returncode != 0:
                self.skipTest("cannot set up the namespaces (%s): %s"
                              % (" ".join(cmd), r.stderr.strip()))
        for ns, dev in ((a, "vethA"), (b, "vethB")):
            if self.MTU is not None:
                r = run("ip", "-n", ns, "link", "set", dev, "mtu", str(self.MTU))
                self.assertEqual(r.returncode, 0, r.stderr)
        # Static neighbours: no ARP exchange to wait for, nothing queued and
        # lost behind an unresolved address.
        for ns, dev, peer, peer_ns, peer_dev in ((a, "vethA", ADDR_B, b, "vethB"),
                                                 (b, "vethB", ADDR_A, a, "vethA")):
            mac = self.link(peer_ns, peer_dev)["address"]
            r = run("ip", "-n", ns, "neigh", "replace", peer, "lladdr", mac, "dev", dev,
                    "nud", "permanent")
            self.assertEqual(r.returncode, 0, r.stderr)
        h.wait_for(lambda: self.link(b, "vethB")["operstate"] == "UP", 10, "vethB to be up")
        self.saved_bin = h.BIN
        h.BIN = self.wrappers.name
        self.bus = None

    def tearDown(self):
        if hasattr(self, "saved_bin"):
            h.BIN = self.saved_bin

    def remove_namespaces(self):
        for ns in (self.ns_a, self.ns_b):
            run("ip", "netns", "del", ns)  # takes its end of the veth pair along

    def link(self, ns, dev):
        r = run("ip", "-n", ns, "-j", "link", "show", dev)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)[0]

    def open_bus(self, sources, args=(), collector_args=()):
        self.bus = h.Bus(sources, probe_args=list(args), collector_args=list(collector_args))
        self.addCleanup(self.close_bus)
        return self.bus

    def close_bus(self):
        codes, logs = self.bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def probe_view(self, stream):
        """The collector's view of the probe side of a stream (state, detail,
        published) from the probe's heartbeats."""
        for s in h.ctl_json(self.bus.control, "status")["streams"]:
            if s["stream"] == stream and s["probes"]:
                return s["probes"][0]
        return {}

    def wait_error(self, stream, what):
        """Wait for a stream's source to report an error; returns its detail."""
        h.wait_for(lambda: self.probe_view(stream).get("source_state") == "error", 20, what)
        return self.probe_view(stream)["detail"]

    def wait_capturing(self, stream):
        h.wait_for(lambda: self.probe_view(stream).get("source_state") == "running", 20,
                   "the capture on %s to run" % stream)
