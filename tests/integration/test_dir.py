#!/usr/bin/env python3
"""A directory source fed the way `tcpdump -w trace -C SIZE` feeds it: files
appear one after another while the probe runs, one of them written slowly
(records split across writes), and the probe is stopped and restarted in the
middle. Every packet must be counted exactly once."""

import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

PACKETS = 12000
FILES = 6
# Pacing, not a wait: a slow writer (tcpdump at a low rate) puts this much
# time between its pieces, so that the probe finds the file growing and
# often ends its reading in the middle of a record.
SLOW_WRITE_PAUSE_S = 0.002


def read_records(path):
    """The global header and the records of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    header, pos, records = data[:24], 24, []
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        records.append(data[pos:pos + 16 + caplen])
        pos += 16 + caplen
    return header, records


class Writer(threading.Thread):
    """Writes the files in order; the files in `slow` in small pieces over
    time, so the probe sees them grow, often with a record cut in two."""

    def __init__(self, directory, header, chunks, slow, first):
        super().__init__(daemon=True)
        self.directory, self.header, self.chunks = directory, header, chunks
        self.slow, self.first = slow, first
        self.go = {i: threading.Event() for i in range(len(chunks))}
        self.done = {i: threading.Event() for i in range(len(chunks))}
        self.error = None

    def run(self):
        try:
            for i in range(self.first, len(self.chunks)):
                if not self.go[i].wait(120):
                    return  # the test ended without asking for this file
                name = "trace" + (str(i) if i else "")
                blob = self.header + b"".join(self.chunks[i])
                with open(os.path.join(self.directory, name), "wb") as f:
                    if i in self.slow:
                        for off in range(0, len(blob), 997):  # cuts records in two
                            f.write(blob[off:off + 997])
                            f.flush()
                            time.sleep(SLOW_WRITE_PAUSE_S)
                    else:
                        f.write(blob)
                self.done[i].set()
        except Exception as e:  # reported by the test
            self.error = e

    def wait_done(self, i, timeout=60):
        """Wait until file i is written whole; fails at once if writing failed."""
        def done():
            if self.error is not None:
                raise AssertionError("writing trace%s failed: %r" % (i or "", self.error))
            return self.done[i].is_set()
        h.wait_for(done, timeout, "trace%s to be written" % (i or ""))


class Directory(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tapbus-dir-")
        self.src = os.path.join(self.tmp.name, "src.pcap")
        subprocess.run([os.path.join(h.BIN, "tb-gen-pcap"), "-o", self.src, "--packets",
                        str(PACKETS), "--flows", "200"], check=True, capture_output=True)
        # tb-gen-pcap writes nanosecond pcap; the records are split into files.
        self.header, records = read_records(self.src)
        self.assertEqual(len(records), PACKETS)
        per = PACKETS // FILES
        self.chunks = [records[i * per:(i + 1) * per] for i in range(FILES)]
        self.dir = os.path.join(self.tmp.name, "spool")
        os.mkdir(self.dir)

    def tearDown(self):
        self.tmp.cleanup()

    def packets(self, bus):
        return h.ctl_json(bus.control, "stats", "d")["packets"]

    def test_files_appearing_slow_writers_and_restart(self):
        w = Writer(self.dir, self.header, self.chunks, slow={2, 4}, first=0)
        w.go[0].set()
        w.start()
        w.wait_done(0, 30)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            for i in range(1, 4):  # files 1..3, file 2 written slowly
                w.go[i].set()
                w.wait_done(i)
            per = PACKETS // FILES
            # The newest file may still grow, so only what precedes it is certain.
            h.wait_for(lambda: self.packets(bus) == 4 * per, 60, "files 0-3 to be counted")
            # Restart the probe while file 4 is being written and read.
            w.go[4].set()
            h.wait_for(lambda: self.packets(bus) > 4 * per, 60, "file 4 to be read",
                       interval=0.01)
            self.assertEqual(bus.restart_probe(signal.SIGTERM), 0)
            # The new probe resumes inside file 4, past its header.
            resumed = h.wait_for(lambda: re.search(r"at 'trace4' offset (\d+)",
                                                   bus.probe.output()), 30, "the resume line")
            self.assertGreater(int(resumed.group(1)), 24)
            w.wait_done(4)
            w.go[5].set()
            w.wait_done(5)
            h.wait_for(lambda: self.packets(bus) >= PACKETS, 60, "every file to be counted")
            # Nothing read twice: the count stays exact once the probe has
            # recorded the last file as taken to its end.
            ckpt = os.path.join(self.dir, ".tapbus-d.checkpoint")
            size = os.path.getsize(os.path.join(self.dir, "trace%d" % (FILES - 1)))

            def at_end():
                with open(ckpt) as f:
                    lines = f.read().split("\n")
                return lines[2] == "trace%d" % (FILES - 1) and int(lines[3]) == size
            h.wait_for(at_end, 30, "the checkpoint to reach the end of the last file")
            s = h.ctl_json(bus.control, "stats", "d")
            self.assertEqual(s["packets"], PACKETS)
            self.assertEqual(s["loss"]["seq_gaps"], 0)
            self.assertEqual(s["run_resets"], 0)
        finally:
            codes, logs = bus.close()
        self.assertIsNone(w.error)
        self.assertEqual(codes, (0, 0), logs)

    def test_unreadable_files_are_skipped_and_order_is_natural(self):
        for name, chunk in (("trace10", 2), ("trace2", 1), ("trace", 0)):
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(self.header + b"".join(self.chunks[chunk]))
        with open(os.path.join(self.dir, "trace3"), "wb") as f:
            f.write(b"not a capture file, but long enough to have a header" * 4)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            per = PACKETS // FILES
            h.wait_for(lambda: self.packets(bus) == 3 * per, 60, "the good files to be counted")
            s = h.ctl_json(bus.control, "stats", "d")
            # Natural order: trace, trace2, trace3 (skipped), trace10 last.
            sec, nsec = struct.unpack_from("<II", self.chunks[2][-1], 0)
            self.assertEqual(s["last_packet"]["ts"], sec * 1000000000 + nsec)
            h.wait_for(lambda: bus.probe_view("d").get("source_state") == "running", 30,
                       "a heartbeat saying running")
            # It says what it is doing: on the newest file (it may still grow),
            # two read before it, and trace3 skipped, counted as loss.
            h.wait_for(lambda: "reading trace10; 2 files done, 1 skipped (last: trace3: not a "
                       "capture" in bus.probe_view("d").get("detail", ""),
                       30, "a heartbeat describing the directory's progress")
            self.assertIn("skipping", bus.probe.output())
            self.assertEqual(h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"], 1)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_finished_files_moved_or_deleted(self):
        done = os.path.join(self.tmp.name, "done")
        os.mkdir(done)
        for i in range(3):
            with open(os.path.join(self.dir, "trace" + (str(i) if i else "")), "wb") as f:
                f.write(self.header + b"".join(self.chunks[i]))
        bus = h.Bus([("d", "dir:" + self.dir)], probe_args=["--after-read", "move:" + done])
        try:
            bus.start("d")
            per = PACKETS // FILES
            h.wait_for(lambda: self.packets(bus) == 3 * per, 60, "the files to be counted")
            # Finished files move; the newest stays, as it may still grow.
            h.wait_for(lambda: sorted(os.listdir(done)) == ["trace", "trace1"], 30,
                       "the finished files to be moved")
            self.assertIn("trace2", os.listdir(self.dir))
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_unwritable_checkpoint_is_an_error_of_its_stream(self):
        with open(os.path.join(self.dir, "trace"), "wb") as f:
            f.write(self.header + b"".join(self.chunks[0]))
        nowhere = os.path.join(self.tmp.name, "no", "such", "dir")
        bus = h.Bus([("d", "dir:" + self.dir), ("f", "file:" + self.src)],
                    probe_args=["--checkpoint-dir", nowhere])
        try:
            bus.start("d", "f")
            bus.wait_finished(["f"])  # the other stream carries on
            self.assertEqual(h.ctl_json(bus.control, "stats", "f")["packets"], PACKETS)
            h.wait_for(lambda: bus.probe_view("d").get("source_state") == "error", 30,
                       "the directory stream to report an error")
            self.assertIn("checkpoint", bus.probe_view("d")["detail"])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_stop_right_after_new_data_loses_nothing(self):
        path = os.path.join(self.dir, "trace")
        recs = self.chunks[0]
        with open(path, "wb") as f:
            f.write(self.header + b"".join(recs[:100]))
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: self.packets(bus) == 100, 30, "the first 100 packets")
            with open(path, "ab") as f:
                f.write(b"".join(recs[100:110]))
            h.ctl(bus.control, "stop", "d")  # perhaps read, not yet published
            first = self.packets(bus)
            bus.start("d")  # a new measurement: resumes where publishing stopped
            h.wait_for(lambda: first + self.packets(bus) >= 110, 30, "the 10 new packets")
            self.assertEqual(first + self.packets(bus), 110)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_newest_file_rewritten_is_read_again(self):
        path = os.path.join(self.dir, "trace")
        recs = self.chunks[0]
        with open(path, "wb") as f:
            f.write(self.header + b"".join(recs[:100]))
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: self.packets(bus) == 100, 30, "the first 100 packets")
            new = os.path.join(self.tmp.name, "new")  # outside: not a file to read
            with open(new, "wb") as f:
                f.write(self.header + b"".join(recs[100:120]))
            os.rename(new, path)  # a new file under the same name
            h.wait_for(lambda: self.packets(bus) == 120, 30, "the rewritten file's packets")
            self.assertIn("was replaced", bus.probe.output())
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_modified_pcap_format_growing(self):
        # The "modified" pcap format: magic a1b2cd34, 24-byte record headers.
        hdr = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
        recs = [r[:16] + struct.pack("<IHBB", 1, 0x0800, 0, 0) + r[16:]
                for r in self.chunks[0][:80]]
        path = os.path.join(self.dir, "trace")
        with open(path, "wb") as f:
            f.write(hdr + b"".join(recs[:50]))
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: self.packets(bus) == 50, 30, "the first 50 packets")
            with open(path, "ab") as f:
                f.write(b"".join(recs[50:]))
            h.wait_for(lambda: self.packets(bus) == 80, 30, "the 30 appended packets")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    # --- nothing hidden -------------------------------------------------

    def gen(self, name, packets, pcapng=False, seed=1):
        """A generated capture of `packets` packets (pcapng through editcap)."""
        path = os.path.join(self.tmp.name, name)
        subprocess.run([os.path.join(h.BIN, "tb-gen-pcap"), "-o", path, "--packets",
                        str(packets), "--flows", "1000", "--seed", str(seed)], check=True,
                       capture_output=True)
        if pcapng:
            subprocess.run(["editcap", "-F", "pcapng", path, path + ".ng"], check=True,
                           capture_output=True)
            os.replace(path + ".ng", path)
        return path

    def watching(self, bus, stream="d"):
        """Wait until the stream's directory source watches its directory:
        what arrives from then on is seen arriving (a file delivered before
        leaves no event)."""
        h.wait_for(lambda: bus.probe_view(stream).get("detail", "").startswith(
            "waiting for a file after"), 30, "the directory source to watch")

    def deliver(self, src, tmp_name, name):
        """The usual atomic delivery: copy under a temporary name, rename."""
        subprocess.run("cp '%s' '%s' && mv '%s' '%s'" % (
            src, os.path.join(self.dir, tmp_name), os.path.join(self.dir, tmp_name),
            os.path.join(self.dir, name)), shell=True, check=True)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_rename_delivered_files_are_read_whole(self):
        big = 400000
        ng = self.gen("big.pcapng", big, pcapng=True, seed=2)
        pc = self.gen("big.pcap", big, seed=3)
        small_ng = self.gen("small.pcapng", 100, pcapng=True, seed=4)
        small = self.gen("small.pcap", 50, seed=5)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            self.watching(bus)
            t0 = time.monotonic()
            self.deliver(ng, "trace1.tmp", "trace1")   # temp name sorts after the final one
            self.deliver(pc, "x.tmp", "trace2")        # temp name sorts after everything
            self.deliver(small_ng, ".trace3", "trace3")  # hidden temp name
            # The newest file is pcapng, delivered by rename: complete, so it is
            # read at once, without waiting for a successor, and status says so.
            h.wait_for(lambda: self.packets(bus) == 2 * big + 100, 120,
                       "both big files and trace3, whole")
            took = time.monotonic() - t0
            h.wait_for(lambda: "trace3 is pcapng: 100 packets read"
                       in bus.probe_view("d").get("detail", ""), 30,
                       "status to say the pcapng file was read")
            self.assertEqual(bus.probe_view("d")["source_state"], "running")
            _, out, _ = h.ctl(bus.control, "status")
            self.assertIn("trace3 is pcapng", out)
            # A temporary name without a temporary suffix: read after its rename,
            # once, under its final name; trace3 is not read a second time.
            self.deliver(small, "zz-incoming", "trace4")
            h.wait_for(lambda: self.packets(bus) == 2 * big + 150, 60, "trace4")
            h.wait_for(lambda: "reading trace4; 3 files done" in
                       bus.probe_view("d").get("detail", ""), 30, "trace3 to be finished")
            self.assertEqual(self.packets(bus), 2 * big + 150)
            s = h.ctl_json(bus.control, "stats", "d")
            self.assertEqual(s["loss"]["files_skipped"], 0)
            self.assertEqual(s["loss"]["seq_gaps"], 0)
            self.assertNotIn("disappeared", bus.probe.output())
            print("\n  2 x %d packets delivered by rename read in %.1f s" % (big, took))
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_rename_delivered_pcapng_newest_is_read_without_successor(self):
        n = 3000
        ng = self.gen("ng.pcapng", n, pcapng=True, seed=6)
        small = self.gen("small.pcap", 40, seed=7)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            self.watching(bus)
            # The only file in the directory, delivered by rename: read whole.
            self.deliver(ng, "trace1.tmp", "trace1")
            h.wait_for(lambda: self.packets(bus) == n, 60, "the pcapng file, whole")
            h.wait_for(lambda: "trace1 is pcapng: %d packets read" % n
                       in bus.probe_view("d").get("detail", ""), 30, "the detail")
            self.assertEqual(os.listdir(self.dir).count("trace1"), 1)
            # After a restart no event tells how trace1 arrived (and it is
            # fresh): the probe knows its packets were taken, waits, and
            # reads nothing twice when a successor arrives.
            self.assertEqual(bus.restart_probe(signal.SIGTERM), 0)
            h.wait_for(lambda: "at 'trace1' offset %d" % n in bus.probe.output(), 30,
                       "the resume line")
            h.wait_for(lambda: "trace1 is pcapng: %d packets read" % n
                       in bus.probe_view("d").get("detail", ""), 30, "the detail after restart")
            self.deliver(small, "x.part", "trace2")
            h.wait_for(lambda: self.packets(bus) == n + 40, 60, "trace2")
            h.wait_for(lambda: "reading trace2; 1 files done" in
                       bus.probe_view("d").get("detail", ""), 30, "trace1 to be finished")
            s = h.ctl_json(bus.control, "stats", "d")
            self.assertEqual(s["packets"], n + 40)
            self.assertEqual(s["loss"]["files_skipped"], 0)
            self.assertEqual(s["loss"]["seq_gaps"], 0)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_pcapng_read_early_then_replaced_is_read_from_its_start(self):
        a = self.gen("a.pcapng", 200, pcapng=True, seed=11)
        b = self.gen("b.pcapng", 500, pcapng=True, seed=12)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            self.watching(bus)
            self.deliver(a, "t.tmp", "trace1")
            h.wait_for(lambda: self.packets(bus) == 200, 60, "the first delivery")
            # The same name delivered again: another file, read whole, not
            # from the 201st packet.
            self.deliver(b, "t.tmp", "trace1")
            h.wait_for(lambda: self.packets(bus) == 700, 60, "the second delivery, whole")
            self.assertIn("trace1 was replaced; reading it from its start", bus.probe.output())
            h.wait_for(lambda: "trace1 is pcapng: 500 packets read"
                       in bus.probe_view("d").get("detail", ""), 30, "the detail")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_pcapng_read_early_then_renamed_is_not_read_again(self):
        n = 300
        ng = self.gen("a.pcapng", n, pcapng=True, seed=13)
        small = self.gen("small.pcap", 50, seed=14)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            self.watching(bus)
            # Delivered under a name with no temporary suffix (complete: closed
            # by its writer), read at once, then given its final name.
            self.deliver(ng, "zz-incoming.tmp", "zz-incoming")
            h.wait_for(lambda: "zz-incoming is pcapng: %d packets read" % n
                       in bus.probe_view("d").get("detail", ""), 60, "zz-incoming, read early")
            os.rename(os.path.join(self.dir, "zz-incoming"), os.path.join(self.dir, "trace1"))
            # The same file under its new name: what was taken of it stays taken.
            self.deliver(small, "t.tmp", "trace2")
            h.wait_for(lambda: self.packets(bus) >= n + 50, 60, "trace2")
            self.assertEqual(self.packets(bus), n + 50)
            self.assertEqual(h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"], 0)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_file_renamed_ahead_while_read_is_not_read_again(self):
        n = 800000  # far more than the bus and the sockets hold
        big = self.gen("big.pcap", n, seed=15)
        small = self.gen("small.pcap", 50, seed=16)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            self.watching(bus)
            # The collector paused: the probe stops in the middle of trace1,
            # waiting for room on the bus, with trace2 after it.
            bus.collector.p.send_signal(signal.SIGSTOP)
            self.deliver(big, "t.tmp", "trace1")
            self.deliver(small, "u.tmp", "trace2")
            fds = "/proc/%d/fd" % bus.probe.p.pid

            def reading_trace1():
                for fd in os.listdir(fds):
                    try:
                        if os.readlink(os.path.join(fds, fd)).endswith("/trace1"):
                            return True
                    except OSError:
                        pass
                return False
            h.wait_for(reading_trace1, 30, "the probe to open trace1")
            # Renamed to a name the reading reaches later: the same file.
            os.rename(os.path.join(self.dir, "trace1"), os.path.join(self.dir, "trace3"))
            bus.collector.p.send_signal(signal.SIGCONT)
            h.wait_for(lambda: self.packets(bus) >= n + 50, 120, "trace1 and trace2")
            h.wait_for(lambda: "trace3" in bus.probe_view("d").get("detail", ""), 30,
                       "the reading to reach trace3")
            self.assertEqual(self.packets(bus), n + 50)
            self.assertTrue(bus.probe_view("d")["detail"].startswith(
                "waiting for a file after 'trace3'; 2 files done"), bus.probe_view("d"))
            self.assertEqual(h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"], 0)
        finally:
            bus.collector.p.send_signal(signal.SIGCONT)
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_pcapng_written_in_place_waits_until_closed(self):
        n = 2000
        ng = self.gen("ng.pcapng", n, pcapng=True, seed=8)
        small = self.gen("small.pcap", 30, seed=9)
        with open(ng, "rb") as f:
            blob = f.read()
        bus = h.Bus([("d", "dir:" + self.dir)])
        writer = open(os.path.join(self.dir, "trace3"), "wb")  # held open, as tcpdump does
        try:
            bus.start("d")
            writer.write(blob)
            writer.flush()
            h.wait_for(lambda: "trace3 is pcapng: read once a newer file exists"
                       in bus.probe_view("d").get("detail", ""), 30,
                       "status to say the pcapng file waits for its successor")
            self.assertEqual(self.packets(bus), 0)
            # A file arriving late, under a name before the one waiting: read first.
            self.deliver(small, "trace2a.part", "trace2a")
            h.wait_for(lambda: self.packets(bus) == 30, 60, "trace2a")
            h.wait_for(lambda: "trace3 is pcapng: read once a newer file exists"
                       in bus.probe_view("d").get("detail", ""), 30, "trace3 to wait again")
            self.assertEqual(self.packets(bus), 30)
            # Its writer closes it (tcpdump exiting): complete, read at once.
            writer.close()
            h.wait_for(lambda: self.packets(bus) == 30 + n, 60, "trace3, whole, once closed")
            h.wait_for(lambda: "trace3 is pcapng: %d packets read" % n
                       in bus.probe_view("d").get("detail", ""), 30, "the detail")
            self.assertEqual(h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"], 0)
        finally:
            writer.close()
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_pcapng_closed_with_a_cut_block_waits_for_the_rest(self):
        # A close that was not the end: the writer comes back. What was read
        # stays counted, the cut block waits, nothing is read twice.
        n = 1000
        with open(self.gen("ng.pcapng", n, pcapng=True, seed=13), "rb") as f:
            blob = f.read()
        path = os.path.join(self.dir, "trace1")
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            self.watching(bus)
            with open(path, "wb") as f:
                f.write(blob[:-10])  # the last block cut
            h.wait_for(lambda: self.packets(bus) == n - 1, 60, "every whole block")
            h.wait_for(lambda: "trace1 is pcapng: %d packets read" % (n - 1)
                       in bus.probe_view("d").get("detail", ""), 30, "the detail")
            self.assertIn("trace1 ends in an incomplete block after packet %d" % (n - 1),
                          bus.probe.output())
            with open(path, "ab") as f:
                f.write(blob[-10:])
            h.wait_for(lambda: self.packets(bus) == n, 60, "the last packet")
            h.wait_for(lambda: "trace1 is pcapng: %d packets read" % n
                       in bus.probe_view("d").get("detail", ""), 30, "the file read to its end")
            s = h.ctl_json(bus.control, "stats", "d")
            self.assertEqual(s["packets"], n)
            self.assertEqual(s["loss"]["files_skipped"], 0)
            self.assertEqual(s["loss"]["seq_gaps"], 0)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    @unittest.skipUnless(shutil.which("editcap"), "editcap (wireshark) is not installed")
    def test_pcapng_unchanged_since_before_start_is_read(self):
        # Delivered while no probe watched: no event, but not written for an
        # hour before the start (60 s is enough): taken as complete.
        n = 1500
        ng = self.gen("ng.pcapng", n, pcapng=True, seed=10)
        old = os.path.join(self.dir, "trace1")
        shutil.copy(ng, old)
        hour_ago = time.time() - 3600
        os.utime(old, (hour_ago, hour_ago))
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: self.packets(bus) == n, 60, "the settled pcapng file, whole")
            self.assertIn("trace1 is pcapng, unchanged for 60 s before the start",
                          bus.probe.output())
            h.wait_for(lambda: "trace1 is pcapng: %d packets read" % n
                       in bus.probe_view("d").get("detail", ""), 30, "the detail")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        # Written just before the start: it waits for a successor, as before.
        os.unlink(os.path.join(self.dir, ".tapbus-d.checkpoint"))
        os.utime(old, None)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: "trace1 is pcapng: read once a newer file exists"
                       in bus.probe_view("d").get("detail", ""), 30, "trace1 to wait")
            self.assertEqual(self.packets(bus), 0)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_unreadable_file_is_retried_then_skipped(self):
        # Root reads a mode-000 file anyway: the probe runs as nobody.
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                self.skipTest("running as root without setpriv: cannot drop privileges")
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            # The build may sit below a folder nobody may enter (a home).
            r = subprocess.run(prefix + [os.path.join(h.BIN, "tapbus-probe"), "--help"],
                               capture_output=True, timeout=30)
            if r.returncode != 0:
                self.skipTest("an unprivileged user cannot run %s (a folder above it is "
                              "closed to others)" % h.BIN)
            os.chmod(self.tmp.name, 0o755)
            os.chmod(self.dir, 0o777)  # the checkpoint is written there
        else:
            prefix = []
        names = ["trace1", "trace2", "trace3", "trace4"]
        for i, name in enumerate(names):
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(self.header + b"".join(self.chunks[i]))
        os.chmod(os.path.join(self.dir, "trace2"), 0)
        bus = h.Bus([("d", "dir:" + self.dir)], probe_args=["--unreadable-timeout", "3"],
                    probe_prefix=prefix)
        try:
            bus.start("d")
            h.wait_for(lambda: "cannot open trace2" in bus.probe_view("d").get("detail", ""),
                       30, "status to say trace2 cannot be opened")
            self.assertEqual(self.packets(bus), len(self.chunks[0]))  # it waits, for now
            per = PACKETS // FILES
            h.wait_for(lambda: self.packets(bus) == 3 * per, 60, "the good files, whole")
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"]
                       == 1, 30, "the skipped file to be counted")
            h.wait_for(lambda: "1 skipped (last: trace2: cannot be opened (Permission denied)"
                       in bus.probe_view("d").get("detail", ""), 30, "the skip in status")
            self.assertRegex(bus.probe.output(), r"skipping trace2: cannot be opened")
            _, out, _ = h.ctl(bus.control, "stats", "d")
            self.assertIn("1 files skipped", out)
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_symlinks_read_fifos_sockets_subdirs_skipped(self):
        per = PACKETS // FILES
        for i, name in ((0, "trace1"), (2, "trace6")):
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(self.header + b"".join(self.chunks[i]))
        outside = os.path.join(self.tmp.name, "outside")
        with open(outside, "wb") as f:
            f.write(self.header + b"".join(self.chunks[1]))
        os.symlink(outside, os.path.join(self.dir, "trace2"))
        os.mkfifo(os.path.join(self.dir, "trace3"))
        os.mkdir(os.path.join(self.dir, "trace4"))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.path.join(self.dir, "trace5"))
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: self.packets(bus) == 3 * per, 60, "the files and the symlink")
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"]
                       == 3, 30, "the FIFO, the directory and the socket to be counted")
            out = bus.probe.output()
            for what in ("trace3: a FIFO", "trace4: a sub-directory", "trace5: a socket"):
                self.assertIn(what, out)
            # A file arriving under a name before the files already read is
            # never reached: counted, not hidden.
            with open(os.path.join(self.dir, "trace0"), "wb") as f:
                f.write(self.header + b"".join(self.chunks[3]))
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"]
                       == 4, 30, "the late file to be counted")
            self.assertIn("trace0: arrived after later files were read", bus.probe.output())
            self.assertEqual(self.packets(bus), 3 * per)
            _, status, _ = h.ctl(bus.control, "status")
            self.assertRegex(status, r"\bd\s+running\s+\S+\s+%d\s+\d+\s+\S+\s+4\b" % (3 * per))
        finally:
            sock.close()
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_file_cut_short_is_counted(self):
        per = PACKETS // FILES
        blob = self.header + b"".join(self.chunks[0])
        with open(os.path.join(self.dir, "trace1"), "wb") as f:
            f.write(blob[:-10])  # the last record cut
        with open(os.path.join(self.dir, "trace2"), "wb") as f:
            f.write(self.header + b"".join(self.chunks[1]))
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            h.wait_for(lambda: self.packets(bus) == 2 * per - 1, 60, "every whole record")
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "d")["loss"]["files_skipped"]
                       == 1, 30, "the file cut short to be counted")
            self.assertIn("trace1: cut short", bus.probe_view("d")["detail"])
            # top's loss line names it, and the probe's row in status says whose.
            code, out, _ = h.ctl(bus.control, "top", "d")
            self.assertEqual(code, 0)
            self.assertRegex(out, r"(?m)^loss  0 gaps, 0 lost packets, 0 capture drops, "
                             r"0 bus drops, 1 files skipped$")
            row = [st for st in h.ctl_json(bus.control, "status")["streams"]
                   if st["stream"] == "d"][0]
            self.assertEqual(row["loss"]["files_skipped"], 1)
            self.assertEqual([(p["id"], p["files_skipped"]) for p in row["probes"]],
                             [("it-probe", 1)])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_fifo_file_source_is_refused_without_blocking(self):
        fifo = os.path.join(self.tmp.name, "fifo")
        os.mkfifo(fifo)
        bus = h.Bus([("f", "file:" + fifo), ("g", "file:" + self.src)])
        try:
            bus.start("f", "g")
            bus.wait_finished(["g"])  # the probe's loop never waits on the FIFO
            self.assertEqual(h.ctl_json(bus.control, "stats", "g")["packets"], PACKETS)
            h.wait_for(lambda: bus.probe_view("f").get("source_state") == "error", 30,
                       "the FIFO stream to be in the error state")
            self.assertIn("not a regular file (a FIFO)", bus.probe_view("f")["detail"])
            h.wait_for(lambda: h.ctl_json(bus.control, "stats", "f")["loss"]["files_skipped"]
                       == 1, 30, "the refused file to be counted")
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_streams_never_share_a_checkpoint(self):
        # "x/y" and "x_y" once mapped to one checkpoint file: after a restart
        # one of them resumed at the other's position and stopped reading.
        a, b = os.path.join(self.tmp.name, "a"), os.path.join(self.tmp.name, "b")
        ckpt = os.path.join(self.tmp.name, "ckpt")
        for d in (a, b, ckpt):
            os.mkdir(d)
        per = PACKETS // FILES

        def put(d, name, chunk):
            with open(os.path.join(d, name + ".tmp"), "wb") as f:
                f.write(self.header + b"".join(self.chunks[chunk]))
            os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
        put(a, "a1", 0)
        put(b, "b1", 1)
        bus = h.Bus([("x/y", "dir:" + a), ("x_y", "dir:" + b)],
                    probe_args=["--checkpoint-dir", ckpt])
        try:
            bus.start("x/y", "x_y")
            h.wait_for(lambda: self.packets_of(bus, "x/y") == per and
                       self.packets_of(bus, "x_y") == per, 60, "the first files")
            self.assertEqual(bus.restart_probe(signal.SIGTERM), 0)
            put(a, "a2", 2)
            put(b, "b2", 3)
            h.wait_for(lambda: self.packets_of(bus, "x/y") == 2 * per and
                       self.packets_of(bus, "x_y") == 2 * per, 60, "the second files")
            self.assertEqual(sorted(os.listdir(ckpt)),
                             [".tapbus-x%2Fy.checkpoint", ".tapbus-x_y.checkpoint"])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def test_old_style_checkpoint_taken_over_when_unambiguous(self):
        per = PACKETS // FILES
        for i in range(2):
            with open(os.path.join(self.dir, "t%d" % i), "wb") as f:
                f.write(self.header + b"".join(self.chunks[i]))
        # Written by a probe before checkpoint names were escaped: t0 done.
        old = os.path.join(self.dir, ".tapbus-x_y.checkpoint")
        with open(old, "w") as f:
            f.write("tapbus-dir-checkpoint 1\nt0\n\n0\n")
        bus = h.Bus([("x/y", "dir:" + self.dir)])
        try:
            bus.start("x/y")
            h.wait_for(lambda: self.packets_of(bus, "x/y") == per, 60, "t1 only")
            h.wait_for(lambda: not os.path.exists(old), 30, "the old checkpoint to be moved")
            self.assertTrue(os.path.exists(os.path.join(self.dir, ".tapbus-x%2Fy.checkpoint")))
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)
        # With a stream "x_y" beside it the old file could be either's: an
        # error of the stream that would take it over, saying what to do.
        with open(old, "w") as f:
            f.write("tapbus-dir-checkpoint 1\nt0\n\n0\n")
        os.unlink(os.path.join(self.dir, ".tapbus-x%2Fy.checkpoint"))
        other = os.path.join(self.tmp.name, "other")
        os.mkdir(other)
        bus = h.Bus([("x/y", "dir:" + self.dir), ("x_y", "dir:" + other)])
        try:
            bus.start("x/y")
            h.wait_for(lambda: bus.probe_view("x/y").get("source_state") == "error", 30,
                       "the ambiguous checkpoint to be an error")
            self.assertIn("old-style checkpoint", bus.probe_view("x/y")["detail"])
        finally:
            codes, logs = bus.close()
        self.assertEqual(codes, (0, 0), logs)

    def packets_of(self, bus, stream):
        return h.ctl_json(bus.control, "stats", stream)["packets"]


if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    unittest.main(verbosity=2)
