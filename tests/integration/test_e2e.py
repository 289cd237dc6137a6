#!/usr/bin/env python3
"""End to end on a real ZeroMQ bus over loopback: tapbus-probe replays
captures from the shared corpus, tapbus-collector measures them, tapbusctl
drives and reads them, and tshark says what the answer must be."""

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

# Captures chosen to cover the link types the decoder knows (Ethernet with
# and without VLAN tags, Linux cooked, BSD null, raw IP, raw IPv4/IPv6, PPP,
# Cisco HDLC, Frame Relay, Juniper, 802.11 with radiotap, PKTAP, ARCnet),
# encapsulations (MPLS, PPP carrying MPLS, MACsec), IPv6 extension headers,
# every protocol class, and link types it does not know (counted as non-IP,
# exactly as tshark's first IP header says).
CURATED = [
    "babel_update_oobr.pcap", "dcb_ets.pcap", "dhcp-rfc4388.pcap", "babel.pcap",
    "beep-oobr.pcap", "resp_3_malicious.pcap", "forces3.pcap", "ISIS_p2p_adjacency.pcap",
    "ieee802.11_exthdr.pcap", "quic_vn.pcap", "q933-heapoverflow-2.pcap",
    "ipv6_mobility_1.pcap", "vsock-1.pcapng", "babel_rtt.pcap", "icmpv6-RFC2894-RR.pcap",
    "ospf-gmpls.pcap", "mptcp-tcprst.pcap", "LINKTYPE_IPV4.pcap", "LINKTYPE_IPV6.pcap",
    "LINKTYPE_RAW_ipv6.pcap", "erspan-type-iii-pb-1.pcap", "extract_read2_asan.pcap",
    "icmp-cksum-oobr-1.pcap", "icmpv6_nodeinfo_queryipv6.pcap",
    "tcp_rst_diag_payload-trunc.pcap", "pim-packet-assortment.pcap", "802.1ad_QinQ.pcap",
    "bigtcp-ipv6-hbh.pcap", "ipv6-srh-ext-header.pcap", "ipv6_jumbogram_1.pcap",
    "AoE_Linux.pcap", "EIGRP_goodbye.pcap", "02-sunrise-sunset-esp.pcap",
    "mpls-traceroute.pcap", "lspping-fec-ldp.pcap", "macsec-integonly.pcap", "HDLC.pcap",
    "OSPFv3_NBMA_adjacencies.pcap", "bgp-aigp.pcap", "LINKTYPE_PKTAP.pcap",
    "arcnet-rfc1201-arp-icmp-http.pcap", "ieee802.11_htc.pcap",
]


def corpus(name):
    return h.corpus_file(name)


def compare(testcase, name, got, want):
    keys = ["packets", "bytes", "min_len", "max_len", "first_ts", "last_ts"]
    if got.get("ts_outliers"):
        # Fuzzed records with absurd capture times (babel_update_oobr.pcap:
        # 2038 in a 2005 capture) are counted at the stream's time: first
        # and last lie within tshark's, and only a capture spanning more
        # than an hour can have any.
        testcase.assertGreater(want["last_ts"] - want["first_ts"], 3600 * 10**9, name)
        testcase.assertTrue(want["first_ts"] <= got["first_ts"] <= got["last_ts"]
                            <= want["last_ts"], name)
        keys = keys[:4]
    for key in keys:
        testcase.assertEqual(got[key], want[key], "%s: %s" % (name, key))
    for cls, counts in want["protocols"].items():
        testcase.assertEqual(got["protocols"][cls], counts, "%s: protocol %s" % (name, cls))


def write_pcap_ns(path, packets):
    """A nanosecond pcap of raw IPv4 UDP packets: [(sec, nsec, payload_len)]."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 228))
        for sec, nsec, plen in packets:
            total = 20 + 8 + plen
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 17, 0,
                             bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7]))
            udp = struct.pack("!HHHH", 40000, 53, 8 + plen, 0)
            frame = ip + udp + b"\0" * plen
            f.write(struct.pack("<IIII", sec, nsec, len(frame), len(frame)) + frame)


def write_arp_and_bgp(path, arp, bgp):
    """An Ethernet pcap of `arp` ARP requests then `bgp` packets of one BGP
    session (IPv4 TCP 10.0.0.1:40000 -> 10.0.0.2:179), interleaved."""
    macs = bytes([0xff] * 6) + bytes([2, 0, 0, 0, 0, 1])
    arp_frame = macs + struct.pack("!HHHBBH", 0x0806, 1, 0x0800, 6, 4, 1) + \
        bytes([2, 0, 0, 0, 0, 1, 10, 0, 0, 1]) + bytes(6) + bytes([10, 0, 0, 3])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    tcp = struct.pack("!HHIIBBHHH", 40000, 179, 1, 0, 0x50, 0x18, 65535, 0, 0)
    bgp_frame = macs + struct.pack("!H", 0x0800) + ip + tcp
    frames = [arp_frame] * arp + [bgp_frame] * bgp
    frames[::2], frames[1::2] = frames[:(len(frames) + 1) // 2], frames[(len(frames) + 1) // 2:]
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)) + frame)


def write_pcapng_two_interfaces(path, packets):
    """A pcapng file with two Ethernet interfaces: #0 with nanosecond time
    stamps (if_tsresol 9), #1 with the default microseconds. packets:
    [(interface, ns since the epoch, payload length)] of IPv4 UDP frames."""
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    tsresol = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    out += block(1, struct.pack("<HHI", 1, 0, 65535) + tsresol)
    out += block(1, struct.pack("<HHI", 1, 0, 65535))
    for iface, ns, plen in packets:
        ts = ns if iface == 0 else ns // 1000
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + plen, 1, 0, 64, 17, 0,
                         bytes([192, 0, 2, 10 + iface]), bytes([198, 51, 100, 1]))
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + \
            struct.pack("!HHHH", 5000, 53, 8 + plen, 0) + b"\0" * plen
        out += block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                    len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(out)


class EndToEnd(unittest.TestCase):
    def test_pcapng_with_two_interfaces_keeps_nanoseconds(self):
        t0 = 1700000000 * 10**9
        packets = [(0, t0 + 123456789, 10), (1, t0 + 500000000, 20),
                   (0, t0 + 999999999, 30), (1, t0 + 2 * 10**9 + 1000, 40)]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "two.pcapng")
            write_pcapng_two_interfaces(path, packets)
            want = h.tshark_expect(path)
            bus = h.Bus([("ng", "file:" + path)])
            try:
                bus.start("ng")
                bus.wait_finished(["ng"])
                got = bus.stats("ng")
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        compare(self, "two.pcapng", got, want)
        self.assertEqual(got["packets"], 4)
        self.assertEqual(got["first_ts"], t0 + 123456789)  # nanoseconds kept
        self.assertEqual(got["last_ts"], t0 + 2 * 10**9 + 1000)
        hosts = sorted(x["addr"] for x in got["top_hosts"])
        self.assertEqual(hosts, ["192.0.2.10", "192.0.2.11", "198.51.100.1"])

    def test_curated_captures_match_tshark(self):
        sources = [("c%02d" % i, "file:" + corpus(n)) for i, n in enumerate(CURATED)]
        bus = h.Bus(sources)
        try:
            bus.start(*[s for s, _ in sources])
            bus.wait_finished([s for s, _ in sources])
            for (stream, spec), name in zip(sources, CURATED):
                got = bus.stats(stream)
                self.assertEqual(got["state"], "finished")
                self.assertEqual(got["loss"]["seq_gaps"], 0)
                self.assertEqual(got["loss"]["lost_packets"], 0)
                compare(self, name, got, h.tshark_expect(corpus(name)))
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_stats_document_and_nanoseconds(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ns.pcap")
            write_pcap_ns(path, [(1700000000, 123456789, 10), (1700000000, 123456790, 100),
                                 (1700000002, 999999999, 10), (1700000003, 1, 50)])
            bus = h.Bus([("01::10:01", "file:" + path)])
            try:
                # "forgotten": ended streams forgotten to make room (none here).
                self.assertEqual(bus.start("01::10:01"),
                                 {"started": ["01::10:01"], "warnings": [], "forgotten": []})
                bus.wait_finished(["01::10:01"])
                s = bus.stats("01::10:01")
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        for key in ("stream", "state", "packets", "bytes", "min_len", "max_len", "avg_pps",
                    "first_ts", "last_ts", "last_packet", "top_flows", "top_hosts",
                    "protocols", "loss", "started_ns", "ended_ns"):
            self.assertIn(key, s)
        self.assertEqual(s["state"], "finished")
        self.assertGreaterEqual(s["ended_ns"], s["started_ns"])
        self.assertLess(s["ended_ns"] - s["started_ns"], 120 * 10**9)
        self.assertEqual(s["packets"], 4)
        self.assertEqual(s["bytes"], 4 * 28 + 170)
        self.assertEqual((s["min_len"], s["max_len"]), (38, 128))
        self.assertEqual(s["first_ts"], 1700000000123456789)
        self.assertEqual(s["last_ts"], 1700000003000000001)
        self.assertEqual(s["last_packet"]["len"], 78)
        self.assertEqual(s["protocols"]["udp"], {"packets": 4, "bytes": 282})
        self.assertAlmostEqual(s["avg_pps"], 4 / 2.876543212, places=6)
        flow = s["top_flows"][0]
        self.assertEqual((flow["src"], flow["dst"], flow["sport"], flow["dport"],
                          flow["proto"], flow["packets"], flow["bytes"]),
                         ("192.0.2.1", "198.51.100.7", 40000, 53, 17, 4, 282))
        self.assertEqual([x["addr"] for x in s["top_hosts"]], ["192.0.2.1", "198.51.100.7"])

    def test_counting_thread_counts_right(self):
        # --threads 2 counts full chunks' top tables on a second thread. A
        # zipf capture of 120,000 packets in 20,000 flows, with top tables
        # small enough (256 entries) to be full, their counts estimates with
        # an error bound: with one thread and with two, the totals are
        # tshark's, the five heaviest flows are the first five, and every
        # listed flow's true count lies within its reported count and error
        # (how batches group into chunks depends on timing, so the errors of
        # two runs may differ); status says the thread counted chunks.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "zipf.pcap")
            subprocess.run([os.path.join(h.BIN, "tb-gen-pcap"), "-o", path, "--packets",
                            "120000", "--flows", "20000", "--seed", "5"], check=True,
                           capture_output=True)
            want = h.tshark_expect(path, with_tuples=True)
            ranked = sorted(want["tuples"].items(), key=lambda kv: -kv[1])
            # No ties among the six heaviest: the first five are one list.
            self.assertTrue(all(ranked[i][1] > ranked[i + 1][1] for i in range(5)), ranked[:6])
            heaviest = ranked[:5]
            for threads in ("1", "2"):
                bus = h.Bus([("z", "file:" + path)],
                            collector_args=["--threads", threads, "--flows", "256", "--hosts",
                                            "256", "--top", "64"])
                try:
                    bus.start("z")
                    bus.wait_finished(["z"])
                    s = bus.stats("z")
                    coll = h.ctl_json(bus.control, "status")["collector"]
                    human = h.ctl(bus.control, "status")[1]
                finally:
                    codes, logs = bus.close()
                self.assertEqual(codes, (0, 0), logs)
                compare(self, "threads " + threads, s, want)
                self.assertEqual(coll["threads"], int(threads))
                if threads == "2":
                    self.assertGreaterEqual(coll["chunks_assisted"], 1)
                    self.assertIn("counting   2 threads", human)
                else:
                    self.assertEqual(coll["chunks_assisted"], 0)
                    self.assertNotIn("counting", human)
                flows = s["top_flows"]
                self.assertEqual(len(flows), 64)
                # The table is full: counts are estimates with a bound.
                self.assertGreater(s["top_flows_error_bound"], 0)
                keyed = [((f["src"], f["dst"], f["proto"], f["sport"], f["dport"]), f)
                         for f in flows]
                self.assertEqual([k for k, _ in keyed[:5]], [k for k, _ in heaviest],
                                 "threads " + threads)
                for key, f in keyed:
                    true = want["tuples"].get(key, 0)
                    self.assertTrue(f["packets"] - f["error"] <= true <= f["packets"],
                                    (threads, key, true, f))

    def test_non_ip_is_never_the_most_active_tuple(self):
        # 12 ARP packets and 11 of one BGP session: the BGP session is the
        # most active tuple; ARP counts as non_ip, in no flow and no host.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "arp-bgp.pcap")
            write_arp_and_bgp(path, 12, 11)
            bus = h.Bus([("arp", "file:" + path)])
            try:
                bus.start("arp")
                bus.wait_finished(["arp"])
                s = bus.stats("arp")
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        self.assertEqual(s["packets"], 23)
        self.assertEqual(s["protocols"]["non_ip"]["packets"], 12)
        self.assertEqual(s["protocols"]["tcp"]["packets"], 11)
        self.assertEqual([(f["src"], f["dst"], f["sport"], f["dport"], f["proto"], f["packets"])
                          for f in s["top_flows"]],
                         [("10.0.0.1", "10.0.0.2", 40000, 179, 6, 11)])
        self.assertEqual(sorted((x["addr"], x["packets"]) for x in s["top_hosts"]),
                         [("10.0.0.1", 11), ("10.0.0.2", 11)])

    def test_probe_connects_to_a_listening_collector(self):
        name = "pim-packet-assortment.pcap"
        bus = h.Bus([("n", "file:" + corpus(name))], reverse=True)
        try:
            bus.start("n")
            bus.wait_finished(["n"])
            compare(self, name, bus.stats("n"), h.tshark_expect(corpus(name)))
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_replay_speed_paces_by_capture_time(self):
        # 21 packets spread over 8 s of capture time, replayed 4x as fast: the
        # replay cannot finish before 2 s have passed (a lower bound only: a
        # busy machine may take longer).
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "paced.pcap")
            write_pcap_ns(path, [(1700000000 + i // 2 * 1, (i % 2) * 500000000, 20)
                                 for i in range(17)] +
                          [(1700000008, 0, 20)] * 4)
            bus = h.Bus([("p", "file:" + path)], probe_args=["--replay-speed", "4"])
            try:
                t0 = time.monotonic()
                bus.start("p")
                bus.wait_finished(["p"], timeout=60)
                elapsed = time.monotonic() - t0
                s = bus.stats("p")
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        self.assertGreaterEqual(elapsed, 2.0)
        self.assertEqual(s["packets"], 21)
        self.assertEqual(s["first_ts"], 1700000000 * 10**9)
        self.assertEqual(s["last_ts"], 1700000008 * 10**9)

    def test_restart_replays_and_stop(self):
        name = "pim-packet-assortment.pcap"
        want = h.tshark_expect(corpus(name))
        bus = h.Bus([("a", "file:" + corpus(name)), ("ab", "file:" + corpus("babel.pcap"))])
        try:
            for run in range(2):
                bus.start("a")
                bus.wait_finished(["a"])
                compare(self, name, bus.stats("a"), want)
                # "a" must not have pulled in stream "ab": topics are terminated.
                status = h.ctl_json(bus.control, "status")
                self.assertEqual([s["stream"] for s in status["streams"]], ["a"])
                if run == 0:
                    self.assertEqual(status["collector"]["bus"]["not_started"], 0)
                self.assertEqual(h.ctl_json(bus.control, "stop"), {"stopped": ["a"]})
                self.assertEqual(bus.stats("a")["state"], "stopped")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_bad_capture_files_are_reported_not_fatal(self):
        with tempfile.TemporaryDirectory() as tmp:
            junk = os.path.join(tmp, "junk.pcap")
            with open(junk, "wb") as f:
                f.write(b"this is not a capture file at all\n" * 10)
            good = corpus("babel.pcap")
            cut = os.path.join(tmp, "cut.pcap")
            with open(good, "rb") as f:
                data = f.read()
            with open(cut, "wb") as f:
                f.write(data[:len(data) - 7])
            bus = h.Bus([("junk", "file:" + junk), ("cut", "file:" + cut),
                         ("missing", "file:" + os.path.join(tmp, "nope.pcap")),
                         ("good", "file:" + good)])
            try:
                bus.start("junk", "cut", "missing", "good")
                bus.wait_finished(["junk", "cut", "missing", "good"])
                want = h.tshark_expect(good)
                compare(self, "babel.pcap", bus.stats("good"), want)
                # Every complete packet before the cut is counted.
                self.assertEqual(bus.stats("cut")["packets"], want["packets"] - 1)
                self.assertEqual(bus.stats("junk")["packets"], 0)
                status = h.ctl_json(bus.control, "status")
                probes = {s["stream"]: s["probes"][0] for s in status["streams"]}
                self.assertEqual(probes["junk"]["source_state"], "error")
                self.assertIn("junk.pcap", probes["junk"]["detail"])
                self.assertEqual(probes["missing"]["source_state"], "error")
                self.assertEqual(probes["good"]["source_state"], "finished")
            finally:
                codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)


class Controller(unittest.TestCase):
    def test_unreachable_collector_fails_fast(self):
        t0 = time.monotonic()
        code, out, err = h.ctl(h.endpoint(), "status", timeout_ms=700, check=False)
        self.assertEqual(code, 3)
        self.assertIn("no reply from collector", err)
        self.assertLess(time.monotonic() - t0, 20)

    def test_retry_on_a_new_connection(self):
        """A collector that answers too late for the first attempt: the
        command is asked again on a new connection and succeeds."""
        import signal
        import subprocess
        bus = h.Bus([("s", "file:" + corpus("babel.pcap"))])
        try:
            bus.collector.p.send_signal(signal.SIGSTOP)
            cmd = [os.path.join(h.BIN, "tapbusctl"), "--collector", bus.control, "--timeout",
                   "6000", "--retries", "2", "--json", "status"]
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # The stopped collector's kernel still accepts connections: each
            # attempt shows as one from a new local port. The first attempt
            # (2 s of the 6) gives up; once the second has come on a new
            # connection, the collector may answer.
            port = int(bus.control.rsplit(":", 1)[1])
            seen = set()

            def asked_again():
                seen.update(h.tcp_connections(p.pid, port))
                if p.poll() is not None:
                    raise AssertionError("tapbusctl ended (%d) before asking again: %s"
                                         % (p.returncode, p.stderr.read()))
                return len(seen) >= 2
            try:
                h.wait_for(asked_again, 30, "tapbusctl to ask again on a new connection",
                           interval=0.02)
            except BaseException:
                p.kill()
                p.communicate()
                raise
            bus.collector.p.send_signal(signal.SIGCONT)
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn("collector", json.loads(out))
            # start is sent once: with the collector stopped it times out.
            bus.collector.p.send_signal(signal.SIGSTOP)
            code, _, err = h.ctl(bus.control, "start", "s", timeout_ms=500, check=False)
            bus.collector.p.send_signal(signal.SIGCONT)
            self.assertEqual(code, 3)
            self.assertIn("(1 attempt)", err)
        finally:
            bus.collector.p.send_signal(signal.SIGCONT)
            bus.close()

    def test_status_shows_the_current_rate(self):
        """pps_now: packets over the last second while a paced replay runs
        (demo.pcap: 500 packets/s of capture time), 0 once it finished."""
        demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                            "demo.pcap")
        bus = h.Bus([("paced", "file:" + demo)], probe_args=["--replay-speed", "1"])
        try:
            bus.start("paced")
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "paced")["packets"] > 1000, 30,
                       "two seconds of replay")
            # The rate reads about 500/s while the replay runs (8 s more).
            rates = []

            def paced_rate():
                st = h.ctl_json(bus.control, "status")["streams"][0]
                if st["state"] != "running":
                    raise AssertionError("the replay ended with no rate between 300 and 700 "
                                         "packets/s; rates seen: %s" % rates[-20:])
                rates.append(st["pps_now"])
                return 300 <= st["pps_now"] <= 700
            h.wait_for(paced_rate, 60, "a rate between 300 and 700 packets/s", interval=0.2)
            _, out, _ = h.ctl(bus.control, "status")
            self.assertIn("PPS NOW", out)
            bus.wait_finished(["paced"])
            h.wait_for(lambda: h.ctl_json(bus.control, "status")["streams"][0]["pps_now"] == 0,
                       10, "the rate to drop to 0")
        finally:
            bus.close()

    def test_top_live_view_in_tmux(self):
        """tapbusctl top: a one-shot view when stdout is not a terminal; in a
        terminal (tmux) it refreshes with the current rate and quits on q."""
        import shutil
        import subprocess
        demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                            "demo.pcap")
        bus = h.Bus([("live", "file:" + demo)], probe_args=["--replay-speed", "1"])
        try:
            bus.start("live")
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "live")["packets"] > 300, 30,
                       "some packets")
            code, out, _ = h.ctl(bus.control, "top", "live", "-n", "3")
            self.assertEqual(code, 0)
            self.assertIn("live (running)", out)
            # Nothing skipped: the loss line does not mention files.
            self.assertRegex(out, r"(?m)^loss  0 gaps, 0 lost packets, 0 capture drops, "
                             r"0 bus drops$")
            self.assertEqual(len([ln for ln in out.splitlines() if ln[:2] in ("1 ", "2 ", "3 ")
                                  ]), 6, out)  # 3 flows + 3 hosts
            self.assertNotIn("4 ", [ln[:2] for ln in out.splitlines()])
            # IPv4 flows and hosts: columns as wide as the addresses, in 80 columns.
            self.assertLessEqual(max(len(ln) for ln in out.splitlines()), 80, out)
            self.assertIn("TOP  SOURCE", out)
            code, _, err = h.ctl(bus.control, "top", check=False)
            self.assertEqual(code, 2, err)
            if shutil.which("tmux") is None:
                self.skipTest("tmux is not installed")
            sock = os.path.join(bus.tmp.name, "tmux.sock")
            tmux = ["tmux", "-S", sock]
            cmd = "%s --collector %s top live -n 5; echo EXITED $?; sleep 60" % (
                os.path.join(h.BIN, "tapbusctl"), bus.control)
            subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "50", cmd],
                           check=True, timeout=30)
            try:
                def pane():
                    return subprocess.run(tmux + ["capture-pane", "-p"], capture_output=True,
                                          text=True, timeout=30).stdout
                screen = h.wait_for(lambda: (lambda p: p if "packets/s," in p else None)(pane()),
                                    20, "a rate in the live view")
                self.assertIn("(q quits)", screen)
                self.assertIn("TOP  HOST", screen)
                # A small window: the view is cut to it, its head stays in sight.
                subprocess.run(tmux + ["resize-window", "-x", "70", "-y", "12"], check=True,
                               timeout=30)

                def cut():
                    lines = pane().rstrip("\n").splitlines()
                    return lines if len(lines) <= 12 and lines and "live (running)" in \
                        lines[0] and lines[-1].startswith("(q quits)") else None
                h.wait_for(cut, 10, "the view cut to a 12-line window")
                subprocess.run(tmux + ["send-keys", "q"], check=True, timeout=30)
                h.wait_for(lambda: "EXITED 0" in pane(), 10, "top to quit on q")
            finally:
                subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=30)
        finally:
            bus.close()

    def test_collector_configuration_file_and_environment(self):
        """--config FILE, TAPBUS_COLLECTOR_* variables and the command line, in
        that order of strength; --print-config; bad keys and values named
        with their file and line."""
        exe = os.path.join(h.BIN, "tapbus-collector")
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "collector.conf")
            control = h.endpoint()
            with open(conf, "w") as f:
                f.write("# a collector\nprobe = %s\ncontrol = \"%s\"  # quoted\n"
                        "max-streams = 12\ntop = 3\n" % (h.endpoint(), control))
            env = dict(os.environ, TAPBUS_COLLECTOR_TOP="4")
            r = subprocess.run([exe, "--config", conf, "--print-config", "--max-streams", "20"],
                               capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [ln for ln in r.stdout.splitlines()
                     if not ln.startswith("#") and not ln.endswith("# default")]
            self.assertEqual(lines[-3:], ['top = "3"    # %s:5' % conf,
                                          'top = "4"    # $TAPBUS_COLLECTOR_TOP',
                                          'max-streams = "20"    # command line'], r.stdout)
            self.assertEqual(lines[2], 'max-streams = "12"    # %s:4' % conf)
            # The file's settings take effect (the control endpoint, the limit).
            p = subprocess.Popen([exe, "--config", conf, "--max-streams", "2"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                st = h.wait_for(lambda: h.ctl(control, "--json", "status", timeout_ms=500,
                                              check=False), 30, "the configured control")
                self.assertEqual(json.loads(st[1])["limits"]["max_streams"], 2)
            finally:
                p.terminate()
                p.wait(30)
            for text, want in (("flow = 3\n", "collector.conf:1: unknown key 'flow'"),
                               ("flows = lots\n", "collector.conf:1: --flows must be"),
                               ("probe\n", "collector.conf:1: 'probe' needs a value"),
                               ('control = "x\n', "collector.conf:1: unterminated quote")):
                with open(conf, "w") as f:
                    f.write(text)
                r = subprocess.run([exe, "--config", conf], capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(r.returncode, 2, text)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertIn(want, r.stderr)
            r = subprocess.run([exe, "--probe", h.endpoint()], capture_output=True, text=True,
                               env=dict(os.environ, TAPBUS_COLLECTOR_TOP="99"), timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertIn("$TAPBUS_COLLECTOR_TOP: --top must be 1-64", r.stderr)

    def test_print_config_lists_every_option(self):
        """--print-config gives every option of --help: set ones with their
        origin, the others with their default (or as not set)."""
        import re
        for name, args in (("tapbus-collector", ["--probe", "tcp://127.0.0.1:1"]),
                           ("tapbus-probe", ["--source", "a=file:/x"]),
                           ("tapbusctl", ["--collector", "tcp://a:1,tcp://b:1"])):
            exe = os.path.join(h.BIN, name)
            helptext = subprocess.run([exe, "--help"], capture_output=True, text=True,
                                      timeout=30).stdout
            want = set(re.findall(r"^  --([a-z0-9-]+)", helptext, re.M)) - {
                "help", "config", "print-config"}
            r = subprocess.run([exe, "--print-config"] + args, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            got = set(re.findall(r"^(?:# )?([a-z0-9-]+)(?: = |    # )", r.stdout, re.M))
            self.assertEqual(got, want, name)
            self.assertEqual(r.stdout.count("# command line"), 1, r.stdout)
        self.assertIn('max-streams = "256"    # default', subprocess.run(
            [os.path.join(h.BIN, "tapbus-collector"), "--print-config"], capture_output=True,
            text=True, timeout=30).stdout)

    def test_probe_and_tapbusctl_configuration(self):
        """The probe and tapbusctl read the same kind of configuration."""
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "probe.conf")
            with open(conf, "w") as f:
                f.write("id = edge9\nsource = s=file:/nonexistent.pcap\nbatch = 0\n")
            r = subprocess.run([os.path.join(h.BIN, "tapbus-probe"), "--config", conf],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertIn("probe.conf:3: --batch must be", r.stderr)
            r = subprocess.run([os.path.join(h.BIN, "tapbus-probe"), "--source", "a=file:/x",
                                "--print-config"], capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, TAPBUS_PROBE_ID="from-env"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('id = "from-env"    # $TAPBUS_PROBE_ID', r.stdout)
            self.assertIn('source = "a=file:/x"    # command line', r.stdout)
            ctlconf = os.path.join(tmp, "ctl.conf")
            dead = h.endpoint()
            with open(ctlconf, "w") as f:
                f.write("collector = %s\ntimeout = 300\n" % dead)
            r = subprocess.run([os.path.join(h.BIN, "tapbusctl"), "status"], capture_output=True,
                               text=True, timeout=30,
                               env=dict(os.environ, TAPBUSCTL_CONFIG=ctlconf))
            self.assertEqual(r.returncode, 3)
            self.assertIn("no reply from collector at %s within 300 ms" % dead, r.stderr)
            r = subprocess.run([os.path.join(h.BIN, "tapbusctl"), "status"], capture_output=True,
                               text=True, timeout=30, env=dict(os.environ, TAPBUSCTL_RETRIES="x"))
            self.assertEqual(r.returncode, 2)
            self.assertIn("$TAPBUSCTL_RETRIES: --retries must be 0-10", r.stderr)

    def test_usage_errors(self):
        for args in (["bogus"], ["start"], ["stats"], ["stats", "a", "b"], ["start", "bad name"],
                     ["--timeout", "x", "status"], ["--nope", "status"], []):
            code, _, err = h.ctl(h.endpoint(), *args, check=False)
            self.assertEqual(code, 2, args)
            self.assertTrue(err.startswith("tapbusctl: "), err)
        # Options may follow the command; a word beginning with '-' that is
        # not an option is refused ('--' before such a stream name).
        for args, says in ((["db", "m", "-x"], "unknown option '-x'; '--' before a stream"),
                           (["stop", "--bogus"], "unknown or incomplete option '--bogus'"),
                           (["-xy", "status"], "unknown option '-x'"),
                           (["status", "-n", "3"], "-n is an option of top and db"),
                           (["status", "--http", "x:1"],
                            "--http, --credentials, --tls-cert and --tls-key are options of serve"),
                           (["status", "--tls-key", "k"], "are options of serve"),
                           (["top", "s1", "-n", "65"], "-n needs a number of flows and hosts"),
                           (["db", "m", "-n", "0"], "-n needs a number of points, 1-10000"),
                           (["status", "--timeout", "x"], "--timeout must be"),
                           (["--collector", "tcp://127.0.0.1", "status"], "needs a host and a port"),
                           (["status", "--collector", "host:"], "needs a host and a port")):
            code, out, err = h.ctl(h.endpoint(), *args, check=False)
            self.assertEqual((code, out), (2, ""), args)
            self.assertIn(says, err)
            self.assertEqual(len(err.splitlines()), 1, err)
        # "--" before a stream name that begins with '-'.
        code, _, err = h.ctl(h.endpoint(), "stop", "--", "-odd", timeout_ms=200, check=False)
        self.assertEqual(code, 3, err)

    def test_options_after_the_command(self):
        bus = h.Bus([("s", "file:" + corpus("babel.pcap"))])
        try:
            ctl = os.path.join(h.BIN, "tapbusctl")
            hostport = bus.control[len("tcp://"):]

            def run(*args):
                r = subprocess.run([ctl] + list(args), capture_output=True, text=True, timeout=30)
                return r.returncode, r.stdout, r.stderr
            # status --json, --collector after the command, HOST:PORT without tcp://.
            code, out, err = run("status", "--json", "--collector", bus.control)
            self.assertEqual(code, 0, err)
            self.assertIn("streams", json.loads(out))
            code, out, err = run("--collector", hostport, "start", "s", "--json")
            self.assertEqual(code, 0, err)
            self.assertEqual(json.loads(out)["started"], ["s"])
            bus.wait_finished(["s"])
            code, out, err = run("--collector", bus.control, "stats", "s", "--json",
                                 "--timeout", "2000")
            self.assertEqual(code, 0, err)
            self.assertEqual(json.loads(out)["packets"], 25)
            code, out, err = run("top", "s", "-n", "3", "--collector=" + hostport)
            self.assertEqual(code, 0, err)
            self.assertIn("s (finished)", out)
            # top of an unknown stream says so, under its own name.
            code, out, err = run("--collector", bus.control, "top", "nope")
            self.assertEqual(code, 1, err)
            self.assertIn("tapbusctl: top: unknown stream 'nope'", err)
            code, out, err = run("stats", "--collector", bus.control, "--", "-odd")
            self.assertEqual(code, 1, err)
            self.assertIn("unknown stream '-odd'", err)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_unreachable_collector_says_why(self):
        # Nothing listens on the port: the connection is refused.
        dead = h.endpoint()
        code, _, err = h.ctl(dead, "status", timeout_ms=300, check=False)
        self.assertEqual(code, 3, err)
        self.assertIn("no reply from collector at %s within 300 ms" % dead, err)
        self.assertIn("connection refused", err)
        # A host name that does not resolve.
        code, _, err = h.ctl("tcp://no-such-host.invalid:5557", "status", timeout_ms=300,
                             check=False)
        self.assertEqual(code, 3, err)
        # (without a resolver at all: "cannot resolve", still not "refused")
        self.assertRegex(err, "(unknown host|cannot resolve) 'no-such-host.invalid'")
        self.assertNotIn("connection refused", err)

    def test_refused_commands_and_human_output(self):
        bus = h.Bus([("s", "file:" + corpus("babel.pcap"))])
        try:
            code, _, err = h.ctl(bus.control, "stats", "nope", check=False)
            self.assertEqual(code, 1)
            self.assertIn("unknown stream 'nope'", err)
            code, out, _ = h.ctl(bus.control, "--json", "stop", "nope", check=False)
            self.assertEqual(code, 1)
            self.assertIn('"error"', out)
            h.ctl(bus.control, "start", "s")
            bus.wait_finished(["s"])
            _, out, _ = h.ctl(bus.control, "status")
            self.assertRegex(out, r"\ns +finished +0 +25 ")
            _, out, _ = h.ctl(bus.control, "stats", "s")
            self.assertIn("packets        25\n", out)
            self.assertIn("RANK SOURCE", out)
            probes = h.ctl_json(bus.control, "probes")["probes"]
            self.assertEqual([(p["id"], p["streams"], p["received"], p["silent"])
                              for p in probes], [("it-probe", ["s"], 25, False)])
            _, out, _ = h.ctl(bus.control, "probes")
            self.assertRegex(out, r"\nit-probe +[0-9.]+s +no +25 +0 +s\n")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)


class Programs(unittest.TestCase):
    def run_prog(self, name, *args):
        return subprocess.run([os.path.join(h.BIN, name)] + list(args), capture_output=True,
                              text=True, timeout=30)

    def test_cannot_start_gives_one_line_reason(self):
        cases = [
            ("tapbus-probe", ["--source", "s=file:/x", "--publish", "bogus://x"]),
            ("tapbus-probe", ["--source", "nodelimiter"]),
            ("tapbus-probe", ["--source", "s=tape:/dev/st0"]),
            ("tapbus-probe", ["--batch", "0", "--source", "s=file:/x"]),
            ("tapbus-probe", ["--source", "s=file:/x", "--filter-for", "s=udp"]),
            ("tapbus-probe", ["--source", "s=file:/x", "--filter-for", "t=udp"]),
            ("tapbus-probe", ["--source", "s=file:/x", "--replay-speed", "-1"]),
            ("tapbus-probe", ["--source", "s=dir:/x", "--after-read", "shred"]),
            ("tapbus-collector", ["--listen", "bogus://"]),
            ("tapbus-probe", []),
            ("tapbus-collector", []),
            ("tapbus-collector", ["--probe", "tcp://127.0.0.1:1", "--control", "bogus://"]),
            ("tapbus-collector", ["--probe", "tcp://127.0.0.1:1", "--flows", "-3"]),
            ("tapbus-collector", ["--probe", "tcp://127.0.0.1:1", "--threads", "3"]),
        ]
        for name, args in cases:
            r = self.run_prog(name, *args)
            self.assertNotEqual(r.returncode, 0, (name, args))
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (name, args, r.stderr))
            self.assertTrue(lines[0].startswith(name + ": "), lines[0])

    def test_help(self):
        for name in ("tapbus-probe", "tapbus-collector", "tapbusctl"):
            r = self.run_prog(name, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("usage:", r.stdout)
        for cmd in ("start", "stop", "status", "stats", "probes"):
            for args in ([cmd, "--help"], ["help", cmd]):
                r = self.run_prog("tapbusctl", *args)
                self.assertEqual(r.returncode, 0, args)
                self.assertTrue(r.stdout.startswith("usage: tapbusctl"), r.stdout)
                self.assertIn(" " + cmd, r.stdout.splitlines()[0])


if __name__ == "__main__":
    if not h.BIN or not h.CORPUS:
        sys.exit("set TAPBUS_BIN and TAPBUS_CORPUS")
    unittest.main(verbosity=2)
