#!/usr/bin/env python3
"""Every query of the Grafana dashboard (compose/grafana/dashboards/tapbus.json)
against a real InfluxDB 1.x filled by tapbus itself.

A copy of the demo capture, moved in time so that it ends a minute ago, is
replayed through a real probe and a collector writing to a real influxd (on
free ports, in a temporary directory). Each query, its Grafana variables
($stream, $timeFilter, $__interval, $__interval_ms) replaced as Grafana
replaces them for the default time range (the last hour) and for an absolute
one, must return rows; the measurements, tags and fields it names must be
the ones docs/schema.md lists; and a few panels must show exactly what
tshark counts in the capture."""

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DASHBOARD = os.path.join(SRC, "compose", "grafana", "dashboards", "tapbus.json")
SCHEMA = os.path.join(SRC, "docs", "schema.md")
DEMO = os.path.join(SRC, "tests", "data", "demo.pcap")
DB = "tapbus"
STREAM = "demo"


# --- docs/schema.md ---------------------------------------------------------

def schema_names(path=SCHEMA):
    """{measurement: {"tag": {...}, "field": {...}}} from the tables of
    docs/schema.md: a '## `m1`, `m2` — ...' heading names the measurements a
    table describes; its rows are '| tag | `a`, `b` | ... |' or
    '| field | ... |' (a row whose name cell is empty adds nothing)."""
    names, current = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                current = re.findall(r"`([a-z_]+)`", line.split("—")[0])
                for m in current:
                    names[m] = {"tag": set(), "field": set()}
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current and line.startswith("|") and len(cells) >= 2 and \
                    cells[0] in ("tag", "field"):
                for m in current:
                    names[m][cells[0]].update(re.findall(r"`([A-Za-z0-9_]+)`", cells[1]))
    return names


# --- the dashboard's queries ------------------------------------------------

def dashboard_queries(path=DASHBOARD):
    """[(where, query, minimum interval or None)]: the template variables'
    queries and every panel target's (panels inside rows too)."""
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    out = []
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
            out.append(("variable %s" % var["name"], q, None))

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append(("panel '%s' %s" % (p.get("title"), t.get("refId")), t["query"],
                            p.get("interval")))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    return out


KEYWORDS = {"select", "from", "where", "and", "or", "group", "by", "fill", "none", "null",
            "previous", "linear", "order", "asc", "desc", "limit", "slimit", "offset",
            "soffset", "as", "show", "tag", "values", "with", "key", "time", "tz", "true",
            "false", "not"}


def tokens(q):
    """InfluxQL tokens: ("ident", name) for "quoted" and bare identifiers,
    ("word", w) for keywords, ("func", name), ("var", "$name") for Grafana's
    variables, ("string"|"regex"|"number"|"op", text).
    A '/' starts a regular expression only after =~ or !~ (elsewhere it
    divides)."""
    out, i = [], 0
    while i < len(q):
        c = q[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < len(q) and q[j] != c:
                j += 2 if q[j] == "\\" else 1
            if j >= len(q):
                raise AssertionError("unterminated %s in %r" % (c, q))
            out.append(("ident" if c == '"' else "string", q[i + 1:j]))
            i = j + 1
        elif c == "/" and out and out[-1] in (("op", "=~"), ("op", "!~")):
            j = i + 1
            while j < len(q) and q[j] != "/":
                j += 2 if q[j] == "\\" else 1
            out.append(("regex", q[i + 1:j]))
            i = j + 1
        elif c == "$":
            m = re.compile(r"\$\w+").match(q, i)
            out.append(("var", m.group()))
            i = m.end()
        elif c.isdigit():
            m = re.compile(r"\d+(\.\d+)?[a-zµ]*").match(q, i)
            out.append(("number", m.group()))
            i = m.end()
        elif c.isalpha() or c == "_":
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(q, i)
            word, i = m.group(), m.end()
            rest = q[i:].lstrip()
            if rest.startswith("("):
                out.append(("func", word.lower()))
            elif word.lower() in KEYWORDS:
                out.append(("word", word.lower()))
            else:
                out.append(("ident", word))
        else:
            m = re.compile(r"=~|!~|!=|<>|>=|<=|[-+*/%(),;=<>.]").match(q, i)
            if not m:
                raise AssertionError("unexpected %r in %r" % (c, q))
            out.append(("op", m.group()))
            i = m.end()
    return out


def names_used(q):
    """(measurement, {identifiers}) a query reads: the name after FROM and
    every other identifier except the aliases after AS."""
    toks = tokens(q)
    measurement, used = None, set()
    for k, (kind, text) in enumerate(toks):
        if kind != "ident":
            continue
        prev = toks[k - 1] if k else None
        if prev == ("word", "from"):
            if measurement is not None:
                raise AssertionError("more than one measurement in %r" % q)
            measurement = text
        elif prev != ("word", "as"):
            used.add(text)
    if any(toks[k] == ("word", "from") and toks[k + 1] == ("op", "(")
           for k in range(len(toks) - 1)):
        raise AssertionError("a subquery, which this check does not read: %r" % q)
    return measurement, used


def check_against_schema(where, q, schema):
    measurement, used = names_used(q)
    if measurement not in schema:
        raise AssertionError("%s reads measurement %r, which docs/schema.md does not list: %s"
                             % (where, measurement, q))
    known = schema[measurement]["tag"] | schema[measurement]["field"]
    unknown = sorted(used - known)
    if unknown:
        raise AssertionError("%s names %s, not a tag or field of %s in docs/schema.md: %s"
                             % (where, unknown, measurement, q))
    return measurement, used


# --- Grafana's variables -----------------------------------------------------

NICE = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
        21600, 43200, 86400]


def seconds(duration):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    n, unit = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def interval_for(range_s, minimum, points=1000):
    """$__interval as Grafana picks it: the range over the panel's width in
    points, rounded to a round duration, never below the panel's minimum."""
    want = max(range_s / points, seconds(minimum) if minimum else 0)
    return next(n for n in NICE if n >= want)


def substitute(q, stream_regex, time_filter, interval_s):
    out = q.replace("$timeFilter", time_filter)
    out = out.replace("$__interval_ms", str(interval_s * 1000))
    out = re.sub(r"\$(__interval|interval)\b", "%ds" % interval_s, out)
    out = out.replace("/^$stream$/", "/^%s$/" % stream_regex)
    if "$" in out.replace("/^%s$/" % stream_regex, ""):
        raise AssertionError("a Grafana variable this test does not know in %r" % q)
    return out


# --- a capture that happened a minute ago ------------------------------------

def shifted_capture(src, dst, end_before_now=60):
    """Copy a classic pcap with every record's seconds moved by one whole
    number of minutes, so that the capture ends about end_before_now seconds
    ago; returns the shift in seconds."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    assert struct.unpack(order + "I", data[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d), "not a pcap"
    pos, last = 24, None
    while pos + 16 <= len(data):
        last = struct.unpack_from(order + "I", data, pos)[0]
        pos += 16 + struct.unpack_from(order + "I", data, pos + 8)[0]
    shift = (int(time.time()) - end_before_now - last) // 60 * 60
    pos = 24
    while pos + 16 <= len(data):
        sec, _, caplen = struct.unpack_from(order + "III", data, pos)
        struct.pack_into(order + "I", data, pos, sec + shift)
        pos += 16 + caplen
    with open(dst, "wb") as f:
        f.write(data)
    return shift


def rows_of(answer):
    """All rows of a /query answer's first statement, tags merged in."""
    result = answer["results"][0]
    rows = []
    for series in result.get("series", []):
        for values in series.get("values", []):
            row = dict(series.get("tags") or {})
            row.update(zip(series["columns"], values))
            rows.append(row)
    return rows


class DashboardQueries(unittest.TestCase):
    def test_names_are_in_the_schema(self):
        """Without a database: every query parses and names only what
        docs/schema.md lists (and the schema has what the dashboard needs)."""
        schema = schema_names()
        self.assertIn("packets", schema["tapbus_traffic"]["field"])
        self.assertIn("class", schema["tapbus_traffic"]["tag"])
        self.assertIn("probe", schema["tapbus_loss"]["tag"])
        queries = dashboard_queries()
        self.assertGreaterEqual(len(queries), 10, queries)
        measurements = {check_against_schema(w, q, schema)[0] for w, q, _ in queries}
        self.assertEqual(measurements, set(schema), "measurements no panel shows")

    def test_name_check_catches_what_is_not_listed(self):
        """The checker itself: an unknown field, a misspelt measurement and a
        bare identifier are caught; aliases, keywords and functions are not
        taken for names."""
        schema = schema_names()
        ok = ('SELECT sum("bytes") * 8 / (1000 / 1000) AS "bits" FROM "tapbus_traffic" WHERE '
              '"stream" =~ /^a|b$/ AND time >= now() - 1h GROUP BY time(5s), "class" fill(none)')
        self.assertEqual(check_against_schema("t", ok, schema),
                         ("tapbus_traffic", {"bytes", "stream", "class"}))
        for bad, word in (('SELECT "nosuch" FROM "tapbus_traffic"', "nosuch"),
                          ('SELECT "packets" FROM "tapbus_trafic"', "tapbus_trafic"),
                          ('SELECT mean(pps) FROM "tapbus_traffic"', "pps"),
                          ('SHOW TAG VALUES FROM "tapbus_loss" WITH KEY = "host"', "host")):
            with self.assertRaises(AssertionError) as e:
                check_against_schema("t", bad, schema)
            self.assertIn(word, str(e.exception))

    def test_every_query_returns_rows(self):
        schema = schema_names()
        queries = dashboard_queries()
        exp = h.tshark_expect(DEMO)
        with h.Influx() as ix, tempfile.TemporaryDirectory() as tmp:
            capture = os.path.join(tmp, "demo.pcap")
            shift = shifted_capture(DEMO, capture)
            # Replayed as a DPMI capfile with two capture interfaces, so the
            # panel by measurement point has rows too.
            capfile = os.path.join(tmp, "demo.cap")
            subprocess.run([os.path.join(h.BIN, "tb-gen-capfile"), "--ci", "d0,d1", "--mp",
                            "mp-1", capture, capfile], check=True, capture_output=True)
            bus = h.Bus([(STREAM, "cap:" + capfile)],
                        collector_args=["--influx-url", ix.url, "--influx-db", DB,
                                        "--influx-create-db", "--batch-ms", "200"])
            try:
                bus.start(STREAM)
                bus.wait_finished([STREAM])
                h.wait_for(lambda: self.delivered(bus.control), 60,
                           "the writer to deliver everything")
            finally:
                bus.close()
            now_ms = int(time.time() * 1000)
            first_ms = (exp["first_ts"] // 10**9 + shift) * 1000
            views = [  # (what, $timeFilter, range in seconds)
                ("the last hour", "time >= now() - 1h", 3600),
                ("an absolute range", "time >= %dms and time <= %dms"
                 % (first_ms - 300000, now_ms + 60000), (now_ms - first_ms + 360000) / 1000),
            ]
            # One stream, and several (Grafana's multi-value form).
            streams = [STREAM, "(%s|other)" % STREAM]
            answers = {}
            for where, q, minimum in queries:
                check_against_schema(where, q, schema)
                for view, time_filter, range_s in views:
                    for stream in streams:
                        sq = substitute(q, stream, time_filter, interval_for(range_s, minimum))
                        answer = ix.query(sq, db=DB, epoch="ms")
                        errors = [answer.get("error")] + [r.get("error")
                                                          for r in answer.get("results", [])]
                        self.assertFalse(any(errors), "%s: %s\n%s" % (where, errors, sq))
                        rows = rows_of(answer)
                        self.assertTrue(rows, "%s returns no rows (%s, stream %s):\n%s"
                                        % (where, view, stream, sq))
                        if not q.upper().startswith("SHOW"):
                            self.assertTrue(any(v is not None for r in rows
                                                for k, v in r.items() if k != "time"),
                                            "%s returns only empty values:\n%s" % (where, sq))
                        answers.setdefault(where, rows)
            self.check_values(answers, exp)

    def delivered(self, control):
        d = h.ctl_json(control, "status")["database"]
        return d["connected"] and d["queued_points"] == d["batch_points"] == \
            d["spool_points"] == 0

    def check_values(self, answers, exp):
        """What some panels show, against tshark's count of the capture."""
        def one(title):
            rows = [r for w, r in answers.items() if w.startswith("panel '%s' " % title)]
            self.assertEqual(len(rows), 1, "panel %r not found" % title)
            return rows[0]
        self.assertEqual(answers["variable stream"], [{"key": "stream", "value": STREAM}])
        self.assertEqual(one("Packets")[0]["sum"], exp["packets"])
        self.assertEqual(one("Bytes")[0]["sum"], exp["bytes"])
        mix = {r["class"]: r["sum"] for r in one("Protocol mix (packets)")}
        self.assertEqual(mix, {c: v["packets"] for c, v in exp["protocols"].items()
                               if v["packets"]})
        flows = one("Top flows (latest interval in the range)")
        self.assertEqual(sorted(int(r["rank"]) for r in flows), list(range(1, 11)))
        loss = one("Loss per probe")
        self.assertEqual([(r["probe"], r["received"], r["sequence gaps"], r["unmeasured ms"])
                          for r in loss], [("it-probe", exp["packets"], 0, 0)])
        points = one("Packets by measurement point (MP / CI)")
        self.assertEqual(sorted((r["mp"], r["ci"]) for r in points), [("mp-1", "d0"),
                                                                      ("mp-1", "d1")])
        self.assertEqual(sum(r["packets"] for r in points), exp["packets"])
        ended = one("Measurements that ended")
        self.assertEqual([(r["state"], r["packets"]) for r in ended],
                         [("finished", exp["packets"])])


if __name__ == "__main__":
    unittest.main(verbosity=2)
