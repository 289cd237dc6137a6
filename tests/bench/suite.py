#!/usr/bin/env python3
"""The benchmark suite: tapbus's rates against the raw read rate and the peers.

    tests/bench/suite.py BUILD_DIR [--packets N] [--runs N] [--captures zipf,new]
                         [--no-peers] [--streams 1,2,4,8] [--keep DIR]

Two synthetic captures (tb-gen-pcap, Ethernet, 128 bytes captured per
packet): `zipf`, N packets over 10,000 flows of Zipf-like popularity, and
`new`, N packets each of a new flow (--sequential). On each, RUNS times
(medians reported):

- raw read: libpcap reading the file (tb-pcap-rate, only pcap_next_ex);
- tcpdump: `tcpdump -r F -w /dev/null` (if installed);
- probe alone: tapbus-probe publishing the file to tb-bus-sink (which
  records the messages);
- collector alone: those recorded messages played by tb-bus-replay into
  tapbus-collector (no sink, then with InfluxDB): once it is connected to
  the replay, from `tapbusctl start` until the stream is finished; and
  "per CPU second": packets over the CPU time the collector's own threads
  used meanwhile (ZeroMQ's I/O thread, which reads the socket, apart), the
  rate one core of its own would ingest, whatever the replaying process
  and the transport take from the same cores;
- end to end: probe -> bus -> collector, without a sink and with a real
  influxd (the harness's, private): from start until finished, then the
  stream's final point is checked in the database (packets exact);
- the collector with several streams at once (zipf, --streams: 1, 2, 4
  and 8 by default): the capture recorded under as many stream names, each
  played by a tb-bus-replay of its own into one collector, from one start
  for all until the last is finished; all streams' packets per second,
  per CPU second as above, and the collector's peak memory;
- peers, where installed (Debian packages pmacct, softflowd, argus-server):
  pmacctd with its memory plugin, softflowd (-r) and argus (-r) reading the
  same file; their rate is taken over the CPU time they used (they pause on
  the way out, which wall time would count against them).

Each rate is packets per second; "of raw" is the ratio to the raw read rate
measured in the same run (the machine's speed varies between runs, the
ratio far less). Also printed: the collector's peak memory and the
latency of `tapbusctl status` while the end-to-end run with InfluxDB is
under way. Runs on any machine with the build; needs influxd for the
database rows (skipped, and said so, without it)."""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))
import tapbus_harness as h  # noqa: E402

STREAM = "bench"


def run(cmd, timeout=1800, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def field(line, key):
    for part in line.split():
        if part.startswith(key + "="):
            return part.split("=", 1)[1]
    raise ValueError("no %s in %r" % (key, line))


def own_cpu_s(pid):
    """CPU time of a program's own threads, ZeroMQ's apart (its I/O thread
    reads and writes the sockets, its reaper closes them), in seconds:
    nanoseconds from schedstat where the kernel keeps it, else clock ticks
    from stat."""
    total = 0.0
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "comm") as f:
                if f.read().startswith("ZMQbg"):
                    continue
            try:
                with open(base + "schedstat") as f:
                    total += int(f.read().split()[0]) / 1e9
                    continue
            except (OSError, ValueError, IndexError):
                pass
            with open(base + "stat") as f:
                g = f.read().rsplit(")", 1)[1].split()
            total += (int(g[11]) + int(g[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass  # a thread that ended
    return total


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Suite:
    def __init__(self, build, packets, tmp):
        self.build = build
        self.bin = os.path.join(build, "bin")
        h.BIN = self.bin
        self.packets = packets
        self.tmp = tmp
        self.own_cpu = None  # the collector's CPU time in the last run (_measure)
        self.influx = None
        self.notes = []

    def tool(self, name):
        return os.path.join(self.bin, name)

    # --- the measurements ------------------------------------------------

    def raw(self, pcap):
        r = run([self.tool("tb-pcap-rate"), pcap])
        return float(field(r.stdout, "pps"))

    def tcpdump(self, pcap):
        if shutil.which("tcpdump") is None:
            return None
        t0 = time.monotonic()
        r = run(["tcpdump", "-r", pcap, "-w", "/dev/null"])
        dt = time.monotonic() - t0
        return self.packets / dt if r.returncode == 0 else None

    def probe_alone(self, pcap, record, stream=STREAM):
        pub = h.endpoint()
        probe = h.Proc("tapbus-probe", ["--id", "bench", "--publish", pub,
                                        "--source", "%s=file:%s" % (stream, pcap)], self.tmp)
        try:
            r = run([self.tool("tb-bus-sink"), "--record", record, pub, stream, "600"])
            if r.returncode != 0 or int(field(r.stdout, "packets")) != self.packets:
                raise AssertionError("probe alone: %s %s" % (r.stdout, r.stderr))
            return float(field(r.stdout, "pps"))
        finally:
            probe.stop()

    def _measure(self, collector, control, names=(STREAM,), wait_points=None,
                 status_probe=None):
        """Start the streams named, time until every one is finished;
        returns (packets per second of all of them, peak RSS), and the
        collector's own CPU time meanwhile in self.own_cpu. The time is the
        collector's own, from the start request to the last stream's end
        (their started_ns and ended_ns): polling for the end adds no
        latency to it, and polls (status: every stream's state) are half a
        second apart, as each is a tapbusctl process that costs 5-15 ms of
        CPU (its libraries loaded and linked), taken from the two cores the
        programs measured share; the status probe asks every 250 ms."""
        t0 = time.monotonic()
        cpu0 = own_cpu_s(collector.p.pid)
        h.ctl_json(control, "start", *names)
        latencies = []
        stop = threading.Event()
        if status_probe is not None:
            def ask():
                while not stop.is_set():
                    a = time.monotonic()
                    h.ctl(control, "status", check=False)
                    latencies.append(time.monotonic() - a)
                    stop.wait(0.25)
            th = threading.Thread(target=ask)
            th.start()
        try:
            while True:
                states = {e["stream"]: e["state"]
                          for e in h.ctl_json(control, "status")["streams"]}
                if all(states.get(n) in ("finished", "error") for n in names):
                    break
                if time.monotonic() - t0 > 1800:
                    raise AssertionError("the streams did not finish")
                time.sleep(0.5)
            self.own_cpu = own_cpu_s(collector.p.pid) - cpu0
        finally:
            stop.set()
            if status_probe is not None:
                th.join()
        stats = [h.ctl_json(control, "stats", n) for n in names]
        for st in stats:
            if st["state"] != "finished" or st["packets"] != self.packets:
                raise AssertionError("stream %s ended %s with %d of %d packets"
                                     % (st["stream"], st["state"], st["packets"], self.packets))
        dt = (max(st["ended_ns"] for st in stats) - min(st["started_ns"] for st in stats)) / 1e9
        rss = peak_rss_kib(collector.p.pid)
        if wait_points is not None:
            wait_points()
        if status_probe is not None:
            status_probe.extend(latencies)
        return len(names) * self.packets / dt, rss

    def _db_args(self, db):
        self.influx.create_db(db)
        return ["--influx-url", self.influx.url, "--influx-db", db]

    def _points_check(self, db):
        def written():
            rows = self.influx.points(db, "SELECT last(packets) AS p FROM tapbus_stream "
                                          "WHERE stream = '%s'" % STREAM)
            return rows and rows[0]["p"] == self.packets
        return lambda: h.wait_for(written, 120, "the final point in the database")

    def collector_alone(self, records, db=None):
        """Recordings [(stream, path)] each played by a tb-bus-replay of its
        own into one collector, started at once (_measure); with db, the
        first stream's final point checked in the database."""
        control = h.endpoint()
        replays = []
        args = ["--control", control]
        try:
            for stream, record in records:
                pub = h.endpoint()
                replays.append(subprocess.Popen(
                    [self.tool("tb-bus-replay"), record, pub, stream, "600"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                args += ["--probe", pub]
            if db:
                args += self._db_args(db)
            collector = h.Proc("tapbus-collector", args, self.tmp)
            try:
                h.wait_for(lambda: h.ctl(control, "status", timeout_ms=500, check=False)[0] == 0,
                           30, "the collector to answer")
                # Connected to every replay before the clock starts: a
                # replay binds only once its recording is loaded, and the
                # collector retries a refused connection every 100 ms,
                # which would be timed as the collector's.
                h.wait_for(lambda: all(e["state"] == "connected" for e in
                                       h.ctl_json(control, "status")["collector"]["endpoints"]),
                           60, "the collector to connect to every replay")
                return self._measure(collector, control, [name for name, _ in records],
                                     self._points_check(db) if db else None)
            finally:
                collector.stop()
        finally:
            for r in replays:
                r.kill()
                r.wait()

    def streams_table(self, pcap, counts, runs):
        """The collector with 1, 2, 4, ... streams at once (collector_alone,
        each stream the capture's recording under its own name), printed as
        a table: all streams' packets per second together, per CPU second,
        and the peak RSS (each stream has its own tables)."""
        records = []
        try:
            for k in range(max(counts)):
                name = "%s%d" % (STREAM, k)
                path = os.path.join(self.tmp, name + ".bus")
                self.probe_alone(pcap, path, name)
                records.append((name, path))
            print("\nthe collector with several streams at once, each the capture's bus "
                  "messages replayed (medians of %d runs)" % runs)
            print("%-10s %16s %22s %14s" % ("streams", "packets/s, all", "per CPU second, all",
                                           "collector RSS"))
            for n in counts:
                got = []
                for _ in range(runs):
                    pps, rss = self.collector_alone(records[:n])
                    got.append((pps, n * self.packets / self.own_cpu, rss))
                print("%-10d %16s %22s %14s" % (
                    n, "{:,.0f}".format(statistics.median(g[0] for g in got)),
                    "{:,.0f}".format(statistics.median(g[1] for g in got)),
                    "%.1f MiB" % (statistics.median(g[2] for g in got) / 1024)))
        finally:
            for _, path in records:
                if os.path.exists(path):
                    os.unlink(path)

    def end_to_end(self, pcap, db=None, latencies=None):
        bus = h.Bus([(STREAM, "file:" + pcap)],
                    collector_args=self._db_args(db) if db else ())
        try:
            return self._measure(bus.collector, bus.control, (STREAM,),
                                 self._points_check(db) if db else None, latencies)
        finally:
            codes, logs = bus.close()
            if codes != (0, 0):
                raise AssertionError("programs exited %s: %s" % (codes, logs[-2000:]))

    def peers(self, pcap):
        out = {}
        if shutil.which("pmacctd"):
            conf = os.path.join(self.tmp, "pmacctd.conf")
            with open(conf, "w") as f:
                f.write("daemonize: false\npcap_savefile: %s\nplugins: memory\n"
                        "aggregate: src_host, dst_host, src_port, dst_port, proto\n"
                        "imt_path: %s\nimt_mem_pools_number: 0\n"
                        % (pcap, os.path.join(self.tmp, "pmacct.pipe")))
            out["pmacctd, memory plugin (CPU time)"] = self._timed(["pmacctd", "-f", conf])
        if shutil.which("softflowd"):
            out["softflowd (CPU time)"] = self._timed(
                ["softflowd", "-r", pcap, "-n", "127.0.0.1:9", "-m", str(self.packets + 1)])
        if shutil.which("argus"):
            out["argus (CPU time)"] = self._timed(["argus", "-r", pcap, "-w", "/dev/null"])
        return out

    def _timed(self, cmd):
        """Packets per second of the CPU time cmd (and the children it
        reaped) used: the peers pause on the way out, which wall time would
        count."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = run(cmd)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if r.returncode != 0 or cpu <= 0:
            self.notes.append("%s exited %d: %s" % (cmd[0], r.returncode,
                                                    (r.stderr or r.stdout).strip()[-200:]))
            return None
        return self.packets / cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--packets", type=int, default=5000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--captures", default="zipf,new")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--streams", default="1,2,4,8",
                    help="stream counts for the collector with several streams (zipf; '' for none)")
    ap.add_argument("--keep", help="keep the captures and logs in this directory")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    if a.packets < 1 or a.runs < 1:
        sys.exit("suite.py: --packets and --runs must be at least 1")
    try:
        counts = [int(c) for c in a.streams.split(",") if c.strip()]
    except ValueError:
        counts = [0]
    if any(c < 1 or c > 64 for c in counts):
        sys.exit("suite.py: --streams takes stream counts of 1-64, e.g. 1,2,4,8")
    need = ["tapbus-probe", "tapbus-collector", "tapbusctl", "tb-gen-pcap", "tb-pcap-rate",
            "tb-bus-sink", "tb-bus-replay"]
    missing = [t for t in need if not os.access(os.path.join(build, "bin", t), os.X_OK)]
    if missing:
        sys.exit("suite.py: %s/bin has no %s: build everything first (cmake -S . -B %s "
                 "-DCMAKE_BUILD_TYPE=Release && cmake --build %s; ./demo.sh builds only the "
                 "three programs)" % (a.build, ", ".join(missing), a.build, a.build))
    tmp = a.keep or tempfile.mkdtemp(prefix="tapbus-suite-")
    os.makedirs(tmp, exist_ok=True)
    s = Suite(build, a.packets, tmp)
    have_influx = shutil.which(os.environ.get("TAPBUS_INFLUXD", "influxd")) is not None
    try:
        if have_influx:
            s.influx = h.Influx(parent=tmp)
            s.influx.start()
        else:
            s.notes.append("no influxd: the rows with InfluxDB are left out")
        for cap in a.captures.split(","):
            pcap = os.path.join(tmp, cap + ".pcap")
            gen = [s.tool("tb-gen-pcap"), "-o", pcap, "--packets", str(a.packets)]
            if cap == "zipf":
                gen += ["--flows", "10000"]
                title = "%d packets, 10,000 Zipf flows" % a.packets
            elif cap == "new":
                gen += ["--flows", str(max(a.packets, 6)), "--sequential"]
                title = "%d packets, every one a new flow" % a.packets
            else:
                sys.exit("suite.py: unknown capture '%s' (zipf, new)" % cap)
            r = run(gen)
            if r.returncode != 0:
                sys.exit("suite.py: %s" % r.stderr.strip())
            rows = {}
            rss = {}
            lat = []

            def add(name, rate, raw):
                if rate is not None:
                    rows.setdefault(name, []).append((rate, rate / raw))
            for i in range(a.runs):
                raw = s.raw(pcap)
                add("raw read (libpcap)", raw, raw)
                add("tcpdump -r F -w /dev/null", s.tcpdump(pcap), raw)
                record = os.path.join(tmp, cap + ".bus")
                add("probe alone", s.probe_alone(pcap, record), raw)
                pps, m = s.collector_alone([(STREAM, record)])
                add("collector alone", pps, raw)
                rss.setdefault("collector alone", []).append(m)
                add("collector alone, per CPU second", a.packets / s.own_cpu, raw)
                if have_influx:
                    pps, m = s.collector_alone([(STREAM, record)], db="c%s%d" % (cap, i))
                    add("collector alone + InfluxDB", pps, raw)
                    rss.setdefault("collector alone + InfluxDB", []).append(m)
                    add("collector alone + InfluxDB, per CPU second", a.packets / s.own_cpu, raw)
                pps, m = s.end_to_end(pcap)
                add("end to end", pps, raw)
                rss.setdefault("end to end", []).append(m)
                if have_influx:
                    pps, m = s.end_to_end(pcap, db="e%s%d" % (cap, i), latencies=lat)
                    add("end to end + InfluxDB", pps, raw)
                    rss.setdefault("end to end + InfluxDB", []).append(m)
                if not a.no_peers:
                    for name, pps in s.peers(pcap).items():
                        add(name, pps, raw)
                os.unlink(record)
            print("\n%s (medians of %d runs)" % (title, a.runs))
            print("%-44s %12s %9s %14s" % ("measurement", "packets/s", "of raw",
                                             "collector RSS"))
            for name, vals in rows.items():
                m = rss.get(name)
                print("%-44s %12s %8.0f%% %14s" % (
                    name, "{:,.0f}".format(statistics.median(v[0] for v in vals)),
                    100 * statistics.median(v[1] for v in vals),
                    "%.1f MiB" % (statistics.median(m) / 1024) if m else ""))
            if lat:
                lat.sort()
                print("tapbusctl status during the run with InfluxDB: median %.1f ms, "
                      "max %.1f ms (%d calls)" % (1000 * statistics.median(lat),
                                                  1000 * lat[-1], len(lat)))
            if cap == "zipf" and counts:
                s.streams_table(pcap, counts, a.runs)
            os.unlink(pcap)
        for n in s.notes:
            print("note: " + n)
    finally:
        if s.influx is not None:
            s.influx.close()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
