"""Helpers for tapbus integration tests: run the real programs on a real
ZeroMQ bus over loopback TCP, drive them with tapbusctl, and ask tshark what a
capture contains.

Every wait polls a condition with a deadline; nothing sleeps a fixed time and
hopes."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("TAPBUS_BIN", "")
CORPUS = os.environ.get("TAPBUS_CORPUS", "")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint():
    return "tcp://127.0.0.1:%d" % free_port()


def wait_for(cond, timeout, what, interval=0.05):
    """Poll cond() until it returns a true value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Proc:
    """A program of ours running in the background, its log in a file."""

    count = 0

    def __init__(self, name, args, logdir):
        self.name = name
        Proc.count += 1
        self.log_path = os.path.join(logdir, "%s-%d.log" % (name, Proc.count))
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen([os.path.join(BIN, name)] + args, stdout=self.log,
                                  stderr=subprocess.STDOUT)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal the program and return its exit code."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("%s did not stop within %d s" % (self.name, timeout))
        self.log.close()
        return self.p.returncode

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def ctl(control, *args, timeout_ms=5000, check=True):
    """Run tapbusctl; returns (exit code, stdout, stderr)."""
    cmd = [os.path.join(BIN, "tapbusctl"), "--collector", control,
           "--timeout", str(timeout_ms)] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_ms / 1000 + 30)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr))
    return r.returncode, r.stdout, r.stderr


def ctl_json(control, *args):
    _, out, _ = ctl(control, "--json", *args)
    return json.loads(out)


class Bus:
    """One probe and one collector connected over loopback TCP."""

    def __init__(self, sources, probe_args=(), collector_args=(), reverse=False):
        """reverse: the collector binds (--listen) and the probe connects
        (--connect), as across NAT."""
        self.tmp = tempfile.TemporaryDirectory(prefix="tapbus-it-")
        self.pub = endpoint()
        self.control = endpoint()
        self.probe_argv = ["--id", "it-probe", "--connect" if reverse else "--publish", self.pub]
        for stream, spec in sources:
            self.probe_argv += ["--source", "%s=%s" % (stream, spec)]
        self.probe_argv += list(probe_args)
        self.probe = Proc("tapbus-probe", self.probe_argv, self.tmp.name)
        self.collector = Proc("tapbus-collector",
                              ["--listen" if reverse else "--probe", self.pub,
                               "--control", self.control] + list(collector_args), self.tmp.name)
        wait_for(lambda: ctl(self.control, "status", timeout_ms=500, check=False)[0] == 0,
                 30, "the collector to answer")

    def restart_probe(self, sig=signal.SIGKILL):
        """Stop the probe (by default without a chance to say goodbye) and start
        a new one with the same arguments; returns the old one's exit code."""
        code = self.probe.stop(sig)
        self.probe = Proc("tapbus-probe", self.probe_argv, self.tmp.name)
        return code

    def add_collector(self):
        """A second collector on the same probe; returns its control endpoint."""
        control = endpoint()
        self.collector2 = Proc("tapbus-collector", ["--probe", self.pub, "--control", control],
                               self.tmp.name)
        wait_for(lambda: ctl(control, "status", timeout_ms=500, check=False)[0] == 0,
                 30, "the second collector to answer")
        return control

    def start(self, *streams):
        return ctl_json(self.control, "start", *streams)

    def stats(self, stream):
        return ctl_json(self.control, "stats", stream)

    def probe_view(self, stream):
        """What the collector heard from the (first) probe of a stream: its
        source state, detail and counters ({} before anything was heard)."""
        for s in ctl_json(self.control, "status")["streams"]:
            if s["stream"] == stream and s["probes"]:
                return s["probes"][0]
        return {}

    def wait_finished(self, streams, timeout=120, control=None):
        def done():
            st = ctl_json(control or self.control, "status")
            states = {s["stream"]: s["state"] for s in st["streams"]}
            return all(states.get(s) == "finished" for s in streams)
        wait_for(done, timeout, "streams to finish", interval=0.1)

    def close(self):
        if hasattr(self, "collector2"):
            self.collector2.stop()
        codes = (self.probe.stop(), self.collector.stop())
        logs = self.probe.output() + self.collector.output()
        self.tmp.cleanup()
        return codes, logs


# --- tshark as the independent oracle ------------------------------------

_EXT = {0: 4, 43: 5, 44: 6, 60: 7}  # IPv6 extension header -> field column


def epoch_ns(text):
    """'1562346644.789433000' -> nanoseconds since the epoch, exactly. tshark
    prints an out-of-range sub-second field (e.g. 1000000000 ns) in full."""
    sign = -1 if text.startswith("-") else 1
    sec, _, frac = text.lstrip("-").partition(".")
    ns = int(frac) * 10 ** (9 - len(frac)) if len(frac) <= 9 else int(frac)
    return sign * (int(sec) * 1000000000 + ns)


def tshark_expect(path):
    """What tshark sees in a capture: totals, extremes and per-class counts,
    classified by the first IP header as tapbus does."""
    fields = ["frame.len", "frame.protocols", "ip.proto", "ipv6.nxt", "ipv6.hopopts.nxt",
              "ipv6.routing.nxt", "ipv6.fraghdr.nxt", "ipv6.dstopts.nxt", "frame.time_epoch"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "occurrence=f",
           "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    classes = {c: {"packets": 0, "bytes": 0}
               for c in ("tcp", "udp", "icmp", "icmpv6", "other", "non_ip")}
    total = {"packets": 0, "bytes": 0, "min_len": None, "max_len": None,
             "first_ts": None, "last_ts": None}
    for line in r.stdout.splitlines():
        col = line.split("\t")
        col += [""] * (len(fields) - len(col))
        length = int(col[0])
        protos = col[1].split(":")
        first = next((p for p in protos if p in ("ip", "ipv6")), None)
        proto = None
        if first == "ip" and col[2]:
            proto = int(col[2])
        elif first == "ipv6" and col[3]:
            proto = int(col[3])
            for _ in range(8):
                if proto not in _EXT or not col[_EXT[proto]]:
                    break
                proto = int(col[_EXT[proto]])
        if proto is None:
            cls = "non_ip"
        else:
            cls = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(proto, "other")
        classes[cls]["packets"] += 1
        classes[cls]["bytes"] += length
        total["packets"] += 1
        ts = epoch_ns(col[8])
        total["first_ts"] = ts if total["first_ts"] is None else min(total["first_ts"], ts)
        total["last_ts"] = ts if total["last_ts"] is None else max(total["last_ts"], ts)
        total["bytes"] += length
        total["min_len"] = length if total["min_len"] is None else min(total["min_len"], length)
        total["max_len"] = length if total["max_len"] is None else max(total["max_len"], length)
    total["protocols"] = classes
    # tshark fails on link types it does not know (it then prints nothing) and
    # on files cut short (after printing every complete packet).
    errors = [ln for ln in r.stderr.splitlines() if ln and "could be dangerous" not in ln]
    total["tshark_error"] = " ".join(errors)[:300] if r.returncode else ""
    return total
