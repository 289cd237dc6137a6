#!/usr/bin/env python3
"""The multi-host lab (tests/lab): probes on capture hosts, a collector and a
real influxd on a central host, all in network namespaces, with traffic of
known counts and sizes on each capture host's link. Each scenario builds its
own lab and removes it afterwards, also when it fails; without root or `ip
netns` every scenario is skipped, not passed. See tests/lab/README.md."""

import errno
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
import tapbus_harness as h  # noqa: E402
import lab as L  # noqa: E402

DB = "tapbus"
# The database side fast enough for a test: seconds close 1 s after their
# end, intervals of 2 s, batches at most 0.2 s old.
DB_ARGS = ["--influx-db", DB, "--batch-ms", "200", "--lateness", "1", "--interval", "2"]
SIZES = {1: (100, 500, 1400), 2: (60, 1000), 3: (300,)}
COUNT = {1: 1000, 2: 600, 3: 400}
OUTAGE_S = 4  # how long the collector stays down in the restart scenario
STEADY = 700  # payload of a steady stream's datagrams
CONTROL_B = "tcp://127.0.0.1:5559"  # a second collector's control endpoint in central


class LabCase(unittest.TestCase):
    def make_lab(self, hosts=2, nat=False):
        try:
            lab = L.Lab(hosts, nat)
        except L.LabUnavailable as e:
            self.skipTest(str(e))
        self.addCleanup(lab.close)
        self.lab = lab
        return lab

    def make_influx(self):
        ix = self.lab.influx()
        ix.create_db(DB)
        return ix

    def send_all(self, plan):
        """Send on several links at once: plan is {host: (count, sizes)}.
        Returns {host: frame lengths}."""
        out, errors = {}, []

        def one(n, count, sizes):
            try:
                out[n] = self.lab.send(n, count, sizes)
            except Exception as e:  # reported below, in the test's thread
                errors.append("host %d: %r" % (n, e))
        threads = [threading.Thread(target=one, args=(n, c, s)) for n, (c, s) in plan.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        return out

    def wait_offered(self, col, streams):
        def heard():
            have = {e["stream"] for e in col.json("streams")["streams"]
                    if e["probe"] is not None}
            return set(streams) <= have
        self.lab.wait(heard, 30, "offers of %s at %s" % (streams, col.name))

    def start(self, col, *streams):
        """Start streams on a collector and wait until each one's probe
        captures (its heartbeat says so)."""
        self.wait_offered(col, streams)
        col.ctl("start", *streams)
        for s in streams:
            probe = s.split(".")[0]
            self.lab.wait(lambda: col.probe_view(s, probe).get("source_state") == "running", 30,
                          "the capture of %s to run" % s)

    def wait_counted(self, col, stream, want, published=None, probe=None):
        """Wait until the collector counted `want` packets of a stream and its
        probe's heartbeat says it published `published` (default want) since
        its source last started, so nothing is still on its way; returns the
        stats."""
        published = want if published is None else published
        probe = probe or stream.split(".")[0]
        self.lab.wait(lambda: col.stats(stream)["packets"] >= want, 30,
                      "%d packets of %s at %s" % (want, stream, col.name))
        self.lab.wait(lambda: col.probe_view(stream, probe).get("published") == published, 30,
                      "a heartbeat of %s counting %d published" % (stream, published))
        s = col.stats(stream)
        self.assertEqual(s["packets"], want, s)
        return s

    def check_stats(self, s, n, lengths, sport=40000, dport=L.DPORT):
        """A stream's totals are exactly the frames sent on host n's link."""
        self.assertEqual((s["packets"], s["bytes"]), (len(lengths), sum(lengths)), s)
        self.assertEqual((s["min_len"], s["max_len"]), (min(lengths), max(lengths)))
        self.assertEqual(s["protocols"]["udp"], {"packets": len(lengths), "bytes": sum(lengths)})
        flow = s["top_flows"][0]
        self.assertEqual(len(s["top_flows"]), 1, s["top_flows"])
        self.assertEqual((flow["src"], flow["dst"], flow["sport"], flow["dport"], flow["proto"],
                          flow["packets"], flow["bytes"]),
                         (self.lab.gen_addr(n), self.lab.dst_addr(n), sport, dport, 17,
                          len(lengths), sum(lengths)))
        self.assertEqual(s["loss"]["capture_drops"], 0, s["loss"])

    def settle_db(self, col):
        """Wait until the collector's writer has delivered every point it
        holds (nothing batched, queued, being sent or spooled)."""
        def settled():
            db = col.status()["database"]
            return (db["connected"] and db["batch_points"] == 0 and db["queued_points"] == 0
                    and db["spool_points"] == 0)
        self.lab.wait(settled, 60, "the database writer to deliver everything")

    def wait_zero_after(self, ix, stream, t):
        """Wait until the database has a zero second of a stream that began
        at t (a Unix time) or later: the idle link watched then."""
        q = ("SELECT packets FROM tapbus_traffic WHERE stream = %s AND packets = 0 "
             "AND time >= %d" % (h._string(stream), math.ceil(t) * 10**9))
        self.lab.wait(lambda: ix.points(DB, q), 30,
                      "zero seconds of %s from %.3f on" % (stream, t))

    def unmeasured_points(self, ix, stream, t_from, t_to):
        """{second: packets} of the points of a stream for seconds that began
        at t_from or later and ended by t_to: there should be none when
        nothing measured the stream from t_from to t_to."""
        seconds = {}
        for r in ix.points(DB, "SELECT packets FROM tapbus_traffic WHERE stream = %s"
                           % h._string(stream)):
            sec = r["time"] // 10**9
            seconds[sec] = seconds.get(sec, 0) + r["packets"]
        return {sec: n for sec, n in seconds.items()
                if math.ceil(t_from) <= sec and sec + 1 <= t_to}

    def check_db(self, ix, stream, lengths, probe=None):
        """The database holds exactly the traffic sent: per-second traffic,
        intervals and the final stream point."""
        self.assertEqual(ix.sum(DB, "tapbus_traffic", stream), (len(lengths), sum(lengths)))
        self.assertEqual(ix.sum(DB, "tapbus_traffic", stream, where="class = 'udp'"),
                         (len(lengths), sum(lengths)))
        self.assertEqual(ix.sum(DB, "tapbus_interval", stream), (len(lengths), sum(lengths)))
        final = ix.points(DB, "SELECT * FROM tapbus_stream WHERE stream = %s GROUP BY *"
                          % h._string(stream))
        self.assertEqual([(r["state"], r["packets"], r["bytes"], r["len_min"], r["len_max"])
                          for r in final],
                         [("stopped", len(lengths), sum(lengths), min(lengths), max(lengths))])
        loss = ix.points(DB, "SELECT last(*) FROM tapbus_loss WHERE stream = %s GROUP BY probe"
                         % h._string(stream))
        self.assertEqual([r["probe"] for r in loss], [probe or stream])
        return loss[0]

    def measure_at_once(self, col, ix, hosts=(1, 2)):
        """Start the streams of several hosts, send on their links at once,
        and check that the statistics and the database hold exactly what was
        sent."""
        streams = ["cap%d" % n for n in hosts]
        self.start(col, *streams)
        sent = self.send_all({n: (COUNT[n], SIZES[n]) for n in hosts})
        for n in hosts:
            s = self.wait_counted(col, "cap%d" % n, COUNT[n])
            self.check_stats(s, n, sent[n])
            self.assertEqual(s["loss"]["seq_gaps"], 0)
            self.assertEqual(s["loss"]["bus_drops"], 0)
            self.assertEqual(s["loss"]["probe_restarts"], 0)
        # While the streams run, their seconds reach the database exactly.
        for n in hosts:
            self.wait_db(ix, "cap%d" % n, sent[n])
        col.ctl("stop", *streams)
        self.settle_db(col)
        for n in hosts:
            loss = self.check_db(ix, "cap%d" % n, sent[n])
            self.assertEqual((loss["last_received"], loss["last_seq_gaps"],
                              loss["last_restarts"], loss["last_capture_drops"]),
                             (COUNT[n], 0, 0, 0), loss)

    def wait_db(self, ix, stream, lengths):
        want = (len(lengths), sum(lengths))
        self.lab.wait(lambda: ix.sum(DB, "tapbus_traffic", stream) == want, 30,
                      "the seconds of %s in the database" % stream)

    def test_1_hosts_measured_at_once(self):
        lab = self.make_lab(hosts=3)
        ix = self.make_influx()
        col = lab.collector(["--influx-url", ix.url] + DB_ARGS)
        for n in (1, 2, 3):
            lab.probe(n)
        self.measure_at_once(col, ix, hosts=(1, 2, 3))

    def test_2_probes_behind_nat_connect_to_the_collector(self):
        lab = self.make_lab(hosts=2, nat=True)
        # The premise: the central host has no way to the probes' network.
        with L.in_netns(lab.central), socket.socket() as s:
            s.settimeout(5)
            self.assertEqual(s.connect_ex((lab.cap_addr(1), L.PROBE_PORT)), errno.ENETUNREACH)
        ix = self.make_influx()
        listen = lab.listen_endpoint()
        col = lab.collector(["--listen", listen, "--influx-url", ix.url] + DB_ARGS, probes=[])
        for n in (1, 2):
            lab.probe(n, connect=listen)
        lab.wait(lambda: col.endpoint(listen)["peers"] == 2, 30, "both probes to connect")
        ep = col.endpoint(listen)
        self.assertEqual((ep["kind"], ep["state"], ep["handshake_failures"]),
                         ("listen", "listening", 0), ep)
        # Both connections come from the router's address: through the NAT.
        r = L._run("ip", "netns", "exec", lab.central, "ss", "-Htn", "state", "established",
                   "( sport = :%d )" % L.LISTEN_PORT)
        peers = sorted(line.split()[-1].rsplit(":", 1)[0] for line in r.stdout.splitlines())
        self.assertEqual(peers, [L.MGMT_NET + ".2"] * 2, r.stdout)
        self.measure_at_once(col, ix)

    def test_3_probe_killed_and_restarted(self):
        lab = self.make_lab(hosts=2)
        ix = self.make_influx()
        col = lab.collector(["--influx-url", ix.url] + DB_ARGS)
        probe1 = lab.probe(1)
        lab.probe(2)
        self.start(col, "cap1", "cap2")
        before = self.send_all({1: (400, SIZES[1]), 2: (300, SIZES[2])})
        self.wait_counted(col, "cap1", 400)
        self.wait_counted(col, "cap2", 300)

        # Mid-stream: datagrams flow on cap1's link without a pause, and the
        # probe is killed once the collector has counted some of them.
        steady = L.Steady(lab, 1, STEADY)
        self.addCleanup(steady.stop)
        lab.wait(lambda: col.stats("cap1")["packets"] >= 500, 30,
                 "the collector to count the steady stream")
        t_kill = time.time()
        probe1.stop(signal.SIGKILL)
        # The outage shows: the probe is silent, its endpoint refuses.
        lab.wait(lambda: col.probe_view("cap1", "cap1").get("silent"), 30,
                 "the killed probe to show as silent")
        lab.wait(lambda: col.endpoint(lab.probe_endpoint(1))["state"] == "refused", 30,
                 "the killed probe's endpoint to refuse")
        self.assertEqual(col.stream_status("cap1")["state"], "running")
        # Sent while no probe captures: measured by nobody, counted nowhere.
        sent_steady = steady.stop()
        counted_steady = col.stats("cap1")["packets"] - 400
        self.assertGreaterEqual(counted_steady, 100)
        self.assertLess(counted_steady, sent_steady)
        during = self.send_all({2: (200, SIZES[2])})
        self.wait_counted(col, "cap2", 500)

        probe1 = lab.restart(probe1)
        t_restart = time.time()
        lab.wait(lambda: "iface source started" in probe1.output(), 30,
                 "the restarted probe to capture")
        lab.wait(lambda: col.stats("cap1")["loss"]["probe_restarts"] == 1, 30,
                 "the collector to see the restart")
        lab.wait(lambda: not col.probe_view("cap1", "cap1").get("silent"), 30,
                 "the restarted probe to be heard")

        # Idle, watched again: zero seconds after the restart.
        self.wait_zero_after(ix, "cap1", t_restart + 1)
        after = self.send_all({1: (350, SIZES[1]), 2: (100, SIZES[2])})

        # Nothing counted twice, nothing invented: what the killed probe had
        # published, then what was sent after the restart, exactly; the
        # restart reported, no gap in the sequence.
        lengths1 = before[1] + [STEADY + L.HDR] * counted_steady + after[1]
        s = self.wait_counted(col, "cap1", len(lengths1), published=350)
        self.check_stats(s, 1, lengths1)
        self.assertEqual((s["loss"]["probe_restarts"], s["loss"]["seq_gaps"], s["run_resets"]),
                         (1, 0, 0), s)
        view = col.probe_view("cap1", "cap1")
        self.assertEqual((view["received"], view["published"]), (350, 350), view)
        self.assertEqual(col.stream_status("cap1")["loss"]["probe_restarts"], 1)
        lengths2 = before[2] + during[2] + after[2]
        s2 = self.wait_counted(col, "cap2", 600)
        self.check_stats(s2, 2, lengths2)
        self.assertEqual((s2["loss"]["probe_restarts"], s2["loss"]["seq_gaps"]), (0, 0))

        self.wait_db(ix, "cap1", lengths1)
        self.wait_db(ix, "cap2", lengths2)
        col.ctl("stop", "cap1", "cap2")
        self.settle_db(col)
        loss = self.check_db(ix, "cap1", lengths1)
        self.assertEqual((loss["last_restarts"], loss["last_received"], loss["last_seq_gaps"]),
                         (1, 350, 0), loss)
        loss = self.check_db(ix, "cap2", lengths2)
        self.assertEqual((loss["last_restarts"], loss["last_received"]), (0, 600), loss)

        # The outage is a gap in the per-second series, not idle time: no
        # second that began after the kill and ended before the restart has
        # a point (a zero there would claim the link was watched and quiet).
        # The signal goes out after t_kill was taken and the probe's last
        # messages are still on their way: the second in which it died may
        # have been watched, so the check starts a second later.
        self.assertEqual(self.unmeasured_points(ix, "cap1", t_kill + 1, t_restart), {},
                         "tapbus_traffic has points (second: packets) for seconds no probe "
                         "captured: the probe was killed at %.3f and restarted at %.3f"
                         % (t_kill, t_restart))

    def test_4_link_cut_and_restored(self):
        lab = self.make_lab(hosts=2)
        ix = self.make_influx()
        col = lab.collector(["--influx-url", ix.url] + DB_ARGS)
        probe1 = lab.probe(1)
        lab.probe(2)
        self.start(col, "cap1", "cap2")
        before = self.send_all({1: (400, SIZES[1]), 2: (300, SIZES[2])})
        self.wait_counted(col, "cap1", 400)
        self.wait_counted(col, "cap2", 300)

        lab.link(1, up=False)
        # Captured and published into a link that carries nothing: lost.
        during = self.send_all({1: (200, (700,)), 2: (200, SIZES[2])})
        ep = lab.probe_endpoint(1)
        lab.wait(lambda: col.endpoint(ep)["state"] == "disconnected", 60,
                 "the collector to give up the cut connection")
        lab.wait(lambda: col.probe_view("cap1", "cap1").get("silent"), 30,
                 "the probe behind the cut to show as silent")
        # The probe gives its side up too (its subscriber timed out), so the
        # connection after the cut is a new subscriber, not a second one.
        lab.wait(lambda: "no subscriber left" in probe1.output(), 60,
                 "the probe to give up the cut connection")
        self.assertEqual(col.stream_status("cap1")["state"], "running")
        self.wait_counted(col, "cap2", 500)

        lab.link(1, up=True)
        # It recovers by itself: reconnected, subscribed, capturing again,
        # and the loss shows in status.
        lab.wait(lambda: col.endpoint(ep)["state"] == "connected", 60,
                 "the collector to reconnect")
        lab.wait(lambda: probe1.output().count("iface source started") == 2, 30,
                 "the probe to capture again")
        lab.wait(lambda: col.stream_status("cap1")["loss"]["seq_gaps"] > 0, 30,
                 "the loss to show in status")
        lab.wait(lambda: not col.probe_view("cap1", "cap1").get("silent"), 30,
                 "the probe to be heard again")
        status = col.stream_status("cap1")
        self.assertEqual(status["probes"][0]["seq_gaps"], status["loss"]["seq_gaps"])
        after = self.send_all({1: (300, SIZES[1]), 2: (100, SIZES[2])})

        # Everything sent while the link carried data counted exactly; what
        # was lost in the cut is not made up.
        lengths1 = before[1] + after[1]
        s = self.wait_counted(col, "cap1", 700, published=300)
        self.check_stats(s, 1, lengths1)
        self.assertGreater(s["loss"]["seq_gaps"], 0)
        self.assertEqual((s["loss"]["probe_restarts"], s["loss"]["bus_drops"]), (0, 0))
        lengths2 = before[2] + during[2] + after[2]
        s2 = self.wait_counted(col, "cap2", 600)
        self.check_stats(s2, 2, lengths2)
        self.assertEqual(s2["loss"]["seq_gaps"], 0)

        self.wait_db(ix, "cap1", lengths1)
        self.wait_db(ix, "cap2", lengths2)
        col.ctl("stop", "cap1", "cap2")
        self.settle_db(col)
        loss = self.check_db(ix, "cap1", lengths1)
        self.assertEqual(loss["last_seq_gaps"], s["loss"]["seq_gaps"], loss)
        self.check_db(ix, "cap2", lengths2)

    def test_5_two_collectors_own_different_streams_of_the_same_probes(self):
        lab = self.make_lab(hosts=2)
        ix = self.make_influx()
        # Each probe offers two streams of its link: port 9999 and port 8888.
        for n in (1, 2):
            lab.probe(n, ["--filter-for", "cap%d.b=udp port 8888" % n],
                      sources=[("cap%d" % n, "iface:tap0"), ("cap%d.b" % n, "iface:tap0")])
        a = lab.collector(["--influx-url", ix.url] + DB_ARGS, name="collector A")
        b = lab.collector(["--influx-url", ix.url] + DB_ARGS, control=CONTROL_B,
                          name="collector B")
        owner = {"cap1": a, "cap2.b": a, "cap2": b, "cap1.b": b}
        self.start(a, "cap1", "cap2.b")
        self.start(b, "cap2", "cap1.b")

        b_plan = {1: (300, (200,)), 2: (250, (80, 900))}
        sent, errors = {}, []

        def send(n, stream, count, sizes, dport, sport):
            try:
                sent[stream] = lab.send(n, count, sizes, dport=dport, sport=sport)
            except Exception as e:
                errors.append("%s: %r" % (stream, e))
        threads = []
        for n in (1, 2):
            threads.append(threading.Thread(target=send, args=(
                n, "cap%d" % n, COUNT[n], SIZES[n], L.DPORT, 40000)))
            threads.append(threading.Thread(target=send, args=(
                n, "cap%d.b" % n, b_plan[n][0], b_plan[n][1], 8888, 40001)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

        for stream, col in owner.items():
            n = int(stream[3])
            s = self.wait_counted(col, stream, len(sent[stream]))
            self.check_stats(s, n, sent[stream], sport=40001 if "." in stream else 40000,
                             dport=8888 if "." in stream else L.DPORT)
            self.assertEqual(s["loss"]["seq_gaps"], 0)
            other = b if col is a else a
            code, _, err = other.ctl("stats", stream, check=False)
            self.assertNotEqual(code, 0)
            self.assertIn("unknown stream '%s'" % stream, err)
        # Subscriptions partition the work: neither collector received a
        # message of the other's streams.
        for col in (a, b):
            self.assertEqual(col.status()["collector"]["bus"]["not_started"], 0)
        # tapbusctl in front of both sees each stream measured by its owner.
        merged = json.loads(lab.ctl([L.CONTROL, CONTROL_B], "--json", "streams")[1])
        measured = {e["stream"]: [m["collector"] for m in e["measured_by"]]
                    for e in merged["streams"]}
        self.assertEqual(measured, {s: [c.control] for s, c in owner.items()})

        for stream in owner:
            self.wait_db(ix, stream, sent[stream])
        a.ctl("stop", "cap1", "cap2.b")
        b.ctl("stop", "cap2", "cap1.b")
        self.settle_db(a)
        self.settle_db(b)
        for stream in owner:
            loss = self.check_db(ix, stream, sent[stream], probe=stream[:4])
            self.assertEqual((loss["last_received"], loss["last_seq_gaps"]),
                             (len(sent[stream]), 0), loss)

    def test_6_collector_killed_and_restarted_with_state_and_spool(self):
        lab = self.make_lab(hosts=2)
        ix = self.make_influx()
        state = os.path.join(lab.tmp, "state")
        spool = os.path.join(lab.tmp, "spool")
        os.mkdir(state)
        col = lab.collector(["--influx-url", ix.url, "--state-dir", state, "--spool-dir", spool]
                            + DB_ARGS)
        for n in (1, 2):
            lab.probe(n)
        self.start(col, "cap1", "cap2")
        plan = {"before": {1: (400, SIZES[1]), 2: (300, SIZES[2])},
                "spooled": {1: (200, (700,)), 2: (150, (700,))},
                "down": {1: (250, (900,)), 2: (100, (900,))},
                "after": {1: (350, SIZES[1]), 2: (200, SIZES[2])}}
        sent = {}
        sent["before"] = self.send_all(plan["before"])
        for n in (1, 2):
            self.wait_counted(col, "cap%d" % n, plan["before"][n][0])
            self.wait_db(ix, "cap%d" % n, sent["before"][n])

        # The database goes away: what follows is spooled.
        ix.kill()
        sent["spooled"] = self.send_all(plan["spooled"])
        counted = {n: plan["before"][n][0] + plan["spooled"][n][0] for n in (1, 2)}
        for n in (1, 2):
            self.wait_counted(col, "cap%d" % n, counted[n])

        def in_spool():
            db = col.status()["database"]
            return (not db["connected"] and db["spool_points"] > 0 and db["batch_points"] == 0
                    and db["queued_points"] == 0)
        lab.wait(in_spool, 60, "points in the spool, none in memory")
        # A snapshot with everything counted so far, then kill -9.
        t_snapshot = time.time()
        first = col.status()["collector"]["state"]["snapshots"]
        lab.wait(lambda: col.status()["collector"]["state"]["snapshots"] >= first + 2, 30,
                 "a fresh snapshot")
        t_kill = time.time()

        def while_down():
            # Sent while no collector runs: the probes, without a subscriber,
            # capture nothing.
            for n in (1, 2):
                lab.wait(lambda: "no subscriber left" in lab.probes[n].output(), 30,
                         "probe %d to lose its subscriber" % n)
            sent["down"] = self.send_all(plan["down"])
            # The outage lasts a few whole seconds (the scenario's length,
            # nothing waits on it).
            time.sleep(OUTAGE_S)
            self.t_start = time.time()
        col.restart(signal.SIGKILL, before_start=while_down)
        t_start = self.t_start

        # The streams are back, running, with the statistics of the snapshot
        # (the probes capture again for the collector that subscribed again);
        # the spool from before the crash waits for the database.
        for n in (1, 2):
            stream = "cap%d" % n
            lab.wait(lambda: lab.probes[n].output().count("iface source started") == 2, 30,
                     "probe %d to capture again" % n)
            lab.wait(lambda: col.probe_view(stream, stream).get("source_state") == "running"
                     and not col.probe_view(stream, stream).get("silent"), 30,
                     "%s to be heard again" % stream)
            st = col.stream_status(stream)
            self.assertEqual((st["state"], st["packets"]), ("running", counted[n]), st)
        t_resumed = time.time()
        db = col.status()["database"]
        self.assertGreater(db["spool_points"], 0, db)
        self.assertFalse(db["connected"], db)
        ix.start()
        self.settle_db(col)

        # The gap is reported: how long and when, in status and stats.
        for n in (1, 2):
            st = col.stream_status("cap%d" % n)
            self.assertEqual(st["resumes"], 1, st)
            self.assertIn("not measured for", st["reason"])
            self.assertIn("1 collector restart(s)", st["reason"])
            # From the last snapshot (after t_snapshot, before the kill) to the
            # resumption (after the new collector started, before we saw it).
            self.assertGreaterEqual(st["unmeasured_s"], t_start - t_kill, st)
            self.assertLessEqual(st["unmeasured_s"], t_resumed - t_snapshot, st)
            self.assertEqual(col.stats("cap%d" % n)["unmeasured_s"], st["unmeasured_s"])

        # Idle, measured again: zero seconds after the restart.
        for n in (1, 2):
            self.wait_zero_after(ix, "cap%d" % n, t_start + 1)
        sent["after"] = self.send_all(plan["after"])
        lengths = {n: sent["before"][n] + sent["spooled"][n] + sent["after"][n] for n in (1, 2)}
        for n in (1, 2):
            stream = "cap%d" % n
            s = self.wait_counted(col, stream, len(lengths[n]),
                                  published=len(sent["after"][n]))
            self.check_stats(s, n, lengths[n])
            self.assertEqual((s["resumes"], s["loss"]["probe_restarts"], s["run_resets"]),
                             (1, 0, 0), s)
            self.wait_db(ix, stream, lengths[n])
        col.ctl("stop", "cap1", "cap2")
        self.settle_db(col)
        unmeasured = {}
        for n in (1, 2):
            stream = "cap%d" % n
            loss = self.check_db(ix, stream, lengths[n])
            self.assertAlmostEqual(loss["last_unmeasured_ms"],
                                   col.stats(stream)["unmeasured_s"] * 1000, delta=1, msg=loss)
            # Not measured is not idle: no point for a second that began after
            # the kill and ended before the new collector started.
            unmeasured[stream] = self.unmeasured_points(ix, stream, t_kill, t_start)
        self.assertEqual(unmeasured, {"cap1": {}, "cap2": {}},
                         "tapbus_traffic has points (second: packets) for seconds no collector "
                         "measured: killed at %.3f, started again at %.3f" % (t_kill, t_start))


# The exit code when every scenario was skipped (no root, no namespaces):
# ctest reports the test as skipped (SKIP_RETURN_CODE), not as passed.
EXIT_ALL_SKIPPED = 77

if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun and len(result.skipped) == result.testsRun:
        sys.exit(EXIT_ALL_SKIPPED)
