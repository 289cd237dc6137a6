#!/usr/bin/env python3
"""The database path against a real InfluxDB 1.x (influxd started here on free
ports with a temporary directory): what a replayed capture writes matches what
tshark sees in it; an outage of the database, and a collector restart during
one, lose nothing and write nothing twice; bad data and refused credentials
are counted and reported, not retried forever; the 2.x request format is
checked against a scripted local HTTP listener."""

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from tapbus_harness import (BIN, Bus, HttpCapture, Influx, Proc, control_requests, ctl,
                            ctl_json, endpoint, tshark_expect, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "data", "demo.pcap")
DB = "tapbus"


def tshark_seconds(path):
    """{(second, class): [packets, bytes]} as tshark sees the capture,
    classified like tapbus (IPv4/IPv6 transport, non-IP)."""
    import subprocess
    r = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-E", "occurrence=f",
                        "-e", "frame.time_epoch", "-e", "frame.len", "-e", "ip.proto",
                        "-e", "ipv6.nxt"], capture_output=True, text=True, timeout=300)
    out = collections.defaultdict(lambda: [0, 0])
    for line in r.stdout.splitlines():
        ts, length, p4, p6 = (line.split("\t") + ["", "", "", ""])[:4]
        proto = int(p4) if p4 else int(p6) if p6 else None
        cls = "non_ip" if proto is None else {6: "tcp", 17: "udp", 1: "icmp",
                                              58: "icmpv6"}.get(proto, "other")
        sec = int(ts.split(".")[0])
        out[(sec, cls)][0] += 1
        out[(sec, cls)][1] += int(length)
    return dict(out)


def db_args(ix, spool=None, extra=()):
    args = ["--influx-url", ix.url, "--influx-db", DB, "--influx-create-db", "--batch-ms", "200",
            "--influx-timeout-ms", "2000"]
    if spool:
        args += ["--spool-dir", spool]
    return args + list(extra)


def database(control):
    return ctl_json(control, "status")["database"]


def wait_delivered(control, timeout=60):
    """Until nothing waits in the writer: no batch, queue or spool."""
    def done():
        d = database(control)
        return d if (d["connected"] and d["queued_points"] == 0 and d["batch_points"] == 0
                     and d["spool_points"] == 0) else None
    return wait_for(done, timeout, "the writer to deliver everything", interval=0.2)


def stored_seconds(ix, stream):
    rows = ix.points(DB, "SELECT packets, bytes FROM tapbus_traffic WHERE stream = '%s' "
                         "GROUP BY class" % stream)
    return {(r["time"] // 1000000000, r["class"]): [r["packets"], r["bytes"]] for r in rows}


def check_matches_tshark(ix, stream, path):
    want = tshark_seconds(path)
    got = stored_seconds(ix, stream)
    assert got == want, "per-second points differ from tshark: %d vs %d points; first diff %s" % (
        len(got), len(want),
        next(((k, got.get(k), want.get(k)) for k in sorted(set(got) | set(want))
              if got.get(k) != want.get(k)), None))
    exp = tshark_expect(path)
    ivals = ix.points(DB, "SELECT packets, bytes FROM tapbus_interval WHERE stream = '%s'" % stream)
    assert sum(r["packets"] for r in ivals) == exp["packets"]
    assert sum(r["bytes"] for r in ivals) == exp["bytes"]
    return exp


def test_replay_matches_tshark():
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        bus = Bus([("demo", "file:" + DEMO)], collector_args=db_args(ix, tmp))
        try:
            bus.start("demo")
            bus.wait_finished(["demo"])
            health = wait_delivered(bus.control)
            exp = check_matches_tshark(ix, "demo", DEMO)
            # The top flow of the whole stream, as tshark counts it.
            top = ix.points(DB, "SELECT * FROM tapbus_stream WHERE stream = 'demo'")
            assert len(top) == 1, top
            assert (top[0]["top_src"], top[0]["top_dst"], top[0]["top_sport"],
                    top[0]["top_dport"], top[0]["top_proto"], top[0]["top_packets"]) == \
                ("10.0.18.52", "198.18.0.11", 32768, 22, 6, 402), top
            assert top[0]["packets"] == exp["packets"] and top[0]["state"] == "finished"
            # Per interval: ten 1-s seconds of capture = one 10-s interval here.
            ivals = ix.points(DB, "SELECT * FROM tapbus_interval WHERE stream = 'demo'")
            assert all(r["interval_s"] == 10 for r in ivals)
            assert ivals[0]["len_min"] == exp["min_len"] and \
                max(r["len_max"] for r in ivals) == exp["max_len"]
            flows = ix.points(DB, "SELECT * FROM tapbus_top_flow WHERE stream = 'demo' "
                                  "AND rank = '1'")
            assert flows and flows[0]["src"] == "10.0.18.52" and flows[0]["dport"] == 22, flows
            hosts = ix.points(DB, "SELECT * FROM tapbus_top_host WHERE stream = 'demo'")
            assert len(hosts) == 10 * len(ivals), len(hosts)
            loss = ix.points(DB, "SELECT * FROM tapbus_loss WHERE stream = 'demo'")
            assert loss and loss[-1]["received"] == exp["packets"] and \
                loss[-1]["probe"] == "it-probe" and loss[-1]["seq_gaps"] == 0 and \
                loss[-1]["files_skipped"] == 0, loss[-1]
            assert health["written"] == health["points"] and health["dropped"] == 0 \
                and health["rejected"] == 0, health
            # Distinct flows: a HyperLogLog estimate, within 5 % of tshark's count.
            distinct = len(set(tshark_flows(DEMO)))
            assert abs(ivals[0]["flows"] - distinct) <= 0.05 * distinct, (ivals[0], distinct)
            check_db_command(bus.control, exp)
        finally:
            bus.close()


def tshark_flows(path):
    import subprocess
    fields = ["ip.src", "ip.dst", "ip.proto", "ipv6.src", "ipv6.dst", "ipv6.nxt", "tcp.srcport",
              "tcp.dstport", "udp.srcport", "udp.dstport"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    # Non-IP packets (no address fields) are no flow.
    return [ln for ln in r.stdout.splitlines() if ln.strip()]


def check_db_command(control, exp):
    """tapbusctl db: measurements, latest points of a stream, table and JSON."""
    m = ctl_json(control, "db")
    assert m["columns"] == ["name"], m
    names = [r[0] for r in m["rows"]]
    assert names == ["tapbus_interval", "tapbus_loss", "tapbus_stream", "tapbus_top_flow",
                     "tapbus_top_host", "tapbus_traffic"], names
    p = ctl_json(control, "db", "tapbus_traffic", "demo", "-n", "3")
    assert len(p["rows"]) == 3 and "packets" in p["columns"] and "class" in p["columns"], p
    t = [r[p["columns"].index("time")] for r in p["rows"]]
    assert t == sorted(t, reverse=True), t  # newest first
    p = ctl_json(control, "db", "tapbus_stream", "demo")
    row = dict(zip(p["columns"], p["rows"][0]))
    assert row["packets"] == exp["packets"] and row["stream"] == "demo", row
    _, out, _ = ctl(control, "db", "tapbus_interval", "demo")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["time", "bps", "bytes"] and len(lines) == 2, out
    # A measurement the database does not hold: said so, not an empty table.
    code, out, err = ctl(control, "db", "no_such_thing", check=False)
    assert code == 1 and "unknown measurement 'no_such_thing'" in err, (code, out, err)
    # One that it holds, but no point of that stream: an empty table.
    code, out, err = ctl(control, "db", "tapbus_traffic", "no_such_stream")
    assert out.strip() == "(nothing stored)", out
    # Top flows of one time in rank order (1, 2, ..., 10; the database
    # orders the series "1", "10", "2", ...); numbers without exponents.
    _, out, _ = ctl(control, "db", "tapbus_top_flow", "demo", "-n", "30")
    lines = out.splitlines()
    at = lines[0].index(" rank ") + 1  # aligned columns; some cells are empty
    by_time = collections.OrderedDict()
    for ln in lines[1:]:
        by_time.setdefault(ln.split()[0], []).append(int(ln[at:].split()[0]))
    assert any(len(v) >= 10 for v in by_time.values()), out
    assert all(v == sorted(v) for v in by_time.values()), by_time
    _, out, _ = ctl(control, "db", "tapbus_interval", "demo")
    assert "e+" not in out, out
    code, _, err = ctl(control, "db", "tapbus_traffic", "-n", "0", check=False)
    assert code == 2 and "-n" in err, (code, err)
    code, _, err = ctl(control, "db", "a", "b", "c", check=False)
    assert code == 2, (code, err)


def rfc3339_ns(text):
    """'2019-07-05T17:10:44.5Z' -> nanoseconds since the epoch."""
    import calendar
    whole, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1000000000 + int((frac + "000000000")[:9])


def test_skipped_file_in_loss_point():
    """A file the probe could not read is loss in the database, not only a log line."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "fifo")
        os.mkfifo(fifo)
        bus = Bus([("bad", "file:" + fifo), ("demo", "file:" + DEMO)],
                  collector_args=db_args(ix, tmp))
        try:
            bus.start("bad", "demo")
            bus.wait_finished(["bad", "demo"])
            wait_delivered(bus.control)
            loss = ix.points(DB, "SELECT * FROM tapbus_loss WHERE stream = 'bad'")
            assert loss and loss[-1]["files_skipped"] == 1, loss
            ok = ix.points(DB, "SELECT * FROM tapbus_loss WHERE stream = 'demo'")
            assert ok and ok[-1]["files_skipped"] == 0, ok
        finally:
            bus.close()


def test_db_through_several_collectors():
    """tapbusctl db with several collectors: two share a database, a third
    has its own; answers merge, a shared database's points count once."""
    import json
    import subprocess
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        bus = Bus([("a", "file:" + DEMO), ("b", "file:" + DEMO), ("c", "file:" + DEMO)],
                  collector_args=db_args(ix))
        others = []
        try:
            for db in (DB, "other"):
                control = endpoint()
                args = ["--probe", bus.pub, "--control", control] + db_args(ix)
                args[args.index("--influx-db") + 1] = db
                others.append((Proc("tapbus-collector", args, bus.tmp.name), control))
            controls = [bus.control] + [c for _, c in others]
            for c in controls:
                wait_for(lambda: ctl(c, "status", timeout_ms=500, check=False)[0] == 0, 30,
                         "a collector to answer")

            def tapbusctl(*args):
                cmd = [os.path.join(BIN, "tapbusctl"), "--json"]
                for c in controls:
                    cmd += ["--collector", c]
                r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
                assert r.returncode == 0, (args, r.returncode, r.stderr)
                return json.loads(r.stdout)
            where = tapbusctl("start", "a", "b", "c")["collector_of"]
            assert sorted(where.values()) == sorted(controls), where  # one each
            for c in controls:
                bus.wait_finished([s for s, w in where.items() if w == c], control=c)
                wait_delivered(c)
            names = [r[0] for r in tapbusctl("db")["rows"]]
            assert names == ["tapbus_interval", "tapbus_loss", "tapbus_stream", "tapbus_top_flow",
                             "tapbus_top_host", "tapbus_traffic"], names
            ends = tapbusctl("db", "tapbus_stream")
            rows = [dict(zip(ends["columns"], r)) for r in ends["rows"]]
            assert sorted(r["stream"] for r in rows) == ["a", "b", "c"], rows
            assert all(r["packets"] == 5000 for r in rows), rows
            assert [c["ok"] for c in ends["collectors"]] == [True] * 3, ends
            # Newest first across databases, at most N, no duplicate.
            p = tapbusctl("db", "tapbus_traffic", "-n", "25")
            assert len(p["rows"]) == 25, len(p["rows"])
            t = [rfc3339_ns(r[p["columns"].index("time")]) for r in p["rows"]]
            assert t == sorted(t, reverse=True), t
            assert len({json.dumps(r) for r in p["rows"]}) == 25
            one = tapbusctl("db", "tapbus_traffic", "a", "-n", "10000")
            alone = ctl_json(where["a"], "db", "tapbus_traffic", "a", "-n", "10000")
            assert sorted(map(json.dumps, one["rows"])) == sorted(map(json.dumps, alone["rows"]))
        finally:
            for proc, _ in others:
                proc.stop()
            bus.close()


def test_db_without_database():
    bus = Bus([("demo", "file:" + DEMO)])
    try:
        code, _, err = ctl(bus.control, "db", check=False)
        assert code == 1 and "no database" in err, (code, err)
        assert ctl_json(bus.control, "status")["database"] is None
    finally:
        bus.close()


class SilentServer:
    """A TCP listener that accepts connections and answers nothing until
    released; from then on it closes every connection at once."""

    def __init__(self):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.held = []
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.released.is_set():
                conn.close()
            else:
                self.held.append(conn)

    def release(self):
        self.released.set()
        for conn in self.held:
            conn.close()

    def close(self):
        self.release()
        self.sock.close()


def silent_database_bus():
    """A SilentServer and a bus whose collector writes to it and queries it
    (database timeout one minute)."""
    srv = SilentServer()
    bus = Bus([("demo", "file:" + DEMO)],
              collector_args=["--influx-url", srv.url, "--influx-db", DB,
                              "--influx-timeout-ms", "60000"])
    return srv, bus


def test_db_query_does_not_hold_up_control():
    """While a db query waits for a silent database, status, stats and
    start/stop are answered at once; at most four queries wait, the next
    is refused; every query then gets its own answer."""
    import subprocess
    srv, bus = silent_database_bus()
    try:
        cmd = [os.path.join(BIN, "tapbusctl"), "--collector", bus.control, "--timeout", "60000"]
        before = control_requests(bus.control)
        waiting = [subprocess.Popen(cmd + ["db", "tapbus_traffic", "-n", str(i + 1)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for i in range(4)]
        wait_for(lambda: len(srv.held) >= 1, 30, "the query to reach the database")
        # The other three reach the collector and wait: it has taken four
        # requests besides the status requests asking it.
        asked = [0]

        def all_four_taken():
            asked[0] += 1
            return control_requests(bus.control) - before - asked[0] >= 4
        wait_for(all_four_taken, 30, "the four queries to reach the collector")
        start = time.monotonic()
        assert ctl_json(bus.control, "status")["database"] is not None
        bus.start("demo")
        bus.wait_finished(["demo"])
        assert ctl_json(bus.control, "stats", "demo")["packets"] > 0
        code, _, err = ctl(bus.control, "db", check=False)
        assert code == 1 and "already running or waiting" in err, (code, err)
        assert time.monotonic() - start < 30
        assert all(p.poll() is None for p in waiting), "a query ended before the database did"
        srv.release()
        for p in waiting:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 1 and "database query failed" in err, (p.returncode, err)
            assert len(err.strip().splitlines()) == 1, err
        # Answered and forgotten: the next query is taken again.
        code, _, err = ctl(bus.control, "db", check=False)
        assert code == 1 and "database query failed" in err, (code, err)
    finally:
        srv.release()  # a writer still sending ends at once
        bus.close()
        srv.close()


def test_db_queries_of_clients_gone_are_not_run():
    """Queries whose clients gave up (--timeout) do not keep the four places:
    the one running ends when its client stops waiting, the waiting ones are
    skipped, and a new query is taken again at once."""
    import subprocess
    srv, bus = silent_database_bus()
    try:
        cmd = [os.path.join(BIN, "tapbusctl"), "--collector", bus.control, "--timeout", "1000",
               "db"]
        gone = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
        for p in gone:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 3 and "no reply" in err, (p.returncode, err)
        start = time.monotonic()
        # The database still says nothing: a new query waits its own time
        # (exit 3) instead of being refused (exit 1) for minutes.
        wait_for(lambda: ctl(bus.control, "db", timeout_ms=1000, check=False)[0] == 3, 30,
                 "a new query to be taken")
        assert time.monotonic() - start < 10, time.monotonic() - start
        assert len(srv.held) >= 2, "the next query never reached the database"
    finally:
        srv.release()
        bus.close()
        srv.close()


def test_stop_during_a_db_query():
    """SIGTERM while a db query waits for a silent database (timeout one
    minute): the collector ends at once, cleanly."""
    import subprocess
    srv, bus = silent_database_bus()
    try:
        cmd = [os.path.join(BIN, "tapbusctl"), "--collector", bus.control, "--timeout", "60000"]
        waiting = subprocess.Popen(cmd + ["db"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: len(srv.held) >= 1, 30, "the query to reach the database")
        start = time.monotonic()
        assert bus.collector.stop(timeout=10) == 0
        assert time.monotonic() - start < 5, time.monotonic() - start
        waiting.kill()
        waiting.communicate()
    finally:
        srv.release()  # a writer still sending ends at once
        bus.close()
        srv.close()


def test_gateway_db_does_not_hold_up_others():
    """Through the HTTP gateway: /status and /stats are answered while a /db
    request waits for a silent database, which then gets its own answer."""
    import subprocess
    from test_gateway import Gateway, curl
    srv, bus = silent_database_bus()
    gw = None
    try:
        gw = Gateway(bus.control, bus.tmp.name, options=["--timeout", "60000"])
        user = "ops:pa:ss w0rd"
        db = subprocess.Popen(["curl", "-s", "-u", user, "-w", "\n%{http_code}", gw.base + "/db"],
                              stdout=subprocess.PIPE, text=True)
        wait_for(lambda: len(srv.held) >= 1, 30, "the query to reach the database")
        bus.start("demo")
        bus.wait_finished(["demo"])
        for path in ("/status", "/stats?stream=demo", "/probes"):
            code, body = curl(gw.base + path, user)
            assert code == 200, (path, code, body)
        assert db.poll() is None, "/db ended before the database answered"
        srv.release()
        out, _ = db.communicate(timeout=60)
        body, _, code = out.rpartition("\n")
        assert code == "409" and "database query failed" in body, (code, body)
    finally:
        srv.release()
        if gw is not None:
            gw.proc.stop()
        bus.close()
        srv.close()


def test_outage_mid_replay():
    """influxd stops in the middle of a paced replay and comes back later:
    every point arrives, exactly once."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        bus = Bus([("slow", "file:" + DEMO)], probe_args=["--replay-speed", "2"],
                  collector_args=db_args(ix, tmp))
        try:
            bus.start("slow")
            wait_for(lambda: database(bus.control)["written"] > 0, 30, "first points written")
            ix.stop()
            wait_for(lambda: database(bus.control)["spool_points"] > 0, 30, "the spool to fill")
            bus.wait_finished(["slow"])
            d = database(bus.control)
            assert not d["connected"] and d["last_error"], d
            ix.start()
            health = wait_delivered(bus.control)
            check_matches_tshark(ix, "slow", DEMO)
            assert health["written"] == health["points"], health
            assert health["retried"] > 0 and health["dropped"] == 0, health
            # Nothing twice: one point per (second, class) and per interval.
            n = ix.points(DB, "SELECT count(packets) FROM tapbus_traffic WHERE stream = 'slow'")
            assert n[0]["count"] == len(tshark_seconds(DEMO)), n
        finally:
            bus.close()


def test_outage_with_collector_restart():
    """The database is away, the collector stops with points in its spool; a
    new collector with the same spool delivers them when it returns."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        spool = os.path.join(tmp, "spool")
        ix.stop()
        bus = Bus([("demo", "file:" + DEMO)], collector_args=db_args(ix, spool))
        try:
            bus.start("demo")
            bus.wait_finished(["demo"])
            wait_for(lambda: database(bus.control)["spool_points"] > 0 and
                     database(bus.control)["batch_points"] == 0, 30, "points in the spool")
            assert bus.collector.stop() == 0
            assert "kept in the spool" in bus.collector.output(), bus.collector.output()
            assert any(f.endswith(".lp") for f in os.listdir(spool))
            ix.start()
            control = endpoint()
            second = Proc("tapbus-collector", ["--probe", bus.pub, "--control", control] +
                          db_args(ix, spool), tmp)
            try:
                wait_delivered(control)
                check_matches_tshark(ix, "demo", DEMO)
                assert not any(f.endswith(".lp") for f in os.listdir(spool))
            finally:
                assert second.stop() == 0
        finally:
            bus.close()


def split_pcap(path, out_a, out_b):
    """Write the first and second half of a pcap's records to two files."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    head, pos, recs = data[:24], 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        recs.append(data[pos:pos + 16 + incl])
        pos += 16 + incl
    half = len(recs) // 2 + 7  # inside a second, not at its edge
    for out, part in ((out_a, recs[:half]), (out_b, recs[half:])):
        with open(out, "wb") as f:
            f.write(head + b"".join(part))
    return half, len(recs) - half


def test_stop_and_start_carry_on():
    """A directory stream (a source that never starts over) stopped in the
    middle of a second and started again: the database gets that second's
    complete counts, not the second measurement's part written over the
    first's."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        cap = os.path.join(tmp, "cap")
        os.mkdir(cap)
        na, nb = split_pcap(DEMO, os.path.join(tmp, "a"), os.path.join(tmp, "b"))
        os.rename(os.path.join(tmp, "a"), os.path.join(cap, "trace"))
        bus = Bus([("d", "dir:" + cap)], collector_args=db_args(ix, os.path.join(tmp, "sp")))
        try:
            bus.start("d")
            wait_for(lambda: bus.stats("d")["packets"] == na, 60, "the first file")
            ctl(bus.control, "stop", "d")
            os.rename(os.path.join(tmp, "b"), os.path.join(cap, "trace1"))
            bus.start("d")
            wait_for(lambda: bus.stats("d")["packets"] == nb, 60, "the second file")
            ctl(bus.control, "stop", "d")
            wait_delivered(bus.control)
            check_matches_tshark(ix, "d", DEMO)
        finally:
            bus.close()


def write_pcap(path, stamps, start_port=1000):
    """A classic pcap (microsecond stamps, Ethernet) of 60-byte IPv4/UDP
    frames, one per capture time in `stamps` (float seconds), in that order."""
    import struct
    out = [struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 128, 1)]
    for i, ts in enumerate(stamps):
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        udp = struct.pack("!HHHH", start_port + i % 7, 53, 8 + 18, 0) + bytes(18)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp
        frame = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


Y2008 = 1199145600  # 2008-01-01T00:00:00Z
Y2100 = 4102444800  # 2100-01-01T00:00:00Z


def test_ts_outliers_keep_series_and_rates():
    """A 2008 capture of 3000 packets at 100 per second with one record
    dated 2100 and one dated 1970 (the first packet too): the three are
    counted as ts_outliers, stay in the totals, and the series, intervals,
    first/last time and average rate are the capture's own."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "outliers.pcap")
        stamps = [Y2008 + i / 100.0 for i in range(3000)]
        stamps[0] = Y2100 + 0.5
        stamps[1000] = Y2100 + 0.25
        stamps[2000] = 1.0
        write_pcap(path, stamps)
        bus = Bus([("o", "file:" + path)], collector_args=db_args(ix, tmp))
        try:
            bus.start("o")
            bus.wait_finished(["o"])
            wait_delivered(bus.control)
            st = bus.stats("o")
            assert st["packets"] == 3000 and st["ts_outliers"] == 3, st
            assert st["first_ts"] == Y2008 * 10**9 + 10**7 and \
                st["last_ts"] == (Y2008 + 29) * 10**9 + 990 * 10**6, st
            assert abs(st["avg_pps"] - 3000 / 29.98) < 1e-6, st["avg_pps"]
            status = [s for s in ctl_json(bus.control, "status")["streams"] if s["stream"] == "o"]
            assert status[0]["ts_outliers"] == 3, status
            _, text, _ = ctl(bus.control, "stats", "o")
            assert "ts outliers    3 packets" in text, text
            # An outlier is counted at the stream's time: the packet before
            # it (the first packet: the one after it).
            fixed = list(stamps)
            fixed[0], fixed[1000], fixed[2000] = stamps[1], stamps[999], stamps[1999]
            want = collections.Counter((int(t), "udp") for t in fixed)
            secs = stored_seconds(ix, "o")
            assert {k: v[0] for k, v in secs.items()} == dict(want), sorted(secs.items())
            ivals = ix.points(DB, "SELECT * FROM tapbus_interval WHERE stream = 'o'")
            assert [r["time"] // 10**9 for r in ivals] == [Y2008, Y2008 + 10, Y2008 + 20], ivals
            assert [r["packets"] for r in ivals] == [1001, 1000, 999], ivals
            assert [r["ts_outliers"] for r in ivals] == [2, 1, 0], ivals
            assert [r["pps"] for r in ivals] == [100.1, 100.0, 99.9], ivals
            final = ix.points(DB, "SELECT * FROM tapbus_stream WHERE stream = 'o'")
            assert final[0]["ts_outliers"] == 3 and final[0]["packets"] == 3000, final
        finally:
            bus.close()


def test_sparse_replay_answers_control():
    """A capture with one packet per second (each its own second, a tenth
    of an interval) replayed with the database sink: everything written
    matches tshark, and status is answered while it runs (the latency is
    printed, not asserted: it is a number to watch)."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sparse.pcap")
        n = 100000
        subprocess.run([os.path.join(BIN, "tb-gen-pcap"), "-o", path, "--packets", str(n),
                        "--pps", "1", "--flows", "500"], check=True, capture_output=True)
        bus = Bus([("sparse", "file:" + path)], collector_args=db_args(ix, tmp))
        try:
            bus.start("sparse")
            latencies = []
            while True:
                t0 = time.monotonic()
                rc, out, _ = ctl(bus.control, "--json", "status", timeout_ms=60000)
                latencies.append(time.monotonic() - t0)
                state = {s["stream"]: s["state"] for s in json.loads(out)["streams"]}
                if state.get("sparse") == "finished":
                    break
                assert time.monotonic() - t0 < 300, "replay did not finish"
            wait_delivered(bus.control)
            latencies.sort()
            print("sparse replay of %d packets: %d status requests, latency median %.3f s, "
                  "max %.3f s" % (n, len(latencies), latencies[len(latencies) // 2],
                                  latencies[-1]), flush=True)
            exp = check_matches_tshark(ix, "sparse", path)
            assert exp["packets"] == n
            ivals = ix.points(DB, "SELECT count(packets) FROM tapbus_interval "
                                  "WHERE stream = 'sparse'")
            assert ivals[0]["count"] == n // 10, ivals
        finally:
            bus.close()


def test_idle_directory_stream_writes_zeros_and_closes_by_clock():
    """A directory stream (a running source with no traffic once its file is
    read; no root needed, unlike a live interface) with --lateness 1: the
    newest seconds reach the database without later traffic or a stop, the
    idle time after them is written as zero points (seconds and intervals),
    packets older than the lateness window are counted as late (status), and
    a next file two days later adds no zeros for the two days between."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        ix.create_db(DB)
        cap = os.path.join(tmp, "cap")
        os.mkdir(cap)
        monday = [Y2008 + i / 10.0 for i in range(50)]  # 5 s of capture
        write_pcap(os.path.join(tmp, "a"), monday)
        args = db_args(ix, os.path.join(tmp, "sp"), ["--lateness", "1", "--interval", "2"])
        bus = Bus([("idle", "dir:" + cap)], collector_args=args)
        try:
            bus.start("idle")
            t0 = time.monotonic()
            os.rename(os.path.join(tmp, "a"), os.path.join(cap, "trace"))
            wait_for(lambda: bus.stats("idle")["packets"] == 50, 60, "the first file")
            t_in = time.monotonic()

            def traffic():
                return ix.points(DB, "SELECT packets, bytes FROM tapbus_traffic "
                                     "WHERE stream = 'idle'")
            # The last second with traffic is in the database while the
            # stream still runs and nothing newer arrived.
            wait_for(lambda: any(r["time"] // 10**9 == Y2008 + 4 and r["packets"] > 0
                                 for r in traffic()), 30, "the newest second written")
            print("newest second in the database %.2f s after its packets reached the "
                  "collector (lateness 1 s, batch 0.2 s)" % (time.monotonic() - t_in), flush=True)
            # Idle seconds and an idle interval come as zeros.
            wait_for(lambda: len([r for r in traffic() if r["packets"] == 0]) >= 6 * 3, 30,
                     "zero points")
            wait_for(lambda: any(r["packets"] == 0 for r in ix.points(
                DB, "SELECT * FROM tapbus_interval WHERE stream = 'idle'")), 30,
                "a zero interval")
            live_s = time.monotonic() - t0
            rows = traffic()
            with_traffic = sorted(r["time"] // 10**9 for r in rows if r["packets"] > 0)
            zeros = sorted({r["time"] // 10**9 for r in rows if r["packets"] == 0})
            assert with_traffic[0] == Y2008 and with_traffic[-1] == Y2008 + 4, with_traffic
            assert sum(r["packets"] for r in rows) == 50
            # Zeros only after the capture (the backlog was not lived),
            # every class of an idle second, and no more seconds than passed.
            assert zeros[0] >= Y2008 + 5 and zeros[-1] - Y2008 <= 5 + live_s + 1, (zeros, live_s)
            assert zeros == list(range(zeros[0], zeros[-1] + 1)), zeros
            classes = {r["class"] for r in ix.points(
                DB, "SELECT packets FROM tapbus_traffic WHERE stream = 'idle' AND time = %ds "
                    "GROUP BY class" % zeros[0])}
            assert classes == {"tcp", "udp", "icmp", "icmpv6", "other", "non_ip"}, classes
            # A file of packets older than the clock's lateness window (as
            # tcpdump without -U writes them): late, counted and shown.
            write_pcap(os.path.join(tmp, "l"), [Y2008 + 5.5] * 5)
            os.rename(os.path.join(tmp, "l"), os.path.join(cap, "trace1"))
            wait_for(lambda: bus.stats("idle")["packets"] == 55, 60, "the late file")
            assert database(bus.control)["late_packets"] == 5
            _, text, _ = ctl(bus.control, "status")
            assert "5 packets arrived after their second was written" in text, text
            # Two days later, the next file: no zeros for the days between.
            wednesday = [Y2008 + 2 * 86400 + i / 10.0 for i in range(30)]
            write_pcap(os.path.join(tmp, "b"), wednesday)
            os.rename(os.path.join(tmp, "b"), os.path.join(cap, "trace2"))
            wait_for(lambda: bus.stats("idle")["packets"] == 85, 60, "the second file")
            wait_for(lambda: any(r["time"] // 10**9 == Y2008 + 2 * 86400 + 2 and r["packets"] > 0
                                 for r in traffic()), 30, "the second file's newest second")
            live_s = time.monotonic() - t0
            rows = traffic()
            zeros = sorted({r["time"] // 10**9 for r in rows if r["packets"] == 0})
            assert len(zeros) <= live_s + 2, (len(zeros), live_s)
            assert not [z for z in zeros if Y2008 + 3600 < z < Y2008 + 2 * 86400], zeros
            assert sum(r["packets"] for r in rows) == 80  # not the 5 late ones
            health = database(bus.control)
            assert health["zero_seconds"] >= len(zeros) - 2 and health["late_packets"] == 5, \
                health
            ctl(bus.control, "stop", "idle")
            wait_delivered(bus.control)
            ivals = ix.points(DB, "SELECT * FROM tapbus_interval WHERE stream = 'idle'")
            assert sum(r["packets"] for r in ivals) == 85, ivals  # the late ones too
            assert not [r for r in ivals if Y2008 + 3600 < r["time"] // 10**9 < Y2008 + 2 * 86400]
        finally:
            bus.close()


def test_retention_policy():
    """--influx-rp: points go to that retention policy, and tapbusctl db reads
    them from there."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        ix.create_db(DB)
        r = ix.query('CREATE RETENTION POLICY "r2" ON "%s" DURATION INF REPLICATION 1' % DB)
        assert "error" not in r["results"][0], r
        bus = Bus([("demo", "file:" + DEMO)],
                  collector_args=db_args(ix, tmp, ["--influx-rp", "r2"]))
        try:
            bus.start("demo")
            bus.wait_finished(["demo"])
            wait_delivered(bus.control)
            rows = ix.points(DB, 'SELECT sum(packets) FROM "r2"."tapbus_interval"')
            assert rows[0]["sum"] == tshark_expect(DEMO)["packets"], rows
            assert ix.points(DB, "SELECT * FROM tapbus_interval") == []  # not the default
            out = ctl_json(bus.control, "db", "tapbus_stream", "demo")
            assert len(out["rows"]) == 1 and '"r2"."tapbus_stream"' in out["query"], out
        finally:
            bus.close()


def test_missing_database_is_explained():
    """A database that was not created (InfluxDB 1.x answers 404 "database
    not found"): the status and the log suggest --influx-create-db; before
    any write the database is not reported as not connected."""
    with Influx() as ix:
        args = ["--influx-url", ix.url, "--influx-db", DB, "--batch-ms", "200",
                "--influx-timeout-ms", "2000"]
        bus = Bus([("demo", "file:" + DEMO)], collector_args=args)
        try:
            _, out, _ = ctl(bus.control, "status")
            assert "not written to yet" in out and "NOT CONNECTED" not in out, out
            bus.start("demo")
            d = wait_for(lambda: (lambda d: d if "--influx-create-db" in d["last_error"] else None)(
                database(bus.control)), 30, "the missing database to be explained")
            assert "404" in d["last_error"] and "database not found" in d["last_error"], d
            _, out, _ = ctl(bus.control, "status")
            assert "NOT CONNECTED" in out and "--influx-create-db" in out, out
            ix.create_db(DB)
            wait_delivered(bus.control, timeout=90)
        finally:
            codes, logs = bus.close()
        assert "--influx-create-db" in logs, logs


def test_bad_data_counted_not_retried():
    """A field type conflict makes InfluxDB refuse some points (400, partial
    write): those are counted as rejected, the rest is written, and the
    writer does not keep retrying."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        ix.create_db(DB)
        # Field types are fixed per shard: a string in the capture's week.
        first = tshark_expect(DEMO)["first_ts"]
        assert ix.write(DB, 'tapbus_traffic,stream=x,class=tcp packets="text" %d' % first) == 204
        bus = Bus([("demo", "file:" + DEMO)], collector_args=db_args(ix, tmp))
        try:
            bus.start("demo")
            bus.wait_finished(["demo"])
            health = wait_delivered(bus.control)
            # Every per-second point has the conflicting field; nothing else does.
            refused = len(tshark_seconds(DEMO))
            assert health["rejected"] == refused, health
            assert health["written"] == health["points"] - refused, health
            assert "400" in health["last_error"], health
            # A "partial write" is settled at once: no splitting into single lines.
            assert health["requests"] < 10, health
            requests = health["requests"]
            # A (wrong) retry would come within the writer's first backoff,
            # half a second: two more heartbeats from the probe (a second or
            # more) show the collector past it.
            bus.wait_heartbeats(2)
            assert database(bus.control)["requests"] == requests
            ivals = ix.points(DB, "SELECT sum(packets) FROM tapbus_interval")
            assert ivals[0]["sum"] == tshark_expect(DEMO)["packets"]
        finally:
            bus.close()


def test_auth_refused_keeps_data():
    """Wrong credentials: nothing is written, the data is kept, the problem is
    reported; once the credentials work, everything arrives."""
    with Influx(auth=True) as ix, tempfile.TemporaryDirectory() as tmp:
        ix.create_admin("admin", "adminpw")
        ix.create_db(DB)
        pwfile = os.path.join(tmp, "pw")
        with open(pwfile, "w") as f:
            f.write("s3cret\n")
        args = db_args(ix, os.path.join(tmp, "spool"),
                       ["--influx-user", "writer", "--influx-password-file", pwfile])
        bus = Bus([("demo", "file:" + DEMO)], collector_args=args)
        try:
            bus.start("demo")
            bus.wait_finished(["demo"])
            d = wait_for(lambda: (lambda d: d if d["spool_points"] > 0 and "401" in
                                  d["last_error"] else None)(database(bus.control)),
                         30, "the refusal to be reported")
            assert d["written"] == 0 and not d["connected"], d
            _, out, _ = ctl(bus.control, "status")
            assert "NOT CONNECTED" in out and "401" in out, out
            # Retried with backoff, not in a tight loop: over two more
            # heartbeats from the probe (a second or more), a backoff from
            # half a second makes a few requests, a tight loop hundreds. (A
            # longer window only lets the backoff grow: the delivery below
            # then waits longer.)
            bus.wait_heartbeats(2)
            assert database(bus.control)["requests"] < 20
            ix.create_user("writer", "s3cret", DB)
            wait_delivered(bus.control, timeout=90)
            check_matches_tshark(ix, "demo", DEMO)
        finally:
            bus.close()


def test_v2_request_format():
    """2.x: /api/v2/write with org, bucket, precision, the token header and a
    gzip body; a 503 with Retry-After is honoured."""
    with HttpCapture(responses=[(503, {"Retry-After": "1"}, b'{"message":"busy"}')]) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("tok-123\n")
        args = ["--influx-url", srv.url, "--influx-version", "2", "--influx-org", "acme",
                "--influx-bucket", "traffic", "--influx-token-file", token, "--batch-ms", "200"]
        bus = Bus([("demo", "file:" + DEMO)], collector_args=args)
        try:
            bus.start("demo")
            bus.wait_finished(["demo"])
            wait_delivered(bus.control)
            reqs = srv.requests
            assert len(reqs) >= 2
            for r in reqs:
                assert r.method == "POST" and r.path == "/api/v2/write", r.path
                assert r.query == {"org": "acme", "bucket": "traffic", "precision": "ns"}, r.query
                assert r.headers["authorization"] == "Token tok-123"
                assert r.headers["content-encoding"] == "gzip"
                assert r.headers["content-type"].startswith("text/plain")
            assert reqs[1].at - reqs[0].at >= 0.9, "Retry-After not honoured"
            assert reqs[0].body_text == reqs[1].body_text
            lines = [ln for r in reqs[1:] for ln in r.body_text.splitlines()]
            total = sum(int(ln.split("packets=")[1].split("i")[0]) for ln in lines
                        if ln.startswith("tapbus_traffic,"))
            assert total == tshark_expect(DEMO)["packets"]
        finally:
            bus.close()


def test_v2_query():
    """tapbusctl db against 2.x: a Flux query to /api/v2/query with the token;
    the annotated CSV answer comes back as typed columns and rows."""
    import json
    csv = (b"#datatype,string,long,dateTime:RFC3339,string,string,long,long\r\n"
           b",result,table,_time,class,stream,bytes,packets\r\n"
           b",_result,0,2024-01-01T00:00:09Z,tcp,demo,208190,334\r\n"
           b",_result,0,2024-01-01T00:00:08Z,\"u,dp\",demo,66075,131\r\n\r\n")
    empty = b"\r\n"
    names = (b"#datatype,string,long,string\r\n#group,false,false,false\r\n"
             b"#default,_result,,\r\n,result,table,_value\r\n"
             b",,0,tapbus_stream\r\n,,0,tapbus_traffic\r\n\r\n")
    script = [(200, {"Content-Type": "text/csv"}, body) for body in (csv, empty, names, empty,
                                                                     names)]
    with HttpCapture(responses=script) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("tok-9\n")
        bus = Bus([("demo", "file:" + DEMO)],
                  collector_args=["--influx-url", srv.url, "--influx-version", "2",
                                  "--influx-org", "acme", "--influx-bucket", "traffic",
                                  "--influx-token-file", token])
        try:
            out = ctl_json(bus.control, "db", "tapbus_traffic", "demo", "-n", "2")
            assert out["columns"] == ["_time", "class", "stream", "bytes", "packets"], out
            assert out["rows"] == [["2024-01-01T00:00:09Z", "tcp", "demo", 208190, 334],
                                   ["2024-01-01T00:00:08Z", "u,dp", "demo", 66075, 131]], out
            r = srv.requests[-1]
            assert r.path == "/api/v2/query" and r.query == {"org": "acme"}, (r.path, r.query)
            assert r.headers["authorization"] == "Token tok-9"
            body = json.loads(r.body_text)
            assert body["type"] == "flux" and 'from(bucket: "traffic")' in body["query"], body
            assert 'r._measurement == "tapbus_traffic"' in body["query"]
            assert 'r.stream == "demo"' in body["query"] and "limit(n: 2)" in body["query"]
            # No point: a measurement the bucket does not hold is named as such;
            # one it holds shows an empty table.
            code, _, err = ctl(bus.control, "db", "no_such", check=False)
            assert code == 1 and "unknown measurement 'no_such'" in err, (code, err)
            assert "schema.measurements" in json.loads(srv.requests[-1].body_text)["query"]
            code, out, err = ctl(bus.control, "db", "tapbus_stream", "nope")
            assert out.strip() == "(nothing stored)", (out, err)
            # A measurement name cannot interpolate Flux ("${...}").
            ctl(bus.control, "--json", "db", "${r._measurement}", check=False)
            # (an empty answer is followed by a look at the measurements)
            body = json.loads(next(q.body_text for q in reversed(srv.requests)
                                   if "_measurement ==" in q.body_text))
            assert 'r._measurement == "\\${r._measurement}"' in body["query"], body["query"]
        finally:
            bus.close()


def test_tls_with_ca_file():
    """https with the CA given by --influx-ca: written; without it the
    server's certificate is refused, reported, and the data kept."""
    import subprocess
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True,
                       timeout=60)
        with HttpCapture(tls=(cert, key)) as srv:
            for ca, ok in ((None, False), (cert, True)):
                args = ["--influx-url", srv.url, "--influx-db", "t", "--batch-ms", "100"]
                if ca:
                    args += ["--influx-ca", ca]
                bus = Bus([("demo", "file:" + DEMO)], collector_args=args)
                try:
                    bus.start("demo")
                    bus.wait_finished(["demo"])
                    if ok:
                        d = wait_delivered(bus.control)
                        assert d["written"] == d["points"] > 0, d
                        assert srv.requests and srv.requests[-1].path == "/write"
                    else:
                        d = wait_for(lambda: (lambda d: d if d["last_error"] else None)(
                            database(bus.control)), 30, "the certificate to be refused")
                        assert d["written"] == 0 and d["queued_points"] > 0, d
                        assert "certificate" in d["last_error"].lower() or \
                            "ssl" in d["last_error"].lower(), d
                        assert not srv.requests
                finally:
                    bus.close()


def test_bad_options():
    import subprocess
    cases = [
        (["--influx-url", "ftp://x"], "http:// or https://"),
        (["--influx-url", "http://127.0.0.1:1", "--influx-version", "3"], "--influx-version"),
        (["--influx-url", "http://127.0.0.1:1", "--influx-version", "2"], "organisation"),
        (["--spool-dir", "/tmp"], "--spool-dir needs --influx-url"),
        (["--influx-url", "http://127.0.0.1:1", "--influx-password-file", "/nonexistent"],
         "cannot read /nonexistent"),
        (["--influx-url", "http://127.0.0.1:1", "--spool-dir", "/proc/none/spool"],
         "spool directory"),
    ]
    for extra, want in cases:
        r = subprocess.run([os.path.join(BIN, "tapbus-collector"), "--probe", endpoint(),
                            "--control", endpoint()] + extra, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 2, (extra, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and want in lines[0], (extra, r.stderr)


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    only = sys.argv[1:]
    failed = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        start = time.monotonic()
        try:
            t()
            print("ok   %s (%.1f s)" % (t.__name__, time.monotonic() - start), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
