#!/usr/bin/env python3
"""Restarts forget nothing (tapbus-collector --state-dir): the streams an
operator started come back after a clean stop and after kill -9; a directory
stream carries its statistics and its open database seconds on from the
snapshot, and says how long it went unmeasured; a file stream starts a new
run; a snapshot that cannot be read stops the collector from starting, with
the reason. Against a real influxd: nothing is counted twice."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from tapbus_harness import BIN, Bus, Influx, Proc, ctl, ctl_json, endpoint, wait_for
from test_influx import (DB, DEMO, db_args, split_pcap, stored_seconds, tshark_seconds,
                         wait_delivered)

DEMO_PACKETS = 5000


def stream_status(control, name):
    for s in ctl_json(control, "status")["streams"]:
        if s["stream"] == name:
            return s
    return None


def snapshots(control):
    return ctl_json(control, "status")["collector"]["state"]["snapshots"]


def wait_snapshot(control):
    """Until a snapshot written after this call began is on disk."""
    first = snapshots(control)
    wait_for(lambda: snapshots(control) >= first + 2, 30, "a fresh snapshot")


def restart_collector(bus, args, sig=signal.SIGKILL, pause=0.0):
    code = bus.collector.stop(sig)
    time.sleep(pause)
    bus.collector = Proc("tapbus-collector", ["--probe", bus.pub, "--control", bus.control] + args,
                         bus.tmp.name)
    wait_for(lambda: ctl(bus.control, "status", timeout_ms=500, check=False)[0] == 0, 30,
             "the collector to answer again")
    return code


def test_kill_9_directory_stream_carries_on():
    """kill -9 of the collector while a directory stream runs; the next file
    arrives after the restart. The statistics go on from the snapshot, the
    gap is reported, and every second in the database matches tshark's view
    of the whole capture: the second the two files share is neither counted
    twice nor cut in half."""
    with Influx() as ix, tempfile.TemporaryDirectory() as tmp:
        cap = os.path.join(tmp, "cap")
        state = os.path.join(tmp, "state")
        os.mkdir(cap)
        os.mkdir(state)
        na, nb = split_pcap(DEMO, os.path.join(tmp, "a"), os.path.join(tmp, "b"))
        os.rename(os.path.join(tmp, "a"), os.path.join(cap, "trace"))
        args = db_args(ix, os.path.join(tmp, "spool")) + ["--state-dir", state,
                                                          "--lateness", "60"]
        bus = Bus([("d", "dir:" + cap)], collector_args=args)
        try:
            bus.start("d")
            wait_for(lambda: bus.stats("d")["packets"] == na, 60, "the first file")
            wait_snapshot(bus.control)
            assert os.path.exists(os.path.join(state, "collector.state"))
            killed_at = time.time()
            assert restart_collector(bus, args, pause=1.5) == -signal.SIGKILL
            down = time.time() - killed_at

            st = stream_status(bus.control, "d")
            assert st is not None and st["state"] == "running", st
            assert st["resumes"] == 1, st
            # From the snapshot (at most 2 s before the kill) to the restart.
            assert 1.5 <= st["unmeasured_s"] <= down + 2.5, (down, st)
            assert "not measured for" in st["reason"], st
            assert "1 collector restart(s)" in st["reason"], st
            assert bus.stats("d")["packets"] == na
            _, text, _ = ctl(bus.control, "status")
            assert "streams restored at start" in text and "not measured for" in text, text
            assert "stream d resumed with %d packets counted" % na in bus.collector.output()

            os.rename(os.path.join(tmp, "b"), os.path.join(cap, "trace1"))
            wait_for(lambda: bus.stats("d")["packets"] == na + nb, 60, "the second file")
            stats = bus.stats("d")
            assert stats["resumes"] == 1 and stats["unmeasured_s"] == st["unmeasured_s"], stats
            assert sum(p["packets"] for p in stats["protocols"].values()) == na + nb
            ctl(bus.control, "stop", "d")
            wait_delivered(bus.control)
            # The capture clock ran on while the test waited (a directory
            # stream runs in real time): those seconds have zero points for
            # classes without traffic. Every other point is tshark's.
            got = stored_seconds(ix, "d")
            want = tshark_seconds(DEMO)
            assert {k: v for k, v in got.items() if v != [0, 0]} == want, \
                sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k) and got.get(k) != [0, 0])[:5]
            ivals = ix.points(DB, "SELECT packets FROM tapbus_interval WHERE stream = 'd'")
            assert sum(r["packets"] for r in ivals) == na + nb
            final = ix.points(DB, "SELECT packets FROM tapbus_stream WHERE stream = 'd'")
            assert [r["packets"] for r in final] == [na + nb], final
            loss = ix.points(DB, "SELECT unmeasured_ms FROM tapbus_loss WHERE stream = 'd'")
            assert loss and abs(loss[-1]["unmeasured_ms"] - st["unmeasured_s"] * 1000) <= 1, loss
        finally:
            bus.close()


def test_streams_come_back_after_a_clean_stop():
    """SIGTERM, then a new collector on the same state directory: the
    finished stream is listed with its statistics, the stopped one stays
    stopped, the running one runs; a stream forgotten stays forgotten."""
    with tempfile.TemporaryDirectory() as tmp:
        cap = os.path.join(tmp, "cap")
        state = os.path.join(tmp, "state")
        os.mkdir(cap)
        os.mkdir(state)
        with open(DEMO, "rb") as src, open(os.path.join(cap, "trace"), "wb") as dst:
            dst.write(src.read())
        args = ["--state-dir", state]
        bus = Bus([("f", "file:" + DEMO), ("d", "dir:" + cap), ("s", "dir:" + cap),
                   ("gone", "file:" + DEMO)], collector_args=args)
        try:
            bus.start("f", "d", "s", "gone")
            bus.wait_finished(["f", "gone"])
            wait_for(lambda: bus.stats("d")["packets"] == DEMO_PACKETS, 30, "d")
            wait_for(lambda: bus.stats("s")["packets"] == DEMO_PACKETS, 30, "s")
            ctl(bus.control, "stop", "s")
            assert restart_collector(bus, args, signal.SIGTERM) == 0
            states = {s["stream"]: s for s in ctl_json(bus.control, "status")["streams"]}
            assert {k: v["state"] for k, v in states.items()} == {
                "f": "finished", "d": "running", "s": "stopped", "gone": "finished"}, states
            assert states["f"]["packets"] == DEMO_PACKETS
            assert bus.stats("f")["top_flows"] and bus.stats("f")["resumes"] == 0
            # A clean stop is not a gap for a stream that had ended.
            assert states["f"]["reason"] == "", states["f"]
            assert states["d"]["resumes"] == 1 and states["d"]["packets"] == DEMO_PACKETS
            assert states["s"]["packets"] == DEMO_PACKETS and states["s"]["resumes"] == 0
            ctl(bus.control, "forget", "gone")
            assert restart_collector(bus, args, signal.SIGTERM) == 0
            names = {s["stream"]: s["state"] for s in ctl_json(bus.control, "status")["streams"]}
            assert names == {"f": "finished", "d": "running", "s": "stopped"}, names
            assert ctl_json(bus.control, "stats", "f")["packets"] == DEMO_PACKETS
            assert bus.collector.stop() == 0, bus.collector.output()
        finally:
            bus.close()


def test_file_stream_starts_a_new_run():
    """A file stream running at kill -9 is read again from its start: its
    statistics describe one complete run, not a part plus a whole."""
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        args = ["--state-dir", state]
        bus = Bus([("f", "file:" + DEMO)], probe_args=["--replay-speed", "2"],
                  collector_args=args)
        try:
            bus.start("f")
            wait_for(lambda: 0 < bus.stats("f")["packets"] < DEMO_PACKETS, 30, "a part of f")
            wait_snapshot(bus.control)
            restart_collector(bus, args)
            bus.wait_finished(["f"], timeout=60)
            stats = bus.stats("f")
            assert stats["packets"] == DEMO_PACKETS, stats["packets"]
            assert stats["state"] == "finished"
            assert stats["loss"]["lost_packets"] == 0, stats["loss"]
            assert "started again (a new run)" in bus.collector.output()
            assert bus.collector.stop() == 0, bus.collector.output()
        finally:
            bus.close()


def test_read_results_are_remembered():
    """Whether an ended stream's statistics were read survives a restart:
    with every slot taken, start reuses the slot of the one that was read
    and says so, and does not discard the unread one."""
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        args = ["--state-dir", state, "--max-streams", "2"]
        bus = Bus([("read", "file:" + DEMO), ("unread", "file:" + DEMO), ("new", "file:" + DEMO)],
                  collector_args=args)
        try:
            bus.start("read", "unread")
            bus.wait_finished(["read", "unread"])
            before = snapshots(bus.control)
            assert bus.stats("read")["packets"] == DEMO_PACKETS
            # Reading them is a change the snapshot keeps at once.
            wait_for(lambda: snapshots(bus.control) > before, 30, "the snapshot after the read")
            restart_collector(bus, args)
            reply = bus.start("new")
            assert reply["forgotten"] == ["read"], reply
            bus.wait_finished(["new"])
            names = {s["stream"] for s in ctl_json(bus.control, "status")["streams"]}
            assert names == {"unread", "new"}, names
            assert bus.collector.stop() == 0, bus.collector.output()
        finally:
            bus.close()


def run_collector(args):
    return subprocess.run([os.path.join(BIN, "tapbus-collector"), "--probe", endpoint(),
                           "--control", endpoint()] + args, capture_output=True, text=True,
                          timeout=30)


def test_unreadable_snapshots_stop_the_start():
    """A damaged or foreign snapshot, a state directory that is a file or
    missing: the collector does not start (exit 2, one line saying why) and
    leaves the file as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        path = os.path.join(state, "collector.state")
        # A real snapshot, cut short.
        bus = Bus([("f", "file:" + DEMO)], collector_args=["--state-dir", state])
        try:
            bus.start("f")
            bus.wait_finished(["f"])
        finally:
            bus.close()
        with open(path, "rb") as f:
            good = f.read()
        cases = [(good[:len(good) // 2], "is damaged"),
                 (b"\x81\xa6format\xa3foo", "is not a tapbus collector snapshot"),
                 (b"garbage that is not msgpack at all", "is not a tapbus collector snapshot"),
                 (good.replace(b"\xa7version\x01", b"\xa7version\x07"), "snapshot version 7")]
        for data, want in cases:
            with open(path, "wb") as f:
                f.write(data)
            r = run_collector(["--state-dir", state])
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 2, (want, r.returncode, r.stderr)
            assert len(lines) == 1 and want in lines[0] and path in lines[0], (want, r.stderr)
            with open(path, "rb") as f:
                assert f.read() == data
        # The whole snapshot again: the collector starts and has f back.
        with open(path, "wb") as f:
            f.write(good)
        control = endpoint()
        p = Proc("tapbus-collector", ["--probe", endpoint(), "--control", control,
                                      "--state-dir", state], tmp)
        try:
            wait_for(lambda: ctl(control, "status", timeout_ms=500, check=False)[0] == 0, 30,
                     "the collector")
            assert ctl_json(control, "stats", "f")["packets"] == DEMO_PACKETS
        finally:
            assert p.stop() == 0
        for bad, want in ((os.path.join(tmp, "nothing"), "No such file or directory"),
                          (path, "not a directory")):
            r = run_collector(["--state-dir", bad])
            assert r.returncode == 2 and want in r.stderr, (bad, r.returncode, r.stderr)


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
