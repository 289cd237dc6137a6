#!/usr/bin/env python3
"""A directory source fed the way `tcpdump -w trace -C SIZE` feeds it: files
appear one after another while the probe runs, one of them written slowly
(records split across writes), and the probe is stopped and restarted in the
middle. Every packet must be counted exactly once."""

import os
import re
import signal
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
                self.go[i].wait(120)
                name = "trace" + (str(i) if i else "")
                blob = self.header + b"".join(self.chunks[i])
                with open(os.path.join(self.directory, name), "wb") as f:
                    if i in self.slow:
                        for off in range(0, len(blob), 997):  # cuts records in two
                            f.write(blob[off:off + 997])
                            f.flush()
                            time.sleep(0.002)
                    else:
                        f.write(blob)
                self.done[i].set()
        except Exception as e:  # reported by the test
            self.error = e


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
        w.done[0].wait(30)
        bus = h.Bus([("d", "dir:" + self.dir)])
        try:
            bus.start("d")
            for i in range(1, 4):  # files 1..3, file 2 written slowly
                w.go[i].set()
                w.done[i].wait(60)
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
            w.done[4].wait(60)
            w.go[5].set()
            w.done[5].wait(60)
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
            # the three before it done (trace3 skipped).
            h.wait_for(lambda: "reading trace10; 3 files done" in
                       bus.probe_view("d").get("detail", ""),
                       30, "a heartbeat describing the directory's progress")
            self.assertIn("skipping", bus.probe.output())
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


if __name__ == "__main__":
    if not h.BIN:
        sys.exit("set TAPBUS_BIN")
    unittest.main(verbosity=2)
