#!/usr/bin/env python3
"""A small multi-host network in Linux network namespaces, for tapbus tests
that need several machines: capture hosts each running a probe on its own
interface with traffic on its link, and a central host with the collector,
tapbusctl and a real influxd.

    gen1 ==link== cap1 (probe: iface tap0) --+
    gen2 ==link== cap2 (probe: iface tap0) --+-- bridge br0 in central
    gen3 ==link== cap3 (probe: iface tap0) --+   (collector, tapbusctl, influxd)

- central: 198.18.0.1/24 on its bridge br0 (the management LAN); the
  collector's control endpoint and influxd listen on central's own loopback.
- capN: eth0 198.18.0.(10+N)/24, a port of br0; tap0 is the capture
  interface (no address: a mirror port that only listens).
- genN: the traffic source on capN's link, gen0 192.0.2.(10N+1)/24. It sends
  UDP to 192.0.2.(10N+2), an address nobody has, through a static neighbour
  entry naming tap0's MAC: capN receives every frame and, forwarding off and
  no address on tap0, drops it without answering. The link carries exactly
  what the test sends (IPv6 is off on every lab interface: no router or
  neighbour solicitations, no MLD).

With nat=True the capture hosts sit behind a NAT router instead, as probes on
a private network do:

    cap1, cap2 -- bridge br0 in router (198.19.0.0/24, private side)
    router: eth0 198.18.0.2 on central's br0, masquerading (nftables)

central has no route to 198.19.0.0/24: it cannot reach the probes; they
reach it (probe --connect, collector --listen).

Every name carries the test process's pid and a random tag, so runs never
collide; close() removes every namespace (with its links and bridges) and
ends every program started in them. A lab whose process was killed outright
is swept by the next one (namespaces tblab-PID-* whose PID is gone). Where
namespaces cannot be made, Lab() raises LabUnavailable with the reason, for
tests to skip with.

Programs run inside namespaces through `ip netns exec NS PROGRAM` (which
execs: the process is the program itself, so signals and kill -9 reach it).
The test process itself enters a namespace per thread (setns(2)) to send
traffic and to ask influxd and tapbusctl."""

import atexit
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import tapbus_harness as h  # noqa: E402

PREFIX = "tblab-"  # namespaces: tblab-PID-TAG-ROLE
TMP_PREFIX = "tapbus-lab-"  # temporary directories: tapbus-lab-PID-XXXX (logs, influxd)
MGMT_NET = "198.18.0"  # central's LAN (RFC 2544 benchmarking range)
NAT_NET = "198.19.0"  # the private LAN behind the router
LINK_NET = "192.0.2"  # capture links (TEST-NET-1), one /24 per link namespace pair
HDR = 14 + 20 + 8  # Ethernet + IPv4 + UDP: a UDP payload of n bytes is a frame of n + HDR
PROBE_PORT = 5556
LISTEN_PORT = 5558
CONTROL = "tcp://127.0.0.1:5557"  # central's own loopback
DPORT = 9999  # the traffic the probes' default filter keeps
FILTER = "udp port %d" % DPORT

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


class LabUnavailable(Exception):
    """Namespaces (or a tool the lab needs) are not available here."""


@contextlib.contextmanager
def in_netns(name):
    """Run the block's sockets (and the programs it starts) in network
    namespace `name`: setns(2) moves only the calling thread, and back
    afterwards. A socket keeps the namespace it was made in."""
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


def _run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), (r.stderr or r.stdout).strip()))
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_namespace(ns):
    """Kill whatever still runs in ns, then delete it (its interfaces go
    with it; the peers of its veth pairs too)."""
    r = _run("ip", "netns", "pids", ns, check=False)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _run("ip", "netns", "del", ns, check=False)


def _stale(name, prefix):
    """Whether name is prefix + PID-... of a process that no longer exists."""
    if not name.startswith(prefix):
        return False
    try:
        pid = int(name[len(prefix):].split("-")[0])
    except ValueError:
        return False
    return not _pid_alive(pid)


def sweep_stale():
    """Remove what labs whose process no longer exists (a test killed
    outright, with no chance to clean up) left: their namespaces, with the
    programs still running in them, and their temporary directories."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        names = []
    for ns in names:
        if _stale(ns, PREFIX):
            _remove_namespace(ns)
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        if _stale(name, TMP_PREFIX):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


class NsInflux(h.Influx):
    """The harness's influxd, run in a namespace (on its loopback, where the
    collector of that namespace writes to it) and asked from there."""

    def __init__(self, ns, parent=None):
        super().__init__(parent=parent)
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

    def sum(self, db, measurement, stream, fields=("packets", "bytes"), where=""):
        """Sums of fields over every point of a stream: a tuple, zeros when
        there is none."""
        q = "SELECT %s FROM %s WHERE stream = %s%s" % (
            ", ".join("sum(%s)" % f for f in fields), measurement, h._string(stream),
            (" AND " + where) if where else "")
        rows = self.points(db, q)
        if not rows:
            return tuple(0 for _ in fields)
        return tuple(rows[0]["sum_%d" % i if i else "sum"] for i in range(len(fields)))


class Collector:
    """A tapbus-collector in the central namespace, and tapbusctl to ask it."""

    def __init__(self, lab, args, control=CONTROL, name="collector"):
        self.lab = lab
        self.args = list(args)
        self.control = control
        self.name = name
        self.proc = None
        self.start()

    def start(self):
        self.proc = self.lab.spawn(self.lab.central, "tapbus-collector",
                                   self.args + ["--control", self.control])
        self.lab.wait(lambda: self.ctl("status", timeout_ms=500, check=False)[0] == 0, 30,
                      "%s to answer on %s" % (self.name, self.control))
        return self

    def restart(self, sig=signal.SIGKILL, before_start=None):
        """Stop the collector (by default with kill -9) and start it again
        with the same arguments; before_start() runs in between."""
        self.proc.stop(sig)
        if before_start is not None:
            before_start()
        return self.start()

    def ctl(self, *args, timeout_ms=5000, check=True):
        """tapbusctl against this collector, run in central; (code, out, err)."""
        return self.lab.ctl([self.control], *args, timeout_ms=timeout_ms, check=check)

    def json(self, *args):
        return json.loads(self.ctl("--json", *args)[1])

    def stats(self, stream):
        return self.json("stats", stream)

    def status(self):
        return self.json("status")

    def stream_status(self, stream):
        for s in self.status()["streams"]:
            if s["stream"] == stream:
                return s
        return None

    def probe_view(self, stream, probe):
        """What this collector heard from one probe of a stream ({} before
        anything was heard)."""
        s = self.stream_status(stream)
        for p in (s or {}).get("probes", []):
            if p["id"] == probe:
                return p
        return {}

    def endpoint(self, ep):
        for e in self.status()["collector"]["endpoints"]:
            if e["endpoint"] == ep:
                return e
        return None


class Lab:
    """The network (see the module's text). Use as a context manager, or call
    close() (which is also run at exit and on SIGTERM for any lab still up)."""

    live = []  # labs not closed yet, for the exit handler

    def __init__(self, hosts=2, nat=False):
        if not 1 <= hosts <= 3:
            raise ValueError("1 to 3 capture hosts")
        if os.geteuid() != 0:
            raise LabUnavailable("the lab needs root (network namespaces, live capture)")
        if shutil.which("ip") is None:
            raise LabUnavailable("the lab needs iproute2 ('ip')")
        if nat and shutil.which("nft") is None:
            raise LabUnavailable("the NAT lab needs nftables ('nft')")
        if not h.BIN:
            raise LabUnavailable("TAPBUS_BIN is not set")
        sweep_stale()
        self.hosts = hosts
        self.nat = nat
        tag = "%d-%04x" % (os.getpid(), random.getrandbits(16))
        self.central = PREFIX + tag + "-c"
        self.router = PREFIX + tag + "-r" if nat else None
        self.caps = [PREFIX + tag + "-cap%d" % n for n in range(1, hosts + 1)]
        self.gens = [PREFIX + tag + "-gen%d" % n for n in range(1, hosts + 1)]
        self.namespaces = []
        self.procs = []
        self.probes = {}  # host number -> its probe's h.Proc (the latest started)
        self.influxes = []
        self._lock = threading.Lock()
        self.tmp = tempfile.mkdtemp(prefix=TMP_PREFIX + "%d-" % os.getpid())
        Lab.live.append(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # --- building and removing ----------------------------------------------

    def _netns(self, ns):
        r = _run("ip", "netns", "add", ns, check=False)
        if r.returncode != 0:
            raise LabUnavailable("cannot create network namespace %s: %s"
                                 % (ns, r.stderr.strip()))
        self.namespaces.append(ns)
        # Before any interface exists, so none of them gets IPv6 (no router
        # solicitations, MLD or DAD on the links).
        with in_netns(ns):
            for conf in ("default", "all"):
                path = "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % conf
                if os.path.exists(path):  # absent: a kernel without IPv6
                    with open(path, "w") as f:
                        f.write("1")
        _run("ip", "-n", ns, "link", "set", "lo", "up")

    def _link_add(self, *cmd):
        """ip link add ...: a kernel without veth or bridge support cannot
        hold the lab."""
        r = _run("ip", *cmd, check=False)
        if r.returncode != 0:
            raise LabUnavailable("cannot create a link (ip %s): %s"
                                 % (" ".join(cmd), r.stderr.strip()))

    def _veth(self, ns_a, dev_a, ns_b, dev_b):
        self._link_add("link", "add", dev_a, "netns", ns_a, "type", "veth",
                       "peer", "name", dev_b, "netns", ns_b)

    def _bridge(self, ns, dev="br0"):
        self._link_add("-n", ns, "link", "add", dev, "type", "bridge")
        _run("ip", "-n", ns, "link", "set", dev, "up")

    def _sysctl(self, ns, key, value):
        with in_netns(ns):
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(str(value))

    def mac(self, ns, dev):
        return json.loads(_run("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["address"]

    def _build(self):
        for ns in [self.central] + ([self.router] if self.nat else []) + self.caps + self.gens:
            self._netns(ns)
        self._bridge(self.central)
        _run("ip", "-n", self.central, "addr", "add", MGMT_NET + ".1/24", "dev", "br0")
        lan_ns, lan_net = self.central, MGMT_NET
        if self.nat:
            # The router: eth0 on central's LAN, br0 for the private side.
            self._veth(self.router, "eth0", self.central, "pr")
            _run("ip", "-n", self.central, "link", "set", "pr", "master", "br0", "up")
            _run("ip", "-n", self.router, "addr", "add", MGMT_NET + ".2/24", "dev", "eth0")
            _run("ip", "-n", self.router, "link", "set", "eth0", "up")
            self._bridge(self.router)
            _run("ip", "-n", self.router, "addr", "add", NAT_NET + ".1/24", "dev", "br0")
            self._sysctl(self.router, "net.ipv4.ip_forward", 1)
            rules = ("table ip nat {\n chain post {\n"
                     "  type nat hook postrouting priority srcnat; policy accept;\n"
                     "  ip saddr %s.0/24 oifname \"eth0\" masquerade\n }\n}\n" % NAT_NET)
            r = subprocess.run(["ip", "netns", "exec", self.router, "nft", "-f", "-"],
                               input=rules, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise LabUnavailable("cannot set up NAT with nftables: %s" % r.stderr.strip())
            lan_ns, lan_net = self.router, NAT_NET
        for n, (cap, gen) in enumerate(zip(self.caps, self.gens), start=1):
            port = "p%d" % n
            self._veth(cap, "eth0", lan_ns, port)
            _run("ip", "-n", lan_ns, "link", "set", port, "master", "br0", "up")
            _run("ip", "-n", cap, "addr", "add", "%s.%d/24" % (lan_net, 10 + n), "dev", "eth0")
            _run("ip", "-n", cap, "link", "set", "eth0", "up")
            if self.nat:
                _run("ip", "-n", cap, "route", "add", "default", "via", NAT_NET + ".1")
            self._veth(gen, "gen0", cap, "tap0")
            _run("ip", "-n", cap, "link", "set", "tap0", "up")
            _run("ip", "-n", gen, "addr", "add", "%s/24" % self.gen_addr(n), "dev", "gen0")
            _run("ip", "-n", gen, "link", "set", "gen0", "up")
            _run("ip", "-n", gen, "neigh", "replace", self.dst_addr(n), "lladdr",
                 self.mac(cap, "tap0"), "dev", "gen0", "nud", "permanent")
        # Links come up asynchronously: wait until every one carries traffic.
        for ns, dev in self._devices():
            self.wait(lambda: self._oper(ns, dev) == "UP", 10, "%s in %s to come up" % (dev, ns))

    def _devices(self):
        for n, (cap, gen) in enumerate(zip(self.caps, self.gens), start=1):
            yield cap, "eth0"
            yield cap, "tap0"
            yield gen, "gen0"
        if self.nat:
            yield self.router, "eth0"

    def _oper(self, ns, dev):
        return json.loads(_run("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["operstate"]

    def close(self):
        """End every program started in the lab, stop influxd, remove every
        namespace and the temporary directory. Safe to call twice."""
        with self._lock:
            for p in self.procs:
                if p.p.poll() is None:
                    p.p.kill()
                    p.p.wait()
                if not p.log.closed:
                    p.log.close()
            for ix in self.influxes:
                try:
                    ix.close()
                except Exception:
                    pass
            for ns in reversed(self.namespaces):
                _remove_namespace(ns)
            self.namespaces = []
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self in Lab.live:
                Lab.live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- addresses ------------------------------------------------------------

    def cap_addr(self, n):
        return "%s.%d" % (NAT_NET if self.nat else MGMT_NET, 10 + n)

    def gen_addr(self, n):
        return "%s.%d" % (LINK_NET, 10 * n + 1)

    def dst_addr(self, n):
        return "%s.%d" % (LINK_NET, 10 * n + 2)

    def central_addr(self):
        return MGMT_NET + ".1"

    def probe_endpoint(self, n):
        return "tcp://%s:%d" % (self.cap_addr(n), PROBE_PORT)

    def listen_endpoint(self):
        return "tcp://%s:%d" % (self.central_addr(), LISTEN_PORT)

    # --- programs -----------------------------------------------------------

    def spawn(self, ns, program, args):
        """Start one of our programs in namespace ns; returns its h.Proc."""
        p = h.Proc(program, list(args), self.tmp, prefix=("ip", "netns", "exec", ns))
        with self._lock:
            self.procs.append(p)
        return p

    def probe(self, n, args=(), sources=None, connect=None):
        """Start the probe of capture host n (1-based): stream "capN" capturing
        tap0 with the default filter, publishing on its management address
        (or connecting to `connect`)."""
        name = "cap%d" % n
        argv = ["--id", name, "--buffer-mb", "4", "--batch-ms", "50", "--filter", FILTER]
        argv += ["--connect", connect] if connect else ["--publish", self.probe_endpoint(n)]
        for stream, spec in (sources or [(name, "iface:tap0")]):
            argv += ["--source", "%s=%s" % (stream, spec)]
        p = self.spawn(self.caps[n - 1], "tapbus-probe", argv + list(args))
        p.argv = argv + list(args)
        p.host = n
        self.probes[n] = p
        return p

    def restart(self, proc, sig=signal.SIGKILL):
        """Stop a program (by default without a chance to say goodbye) and
        start it again with the same arguments; returns the new h.Proc."""
        proc.stop(sig)
        ns = proc.p.args[3]
        new = self.spawn(ns, proc.name, proc.p.args[5:])
        for attr in ("argv", "host"):
            if hasattr(proc, attr):
                setattr(new, attr, getattr(proc, attr))
        if self.probes.get(getattr(proc, "host", None)) is proc:
            self.probes[proc.host] = new
        return new

    def collector(self, args=(), probes=None, control=CONTROL, name="collector"):
        """Start a collector in central. probes: host numbers it subscribes
        to with --probe (default all), [] for none (e.g. with --listen)."""
        argv = []
        for n in (range(1, self.hosts + 1) if probes is None else probes):
            argv += ["--probe", self.probe_endpoint(n)]
        return Collector(self, argv + list(args), control, name)

    def influx(self):
        """A real influxd in central, on central's loopback; started."""
        ix = NsInflux(self.central, parent=self.tmp)
        with self._lock:
            self.influxes.append(ix)
        return ix.start()

    def ctl(self, controls, *args, timeout_ms=5000, check=True):
        """tapbusctl in central with --collector for each of controls."""
        cmd = [os.path.join(h.BIN, "tapbusctl"), "--timeout", str(timeout_ms)]
        for c in controls:
            cmd += ["--collector", c]
        with in_netns(self.central):
            r = subprocess.run(cmd + list(args), capture_output=True, text=True,
                               timeout=timeout_ms / 1000 + 30)
        if check and r.returncode != 0:
            raise AssertionError("tapbusctl %s failed (%d): %s"
                                 % (" ".join(args), r.returncode, r.stderr.strip()))
        return r.returncode, r.stdout, r.stderr

    def logs(self, lines=40):
        """The tail of every program's log, for failure messages."""
        out = []
        for p in self.procs:
            try:
                text = p.output()
            except OSError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            out.append("--- %s (%s) ---\n%s" % (p.name, " ".join(p.p.args[3:4]), tail))
        return "\n".join(out)

    def wait(self, cond, timeout, what, interval=0.1):
        """h.wait_for, with the programs' logs in the failure."""
        try:
            return h.wait_for(cond, timeout, what, interval)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.logs())) from None

    # --- links and traffic ----------------------------------------------------

    def link(self, n, up):
        """Cut (up=False) or restore capture host n's management link, at the
        switch: its port on the bridge goes down, as a pulled cable."""
        ns = self.router if self.nat else self.central
        _run("ip", "-n", ns, "link", "set", "p%d" % n, "up" if up else "down")

    def sender(self, n, sport=40000):
        """A UDP socket in genN, bound to its address and sport."""
        with in_netns(self.gens[n - 1]):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.gen_addr(n), sport))
        return s

    def send(self, n, count, sizes, dport=DPORT, sport=40000):
        """Send count UDP datagrams from genN across capN's link, payload i
        of sizes[i % len(sizes)] bytes. Returns the frames' wire lengths."""
        with self.sender(n, sport) as s:
            dst = (self.dst_addr(n), dport)
            for i in range(count):
                s.sendto(b"x" * sizes[i % len(sizes)], dst)
        return [sizes[i % len(sizes)] + HDR for i in range(count)]


class Steady(threading.Thread):
    """UDP datagrams of one size on capture host n's link, one every
    `interval` seconds, until stop() (which returns how many were sent): a
    stream that is still flowing whenever the test acts on it."""

    def __init__(self, lab, n, size, interval=0.001, dport=DPORT, sport=40000):
        super().__init__(name="steady-%d" % n, daemon=True)
        self.sock = lab.sender(n, sport)
        self.dst = (lab.dst_addr(n), dport)
        self.payload = b"x" * size
        self.interval = interval
        self.sent = 0
        self.error = None
        self._stop_event = threading.Event()
        self.start()

    def run(self):
        try:
            while not self._stop_event.wait(self.interval):
                self.sock.sendto(self.payload, self.dst)
                self.sent += 1
        except OSError as e:
            self.error = e
        finally:
            self.sock.close()

    def stop(self):
        self._stop_event.set()
        self.join()
        if self.error is not None:
            raise self.error
        return self.sent


def _close_all():
    for lab in list(Lab.live):
        lab.close()


atexit.register(_close_all)


def main():
    """Build a lab and keep it until Enter or Ctrl-C, to look around in it
    (`ip netns exec NAME ...`)."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--hosts", type=int, default=2, help="capture hosts, 1-3 (default 2)")
    ap.add_argument("--nat", action="store_true", help="capture hosts behind a NAT router")
    opt = ap.parse_args()
    h.BIN = h.BIN or "(unset)"
    try:
        lab = Lab(opt.hosts, opt.nat)
    except LabUnavailable as e:
        sys.exit("lab: %s" % e)
    with lab:
        print("central %s: %s (br0)" % (lab.central, lab.central_addr()))
        if lab.nat:
            print("router  %s: %s.2 (eth0), %s.1 (br0), masquerading" % (lab.router, MGMT_NET,
                                                                      NAT_NET))
        for n in range(1, lab.hosts + 1):
            print("cap%d    %s: %s (eth0), tap0 captures the link from %s (%s -> %s)"
                  % (n, lab.caps[n - 1], lab.cap_addr(n), lab.gens[n - 1], lab.gen_addr(n),
                     lab.dst_addr(n)))
        try:
            input("Enter (or Ctrl-C) removes the lab. ")
        except (KeyboardInterrupt, EOFError):
            print()


if __name__ == "__main__":
    main()
