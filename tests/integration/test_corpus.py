#!/usr/bin/env python3
"""Every capture of the shared corpus through probe -> bus -> collector,
compared with tshark: packets, bytes, min/max length, first/last capture time,
per-protocol-class counts and, where tshark's is unique, the most active
5-tuple with its packet count must match exactly, except for the captures
listed below, each with the reason tapbus and tshark legitimately differ, and
the first/last time of captures with absurd capture times (ts_outliers: a
fuzzed record dated 2038 in a 2005 capture), which lie within tshark's. The
test prints how many captures agree with tshark on each figure.

tshark's answers can be cached across builds (TAPBUS_TSHARK_CACHE names the
file; entries are keyed by file size and modification time)."""

import glob
import ipaddress
import json
import os
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

# The figures compared (and counted for the agreement line printed): "time" is
# the first and last capture time, "mix" the protocol classes, "top" the most
# active 5-tuple with its packet count.
FIGURES = ("bytes", "min_len", "max_len", "time", "mix", "top")
MALFORMED_IP = "deliberately malformed IP header: tapbus reports no IP family, tshark still does"
ATM_LENGTH = "ATM record whose original length tshark reports differently"
# Captures whose figures may differ from tshark's (all but the packet count).
# Every link type and encapsulation of the corpus that carries IP is decoded;
# what is left differs by design.
EXCEPTIONS = {
    "atm-heapoverflow.pcap": ATM_LENGTH,
    "atm-oam-loopback-print-overrun.pcap": ATM_LENGTH,
    "ipv4_invalid_length.pcap": MALFORMED_IP,
    "ipv4_invalid_total_length_2.pcap": "IPv4 total length shorter than its header: tapbus "
                                        "keeps the addresses (malformed), tshark drops them",
    "ipv6_invalid_length.pcap": MALFORMED_IP,
}
# Captures whose most active tuple may differ from tshark's (only that).
BIG_TCP = ("IPv6 payload length 0 without a jumbo option (a BIG TCP / GSO packet): tapbus "
           "reads the UDP ports the capture holds, tshark leaves the payload undissected")
EXT_CUT = ("IPv6 extension header cut short or malformed: tapbus names the header it "
           "stopped at, tshark the next header that header claims")
TOP_EXCEPTIONS = {
    "bigtcp-ipv6-geneve-ipv6.pcap": BIG_TCP,
    "bigtcp-ipv6-vxlan-ipv4.pcap": BIG_TCP,
    "ipv6-rthdr-oobr.pcap": EXT_CUT,
    "ipv6-srh-tlv-pad1-padn-5-trunc.pcap": EXT_CUT,
    "ipv6_frag6_negative_len.pcap": "IPv6 payload length 0 before a fragment header that "
                                    "tshark finds malformed: tapbus names the fragment's next "
                                    "header (2), tshark the fragment header (44)",
    "ipv6_missing_jumbo_payload_option.pcap": "IPv6 payload length 0 without a jumbo option: "
                                              "tapbus walks the hop-by-hop header to the upper "
                                              "layer (88), tshark stops at it (0)",
}


def tshark_all(paths):
    cache_path = os.environ.get("TAPBUS_TSHARK_CACHE", "")
    cache = {}
    if cache_path and os.path.exists(cache_path):
        with open(cache_path) as f:
            cache = json.load(f)

    def key(p):
        st = os.stat(p)
        return "v3|%s|%d|%d" % (os.path.basename(p), st.st_size, int(st.st_mtime))

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

        matched, excused, no_oracle, with_outliers, failures = 0, 0, [], [], []
        agree = {f: 0 for f in FIGURES}
        compared = {f: 0 for f in FIGURES}
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
            diff = figure_differences(g, w, fields)
            for f in FIGURES:
                if f != "top" or top_comparable(w):
                    compared[f] += 1
                    agree[f] += f not in diff
            if name in EXCEPTIONS:
                excused += 1
                if not diff:
                    failures.append("%s now matches tshark: drop its exception" % name)
                continue
            if name in TOP_EXCEPTIONS:
                if "top" not in diff:
                    failures.append("%s: the most active tuple now matches tshark: drop its "
                                    "exception" % name)
                diff.pop("top", None)
            if diff:
                failures.append("%s differs from tshark (tapbus, tshark): %s" % (name, diff))
                continue
            matched += 1
        print("\ncorpus: %d captures match tshark exactly, %d listed exceptions, "
              "%d unreadable by tshark (%s), %d packets; absurd capture times in %d: %s"
              % (matched, excused, len(no_oracle), " ".join(no_oracle),
                 sum(w["packets"] for w in want.values()), len(with_outliers),
                 " ".join(with_outliers)))
        print("corpus: agreement with tshark by figure: " + ", ".join(
            "%s %d/%d" % (f, agree[f], compared[f]) for f in FIGURES))
        self.assertLess(len(no_oracle), 10)
        self.assertEqual(failures, [], "\n".join(failures))


def top_comparable(w):
    """tshark's most active tuple is compared where it is unique, and where
    there is none (no IP packet: tapbus must then report no top flow)."""
    return w["top"] is None or w["top"]["unique"]


def norm_addr(text):
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


def figure_differences(g, w, fields):
    """{figure: (tapbus, tshark)} for each figure of FIGURES that differs."""
    diff = {}
    if w["packets"]:
        for k in fields:
            if g[k] != w[k]:
                diff.setdefault("time" if k in ("first_ts", "last_ts") else k, {})[k] = \
                    (g[k], w[k])
    for c, counts in w["protocols"].items():
        if g["protocols"][c] != counts:
            diff.setdefault("mix", {})[c] = (g["protocols"][c], counts)
    if top_comparable(w):
        mine = None
        if g["top_flows"]:
            t = g["top_flows"][0]
            mine = (norm_addr(t["src"]), norm_addr(t["dst"]), t["proto"], t["sport"],
                    t["dport"], t["packets"])
        theirs = None
        if w["top"] is not None:
            t = w["top"]
            theirs = (norm_addr(t["src"]), norm_addr(t["dst"]), t["proto"], t["sport"],
                      t["dport"], t["packets"])
        if mine != theirs:
            diff["top"] = (mine, theirs)
    return diff


if __name__ == "__main__":
    if not h.BIN or not h.CORPUS:
        sys.exit("set TAPBUS_BIN and TAPBUS_CORPUS")
    unittest.main(verbosity=2)
