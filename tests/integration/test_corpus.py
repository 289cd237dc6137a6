#!/usr/bin/env python3
"""Every capture of the shared corpus through probe -> bus -> collector,
compared with tshark: packets, bytes, min/max length, first/last capture time
and per-protocol-class counts must match exactly, except for the captures
listed below, each with the reason tapbus and tshark legitimately differ, and
the first/last time of captures with absurd capture times (ts_outliers: a
fuzzed record dated 2038 in a 2005 capture), which lie within tshark's.

tshark's answers can be cached across builds (TAPBUS_TSHARK_CACHE names the
file; entries are keyed by file size and modification time)."""

import glob
import json
import os
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

NOT_DECODED = "link type tapbus does not decode (its packets count as non_ip)"
MALFORMED_IP = "deliberately malformed IP header: tapbus reports no IP family, tshark still does"
EXCEPTIONS = {
    "HDLC.pcap": NOT_DECODED + ": Cisco HDLC",
    "LINKTYPE_PKTAP.pcap": NOT_DECODED + ": PKTAP",
    "LINKTYPE_USER2_PKTAP.pcap": NOT_DECODED + ": PKTAP",
    "OSPFv3_NBMA_adjacencies.pcap": NOT_DECODED + ": Frame Relay",
    "arcnet-rfc1051-arp-icmp-http.pcap": NOT_DECODED + ": ARCnet",
    "arcnet-rfc1201-arp-icmp-http.pcap": NOT_DECODED + ": ARCnet",
    "atm-heapoverflow.pcap": "ATM record whose original length tshark reports differently",
    "atm-oam-loopback-print-overrun.pcap": "ATM record whose original length tshark "
                                           "reports differently",
    "bgp-aigp.pcap": NOT_DECODED + ": Juniper Ethernet",
    "bgp_vpn_attrset.pcap": NOT_DECODED + ": Juniper Ethernet",
    "icmp-cksum-oobr-2.pcap": NOT_DECODED + ": PPP",
    "icmp-icmp_print-oobr-2.pcap": NOT_DECODED + ": PPP",
    "icmp-rfc5837.pcap": NOT_DECODED + ": PPP",
    "icmp-rfc8335-missing-bytes.pcap": NOT_DECODED + ": PPP",
    "icmp_inft_name_length_zero.pcap": NOT_DECODED + ": PPP",
    "ieee802.11_htc.pcap": NOT_DECODED + ": IEEE 802.11",
    "ipv4_invalid_length.pcap": MALFORMED_IP,
    "ipv4_invalid_total_length_2.pcap": "IPv4 total length shorter than its header: tapbus "
                                        "keeps the addresses (malformed), tshark drops them",
    "ipv6_invalid_length.pcap": MALFORMED_IP,
    "lspping-fec-ldp.pcap": NOT_DECODED + ": PPP carrying MPLS",
    "macsec-integonly.pcap": "MACsec is not unwrapped (non_ip)",
    "macsec-short-valid.pcap": "MACsec is not unwrapped (non_ip)",
    "mpls-ldp-hello.pcap": "MPLS is not unwrapped (non_ip)",
    "mpls-traceroute.pcap": "MPLS is not unwrapped (non_ip)",
    "wb-oobr.pcap": NOT_DECODED + ": PPP",
}


def tshark_all(paths):
    cache_path = os.environ.get("TAPBUS_TSHARK_CACHE", "")
    cache = {}
    if cache_path and os.path.exists(cache_path):
        with open(cache_path) as f:
            cache = json.load(f)

    def key(p):
        st = os.stat(p)
        return "%s|%d|%d" % (os.path.basename(p), st.st_size, int(st.st_mtime))

    todo = [p for p in paths if key(p) not in cache]
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as ex:
        for p, res in zip(todo, ex.map(h.tshark_expect, todo)):
            cache[key(p)] = res
    if cache_path and todo:
        with open(cache_path + ".tmp", "w") as f:
            json.dump(cache, f)
        os.replace(cache_path + ".tmp", cache_path)
    return {p: cache[key(p)] for p in paths}


class Corpus(unittest.TestCase):
    def test_every_capture_matches_tshark(self):
        files = sorted(glob.glob(os.path.join(h.CORPUS, "*.pcap"))
                       + glob.glob(os.path.join(h.CORPUS, "*.pcapng")))
        self.assertGreater(len(files), 400, "capture corpus missing or incomplete at %s "
                           "(tests/data/corpus)" % h.CORPUS)
        want = tshark_all(files)
        got = {}
        chunk = 60  # streams per probe (a probe takes up to 64 sources)
        for off in range(0, len(files), chunk):
            part = files[off:off + chunk]
            sources = [("f%03d" % (off + i), "file:" + p) for i, p in enumerate(part)]
            bus = h.Bus(sources)
            try:
                bus.start(*[s for s, _ in sources])
                bus.wait_finished([s for s, _ in sources], timeout=300)
                for (stream, _), p in zip(sources, part):
                    got[p] = bus.stats(stream)
            finally:
                codes, logs = bus.close()
            self.assertEqual(codes, (0, 0), logs[-4000:])

        matched, excused, no_oracle, with_outliers = 0, 0, [], []
        for p in files:
            name = os.path.basename(p)
            g, w = got[p], want[p]
            if w["packets"] == 0 and "unsupported" in w["tshark_error"]:
                no_oracle.append(name)  # tshark cannot read it: nothing to compare
                continue
            self.assertEqual(g["packets"], w["packets"], name)  # never excused
            self.assertEqual(g["loss"]["seq_gaps"], 0, name)
            self.assertEqual(g["loss"]["lost_packets"], 0, name)
            fields = ["bytes", "min_len", "max_len", "first_ts", "last_ts"]
            if g["ts_outliers"]:
                # Absurd capture times (fuzzed records) are counted at the
                # stream's time instead: first/last lie within tshark's.
                # Only a capture spanning more than the outlier distance
                # (an hour) can have any.
                with_outliers.append("%s (%d)" % (name, g["ts_outliers"]))
                self.assertGreater(w["last_ts"] - w["first_ts"], 3600 * 10**9, name)
                self.assertTrue(w["first_ts"] <= g["first_ts"] <= g["last_ts"] <= w["last_ts"],
                                name)
                fields = ["bytes", "min_len", "max_len"]
            same = all(g[k] == w[k] for k in fields if w["packets"]) and \
                all(g["protocols"][c] == w["protocols"][c] for c in w["protocols"])
            if name in EXCEPTIONS:
                excused += 1
                self.assertFalse(same, "%s now matches tshark: drop its exception" % name)
                continue
            for k in fields:
                if w["packets"]:
                    self.assertEqual(g[k], w[k], "%s: %s" % (name, k))
            for c, counts in w["protocols"].items():
                self.assertEqual(g["protocols"][c], counts, "%s: %s" % (name, c))
            matched += 1
        print("\ncorpus: %d captures match tshark exactly, %d listed exceptions, "
              "%d unreadable by tshark (%s), %d packets; absurd capture times in %d: %s"
              % (matched, excused, len(no_oracle), " ".join(no_oracle),
                 sum(w["packets"] for w in want.values()), len(with_outliers),
                 " ".join(with_outliers)))
        self.assertLess(len(no_oracle), 10)


if __name__ == "__main__":
    if not h.BIN or not h.CORPUS:
        sys.exit("set TAPBUS_BIN and TAPBUS_CORPUS")
    unittest.main(verbosity=2)
