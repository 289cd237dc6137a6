"""Helpers for tapbus integration tests: run the real programs on a real
ZeroMQ bus over loopback TCP, drive them with tapbusctl, and ask tshark what a
capture contains.

Every wait polls a condition with a deadline; nothing sleeps a fixed time and
hopes."""

import atexit
import base64
import gzip
import http.server
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.environ.get("TAPBUS_BIN", "")
CORPUS = os.environ.get("TAPBUS_CORPUS", "")


def corpus_file(name):
    """Path of a capture of the test corpus (tests/data/corpus); fails naming
    the file when it is not there."""
    path = os.path.join(CORPUS, name)
    if not os.path.isfile(path):
        raise AssertionError("test capture missing: %s (TAPBUS_CORPUS=%r)" % (path, CORPUS))
    return path


def write_private(path, text):
    """Write text to a new file that only its owner may read (mode 0600), as
    the gateway wants its credentials file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask, or the mode of a file already there
    with os.fdopen(fd, "w") as f:
        f.write(text)


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
    """A program of ours running in the background, its log in a file. Any
    still running when the test process ends (a test that failed before its
    clean-up) is killed then, so no program outlives its test."""

    count = 0
    running = []

    def __init__(self, name, args, logdir, prefix=()):
        """prefix: a command that runs the program (e.g. setpriv ...)."""
        self.name = name
        Proc.count += 1
        self.log_path = os.path.join(logdir, "%s-%d.log" % (name, Proc.count))
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(list(prefix) + [os.path.join(BIN, name)] + args, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        Proc.running = [q for q in Proc.running if q.poll() is None] + [self.p]

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


def _kill_leftovers():
    for p in Proc.running:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_leftovers)
# A test killed by ctest's timeout gets SIGTERM: clean up on the way out too.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


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


def control_requests(control):
    """How many control requests the collector has taken, the status request
    asking this included. It is sent once (--retries 0, a long timeout), so
    each call adds exactly one to the count: what others sent meanwhile is
    the growth between two calls less one."""
    _, out, _ = ctl(control, "--retries", "0", "--json", "status", timeout_ms=30000)
    return json.loads(out)["collector"]["requests"]["received"]


def tcp_connections(pid, port):
    """The local ports of the TCP connections that process pid holds to
    127.0.0.1:port (its socket descriptors, looked up in /proc/net/tcp); an
    empty set once it has exited. Each new connection has a new local port,
    so this shows a client giving up a connection and opening another."""
    inodes = set()
    fds = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fds)
    except OSError:
        return set()
    for fd in names:
        try:
            link = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    # The kernel prints the address as one 32-bit number in host order.
    peer = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton("127.0.0.1"))[0], port)
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)  # the column names
        for line in f:
            col = line.split()
            if col[2] == peer and col[9] in inodes:
                ports.add(int(col[1].split(":")[1], 16))
    return ports


class Bus:
    """One probe and one collector connected over loopback TCP."""

    def __init__(self, sources, probe_args=(), collector_args=(), reverse=False, probe_prefix=()):
        """reverse: the collector binds (--listen) and the probe connects
        (--connect), as across NAT. probe_prefix: a command the probe runs
        under (e.g. setpriv to drop root)."""
        self.probe_prefix = list(probe_prefix)
        self.tmp = tempfile.TemporaryDirectory(prefix="tapbus-it-")
        self.pub = endpoint()
        self.control = endpoint()
        self.probe_argv = ["--id", "it-probe", "--connect" if reverse else "--publish", self.pub]
        for stream, spec in sources:
            self.probe_argv += ["--source", "%s=%s" % (stream, spec)]
        self.probe_argv += list(probe_args)
        self.probe = Proc("tapbus-probe", self.probe_argv, self.tmp.name, self.probe_prefix)
        self.collector = Proc("tapbus-collector",
                              ["--listen" if reverse else "--probe", self.pub,
                               "--control", self.control] + list(collector_args), self.tmp.name)
        try:
            wait_for(lambda: ctl(self.control, "status", timeout_ms=500, check=False)[0] == 0,
                     30, "the collector to answer")
            # The probe announces its streams as soon as the collector
            # subscribes to the offers: once they are heard, start finds them
            # offered.
            self.wait_offered([s for s, _ in sources])
        except BaseException:
            self.probe.p.kill()
            self.collector.p.kill()
            raise

    def offered(self, control=None):
        """{(stream, probe): entry} of what the collector hears offered."""
        return {(e["stream"], e["probe"]): e
                for e in ctl_json(control or self.control, "streams")["streams"]
                if e["probe"] is not None}

    def wait_offered(self, streams, control=None, timeout=30):
        def heard():
            if self.probe.p.poll() is not None:
                return True  # a probe that refused its arguments offers nothing
            have = {s for s, _ in self.offered(control)}
            return all(s in have for s in streams)
        wait_for(heard, timeout, "the probe's offers to reach the collector")

    def restart_probe(self, sig=signal.SIGKILL):
        """Stop the probe (by default without a chance to say goodbye) and start
        a new one with the same arguments; returns the old one's exit code."""
        code = self.probe.stop(sig)
        self.probe = Proc("tapbus-probe", self.probe_argv, self.tmp.name, self.probe_prefix)
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

    def bus_messages(self, control=None):
        """How many messages the collector has taken from the bus."""
        return ctl_json(control or self.control, "status")["collector"]["bus"]["messages"]

    def wait_heartbeats(self, n, control=None, timeout=60):
        """Wait until the collector has taken n more messages from the bus.
        Once every stream has ended, only the probe's heartbeats come, one a
        second: this marks the collector's time moving on by at least n - 1
        seconds, seen in what it received rather than slept."""
        first = self.bus_messages(control)
        wait_for(lambda: self.bus_messages(control) >= first + n, timeout,
                 "%d more heartbeat(s) from the probe" % n, interval=0.1)

    def wait_finished(self, streams, timeout=120, control=None, states=("finished", "error")):
        """Wait until every stream has ended: finished, or error (its source
        could not be read)."""
        def done():
            st = ctl_json(control or self.control, "status")
            now = {s["stream"]: s["state"] for s in st["streams"]}
            return all(now.get(s) in states for s in streams)
        wait_for(done, timeout, "streams to finish", interval=0.1)

    def close(self):
        if hasattr(self, "collector2"):
            self.collector2.stop()
        codes = (self.probe.stop(), self.collector.stop())
        logs = self.probe.output() + self.collector.output()
        self.tmp.cleanup()
        return codes, logs


# --- tshark as the independent oracle ------------------------------------

# IPv6 extension header -> the field naming the header after it.
_EXT = {0: "ipv6.hopopts.nxt", 43: "ipv6.routing.nxt", 44: "ipv6.fraghdr.nxt",
        60: "ipv6.dstopts.nxt", 51: "ah.next_header"}
# Fields naming the most active tuple's parts: addresses by family, ports (or
# ICMP type and code) by the upper-layer protocol of the first IP header.
_ADDR = {"ip": ("ip.src", "ip.dst"), "ipv6": ("ipv6.src", "ipv6.dst")}
_PORTS = {6: ("tcp.srcport", "tcp.dstport"), 17: ("udp.srcport", "udp.dstport"),
          136: ("udp.srcport", "udp.dstport"), 132: ("sctp.srcport", "sctp.dstport"),
          33: ("dccp.srcport", "dccp.dstport"), 1: ("icmp.type", "icmp.code"),
          58: ("icmpv6.type", "icmpv6.code")}


def epoch_ns(text):
    """'1562346644.789433000' -> nanoseconds since the epoch, exactly. tshark
    prints an out-of-range sub-second field (e.g. 1000000000 ns) in full."""
    sign = -1 if text.startswith("-") else 1
    sec, _, frac = text.lstrip("-").partition(".")
    ns = int(frac) * 10 ** (9 - len(frac)) if len(frac) <= 9 else int(frac)
    return sign * (int(sec) * 1000000000 + ns)


def tshark_expect(path, with_tuples=False):
    """What tshark sees in a capture: totals, extremes and per-class counts,
    classified by the first IP header as tapbus does, and the most active
    5-tuple of the IP packets ("top": {src, dst, proto, sport, dport, packets,
    unique}, None without IP packets; unique is false when another tuple has
    as many packets), and with with_tuples every 5-tuple's packets
    ("tuples": {(src, dst, proto, sport, dport): packets}; not JSON). Ports
    are those of TCP, UDP, UDP-Lite, SCTP and DCCP, ICMP/ICMPv6 type and
    code, else 0, as in tapbus."""
    fields = ["frame.len", "frame.protocols", "ip.proto", "ipv6.nxt", "frame.time_epoch"]
    fields += sorted(_EXT.values())
    fields += sorted({f for pair in list(_ADDR.values()) + list(_PORTS.values()) for f in pair})
    at = {f: i for i, f in enumerate(fields)}
    # No reassembly: like tapbus, a fragment is taken as it comes (the first
    # one carries the ports, the others none).
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "occurrence=f",
           "-E", "separator=\t", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    classes = {c: {"packets": 0, "bytes": 0}
               for c in ("tcp", "udp", "icmp", "icmpv6", "other", "non_ip")}
    total = {"packets": 0, "bytes": 0, "min_len": None, "max_len": None,
             "first_ts": None, "last_ts": None}
    tuples = {}
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
                if proto not in _EXT or not col[at[_EXT[proto]]]:
                    break
                proto = int(col[at[_EXT[proto]]])
        if proto is not None:
            ports = (0, 0)
            if proto in _PORTS and col[at[_PORTS[proto][0]]] and col[at[_PORTS[proto][1]]]:
                ports = (int(col[at[_PORTS[proto][0]]]), int(col[at[_PORTS[proto][1]]]))
            key = (col[at[_ADDR[first][0]]], col[at[_ADDR[first][1]]], proto) + ports
            tuples[key] = tuples.get(key, 0) + 1
        if proto is None:
            cls = "non_ip"
        else:
            cls = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(proto, "other")
        classes[cls]["packets"] += 1
        classes[cls]["bytes"] += length
        total["packets"] += 1
        ts = epoch_ns(col[4])
        total["first_ts"] = ts if total["first_ts"] is None else min(total["first_ts"], ts)
        total["last_ts"] = ts if total["last_ts"] is None else max(total["last_ts"], ts)
        total["bytes"] += length
        total["min_len"] = length if total["min_len"] is None else min(total["min_len"], length)
        total["max_len"] = length if total["max_len"] is None else max(total["max_len"], length)
    total["protocols"] = classes
    if with_tuples:
        total["tuples"] = tuples
    total["top"] = None
    if tuples:
        ranked = sorted(tuples.items(), key=lambda kv: -kv[1])
        (src, dst, proto, sport, dport), n = ranked[0]
        total["top"] = {"src": src, "dst": dst, "proto": proto, "sport": sport,
                        "dport": dport, "packets": n,
                        "unique": len(ranked) == 1 or ranked[1][1] < n}
    # tshark fails on link types it does not know (it then prints nothing) and
    # on files cut short (after printing every complete packet).
    errors = [ln for ln in r.stderr.splitlines() if ln and "could be dangerous" not in ln]
    total["tshark_error"] = " ".join(errors)[:300] if r.returncode else ""
    return total


# --- InfluxDB 1.x as the real sink, and a scripted HTTP stand-in ----------

INFLUXD = os.environ.get("TAPBUS_INFLUXD", "influxd")

# Loopback servers are asked directly, whatever proxy the environment names.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _port_free(port):
    """Whether a server could listen on 127.0.0.1:port now. Connections left
    in TIME_WAIT do not count, as for any server that sets SO_REUSEADDR."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ident(name):
    """An InfluxQL identifier, double-quoted."""
    return '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')


def _string(text):
    """An InfluxQL string literal, single-quoted."""
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "\\'")


class Influx:
    """A real InfluxDB 1.x server (influxd) of the test's own: loopback ports
    nothing else uses and a temporary directory for its configuration, data
    and log, so it touches neither /var/lib/influxdb nor the default ports.

        with Influx(auth=True) as influx:          # running inside the block
            influx.create_admin("admin", "secret")
            influx.create_db("tapbus")
            ...                                    # write to influx.url
            rows = influx.points("tapbus", "SELECT * FROM m GROUP BY *")

    stop() (or kill()) and start() again keep the data directory and the
    ports: what was written survives and clients reconnect to the same URL.
    The binary is influxd from PATH unless TAPBUS_INFLUXD names another."""

    def __init__(self, auth=False, parent=None):
        """parent: the directory to make its temporary directory in
        (default: the system's)."""
        self.auth = auth
        self.dir = tempfile.mkdtemp(prefix="tapbus-influx-", dir=parent)
        self.http_port = free_port()
        self.rpc_port = free_port()  # backup/restore; bound even if unused
        while self.rpc_port == self.http_port:
            self.rpc_port = free_port()
        self.admin = None  # (user, password) once create_admin() made one
        self.p = None
        self._log = None
        self._saved_log = None  # the log's text once close() removed the directory
        self.conf_path = os.path.join(self.dir, "influxdb.conf")
        self.log_path = os.path.join(self.dir, "influxd.log")

        def path(name):
            # json.dumps quotes a path as a TOML basic string.
            return json.dumps(os.path.join(self.dir, name))
        with open(self.conf_path, "w") as f:
            f.write("""\
reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %s

[data]
  dir = %s
  wal-dir = %s
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:%d"
  log-enabled = false
  auth-enabled = %s

[monitor]
  store-enabled = false

[ifql]
  enabled = false
""" % (self.rpc_port, path("meta"), path("data"), path("wal"), self.http_port,
       "true" if auth else "false"))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def running(self):
        return self.p is not None and self.p.poll() is None

    def start(self, timeout=30):
        """Start influxd and wait until /ping answers 204; returns self."""
        if self.running():
            raise AssertionError("influxd is already running at %s" % self.url)
        for what, port in (("HTTP", self.http_port), ("RPC", self.rpc_port)):
            if not _port_free(port):
                raise AssertionError("cannot start influxd: its %s port 127.0.0.1:%d "
                                     "was taken meanwhile" % (what, port))
        # INFLUXDB_* variables would override the configuration file.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
        self._log = open(self.log_path, "ab")  # appended to across restarts
        self.p = subprocess.Popen([INFLUXD, "-config", self.conf_path], env=env,
                                  stdin=subprocess.DEVNULL, stdout=self._log,
                                  stderr=subprocess.STDOUT)
        Proc.running = [q for q in Proc.running if q.poll() is None] + [self.p]

        def up():
            if self.p.poll() is not None:
                raise AssertionError("influxd exited with code %d while starting"
                                     % self.p.returncode)
            return self._ping()
        try:
            wait_for(up, timeout, "influxd to answer /ping at %s" % self.url, interval=0.1)
        except AssertionError as e:
            self.stop(signal.SIGKILL)
            raise AssertionError("%s\n--- tail of %s ---\n%s"
                                 % (e, self.log_path, self.log_tail())) from None
        return self

    def _ping(self):
        try:
            with _opener.open(self.url + "/ping", timeout=2) as r:
                return r.status == 204
        except OSError:  # refused, reset, or an HTTP error status
            return False

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal influxd and return its exit code (None if never started)."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                self._log.close()
                raise AssertionError("influxd did not stop within %d s" % timeout)
        self._log.close()
        return self.p.returncode

    def kill(self):
        """Stop influxd without a chance to shut down cleanly."""
        return self.stop(signal.SIGKILL)

    def log(self):
        """Everything influxd printed, over all its starts."""
        if self._saved_log is not None:
            return self._saved_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=30):
        return "\n".join(self.log().splitlines()[-lines:])

    def close(self):
        """Stop influxd and remove the directory; log() still answers."""
        if self._saved_log is not None:
            return
        try:
            self.stop()
        finally:
            self._saved_log = self.log()
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self if self.running() else self.start()

    def __exit__(self, *exc):
        self.close()

    def query(self, q, db=None, user=None, password=None, epoch=None):
        """POST q to /query and return the parsed JSON answer whatever the HTTP
        status: InfluxDB reports a refusal as {"error": ...}, a failed statement
        as results[i]["error"]. user: send HTTP basic authentication. epoch
        ("ns", "u", "ms", "s"): times as integers in that unit, not RFC 3339."""
        form = {"q": q}
        if db is not None:
            form["db"] = db
        if epoch is not None:
            form["epoch"] = epoch
        req = urllib.request.Request(self.url + "/query", method="POST",
                                     data=urllib.parse.urlencode(form).encode())
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if user is not None:
            cred = base64.b64encode(("%s:%s" % (user, password or "")).encode()).decode()
            req.add_header("Authorization", "Basic " + cred)
        try:
            with _opener.open(req, timeout=30) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            with e:
                status, body = e.code, e.read()
        try:
            return json.loads(body)
        except ValueError:
            raise AssertionError("/query answered %d without JSON: %r"
                                 % (status, body[:300])) from None

    def write(self, db, lines, precision="ns"):
        """POST line protocol to /write (as the admin when there is one);
        returns the HTTP status."""
        url = "%s/write?%s" % (self.url, urllib.parse.urlencode({"db": db,
                                                                  "precision": precision}))
        req = urllib.request.Request(url, method="POST", data=lines.encode())
        if self.admin is not None:
            cred = base64.b64encode(("%s:%s" % self.admin).encode()).decode()
            req.add_header("Authorization", "Basic " + cred)
        try:
            with _opener.open(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            with e:
                return e.code

    def _must(self, q, db=None, user=None, password=None, epoch=None):
        """query() as the admin (unless user is given) that must succeed."""
        if user is None and self.admin is not None:
            user, password = self.admin
        answer = self.query(q, db, user, password, epoch)
        errors = [answer["error"]] if "error" in answer else []
        errors += [r["error"] for r in answer.get("results", []) if "error" in r]
        if errors:
            raise AssertionError("InfluxDB refused %r: %s" % (q, "; ".join(errors)))
        return answer

    def create_db(self, name, user=None, password=None):
        """Create a database (as the admin, once there is one)."""
        self._must("CREATE DATABASE %s" % _ident(name), user=user, password=password)

    def create_admin(self, user, password):
        """Create a user with all privileges and use it from now on for
        create_db(), create_user() and points(). On a fresh auth-enabled server
        the first one needs no authentication."""
        self._must("CREATE USER %s WITH PASSWORD %s WITH ALL PRIVILEGES"
                   % (_ident(user), _string(password)))
        self.admin = (user, password)

    def create_user(self, user, password, db, privilege="WRITE"):
        """Create a user with privilege (READ, WRITE or ALL) on one database."""
        self._must("CREATE USER %s WITH PASSWORD %s; GRANT %s ON %s TO %s"
                   % (_ident(user), _string(password), privilege, _ident(db), _ident(user)))

    def points(self, db, q, user=None, password=None):
        """The rows the first statement of q returns, across all its series:
        one dict per row, column -> value, with the series' tags merged in
        when q groups by tags. Times are integer nanoseconds since the epoch."""
        result = self._must(q, db, user, password, epoch="ns")["results"][0]
        rows = []
        for series in result.get("series", []):
            for values in series.get("values", []):
                row = dict(series.get("tags", {}))
                row.update(zip(series["columns"], values))
                rows.append(row)
        return rows


class CapturedRequest:
    """One request HttpCapture received: method; path (without the query);
    query ({name: first value}); headers ({lower-cased name: value}); body
    (raw bytes); body_text (body gunzipped when Content-Encoding is gzip, then
    decoded as UTF-8; None if that failed, the reason in error); status (what
    it was answered); peer ((host, port) of the client: the same for requests
    over one kept-alive connection); at (time.monotonic() on arrival)."""

    def __init__(self, method, target, headers, body, peer, at):
        split = urllib.parse.urlsplit(target)
        self.method = method
        self.path = split.path
        self.query = {k: v[0] for k, v in
                      urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.peer = peer
        self.at = at
        self.status = None
        self.body_text = self.error = None
        try:
            if self.headers.get("content-encoding", "").strip().lower() == "gzip":
                body = gzip.decompress(body)
            self.body_text = body.decode("utf-8")
        except Exception as e:  # a bad body is the client's bug: show it, don't fail here
            self.error = "%s: %s" % (type(e).__name__, e)

    def __repr__(self):
        return "<%s %s %d bytes -> %s>" % (self.method, self.path, len(self.body), self.status)


class _QuietHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that drops its connection is no error of ours.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HttpCapture:
    """A minimal local HTTP/1.1 server standing in for InfluxDB (or any HTTP
    peer): it records every request and answers from a script.

        capture = HttpCapture(responses=[(503, {"Retry-After": "1"}, b'{"error":"x"}')],
                              default=(204, {}, b""))

    Each request takes the next scripted (status, headers, body), then the
    default answers them all. Connections stay open as long as the client
    wants; every answer that may have a body carries Content-Length (1xx, 204
    and 304 have none, as RFC 9110 requires). Request bodies are read by
    Content-Length (or chunked transfer coding)."""

    def __init__(self, responses=(), default=(204, {}, b""), tls=None):
        """tls: (certfile, keyfile) to answer https instead of http."""
        self._tls = tls
        self._lock = threading.Lock()
        self._script = list(responses)
        self._default = default
        self._requests = []
        self._conns = set()
        self._closed = False
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with capture._lock:
                    capture._conns.add(self.connection)

            def finish(self):
                try:
                    super().finish()
                finally:
                    with capture._lock:
                        capture._conns.discard(self.connection)

            def log_message(self, *args):
                pass

            def serve(self):
                capture._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = serve

        self._server = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="HttpCapture-%d" % self.port, daemon=True)
        self._thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self._tls else "http", self.port)

    @property
    def requests(self):
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def wait_requests(self, n, timeout=10):
        """Wait until at least n requests arrived; returns them all."""
        wait_for(lambda: len(self.requests) >= n, timeout,
                 "%d HTTP request(s) at %s" % (n, self.url))
        return self.requests

    @staticmethod
    def _read_body(h):
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()  # the CRLF closing the chunk
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _serve(self, h):
        at = time.monotonic()
        req = CapturedRequest(h.command, h.path, h.headers, self._read_body(h),
                              h.client_address, at)
        # Taking the answer and recording the request under one lock keeps
        # the n-th request paired with the n-th scripted answer.
        with self._lock:
            status, headers, body = self._script.pop(0) if self._script else self._default
            req.status = status
            self._requests.append(req)
        if isinstance(body, str):
            body = body.encode()
        h.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                h.send_header(name, value)
        bodiless = status < 200 or status in (204, 304)
        if not bodiless:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and not bodiless and h.command != "HEAD":
            h.wfile.write(body)
        h.wfile.flush()

    def close(self):
        """Stop serving and cut the connections still open."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
