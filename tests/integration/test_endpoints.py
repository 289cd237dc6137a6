#!/usr/bin/env python3
"""The collector's bus endpoints as states in status: a --probe endpoint
nothing listens on is refused, a host name that does not resolve is
unresolvable, a peer that is not ZeroMQ fails the handshake; a probe started
later connects; one that dies is seen to go. Real programs on loopback; the
unresolvable name is under .invalid (RFC 6761: never resolves, nothing leaves
the machine)."""

import os
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402


class JunkServer:
    """A TCP server on loopback that writes `junk` to every connection and
    reads whatever comes until the peer closes."""

    def __init__(self, junk):
        self.junk = junk
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.srv.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        try:
            conn.settimeout(30)
            conn.sendall(self.junk)
            while conn.recv(4096):
                pass
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.running = False
        self.thread.join(5)
        self.srv.close()


def endpoints(control):
    return {e["endpoint"]: e for e in h.ctl_json(control, "status")["collector"]["endpoints"]}


class Endpoints(unittest.TestCase):
    def test_states_of_probe_and_listen_endpoints(self):
        tmp = tempfile.TemporaryDirectory(prefix="tapbus-endpoints-")
        # A probe starts here later. Named by a host name: after a reconnect,
        # ZeroMQ names the endpoint by the address it resolved to, and the
        # collector still knows it for this one.
        later_port = h.free_port()
        later = "tcp://localhost:%d" % later_port
        unresolvable = "tcp://tapbus-no-such-host.invalid:%d" % h.free_port()
        zmtp_junk = JunkServer(b"\xff" * 64)  # a broken ZMTP greeting: a protocol error
        text_junk = JunkServer(b"garbage, not ZMTP at all\r\n" * 40)  # never completes one
        junk1 = "tcp://127.0.0.1:%d" % zmtp_junk.port
        junk2 = "tcp://127.0.0.1:%d" % text_junk.port
        listen = h.endpoint()
        control = h.endpoint()
        t0 = time.time_ns()
        coll = h.Proc("tapbus-collector",
                      ["--probe", later, "--probe", unresolvable, "--probe", junk1,
                       "--probe", junk2, "--listen", listen, "--control", control], tmp.name)
        probe = None
        try:
            h.wait_for(lambda: h.ctl(control, "status", timeout_ms=500, check=False)[0] == 0,
                       30, "the collector to answer")

            def states(want):
                def ok():
                    eps = endpoints(control)
                    return all(eps[k]["state"] == v and eps[k]["retries"] >= (
                        2 if v in ("refused", "unresolvable") else 0)
                        for k, v in want.items()) and eps
                return ok

            eps = h.wait_for(states({later: "refused", unresolvable: "unresolvable",
                                     junk1: "handshake_failed", listen: "listening"}),
                             30, "refused, unresolvable, handshake failed")
            self.assertEqual(list(eps), [later, unresolvable, junk1, junk2, listen])
            self.assertEqual([eps[k]["kind"] for k in eps], ["probe"] * 4 + ["listen"])
            refused = eps[later]
            self.assertIn("connection refused", refused["detail"])
            self.assertTrue(t0 <= refused["since_ts"] <= time.time_ns(), refused)
            self.assertGreaterEqual(refused["since_s"], 0)
            self.assertRegex(refused["since_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn("tapbus-no-such-host.invalid", eps[unresolvable]["detail"])
            self.assertIn("does not resolve", eps[unresolvable]["detail"])
            self.assertIn("ZMTP protocol error", eps[junk1]["detail"])
            self.assertGreaterEqual(eps[junk1]["handshake_failures"], 1)
            self.assertEqual(eps[listen]["peers"], 0)

            # Text that is no ZMTP greeting at all: dropped at the handshake
            # time limit (5 s).
            eps = h.wait_for(states({junk2: "handshake_failed"}), 30,
                             "the text peer's handshake to fail")
            self.assertIn("no ZMTP handshake within 5000 ms", eps[junk2]["detail"])
            self.assertGreaterEqual(text_junk.accepted, 1)

            _, out, _ = h.ctl(control, "status")
            self.assertRegex(out, r"\nprobe +%s: REFUSED for \d+ s \(since [0-9T:.-]+Z\), "
                             r"\d+ retries: connection refused" % later)
            self.assertIn("probe      %s: UNRESOLVABLE for " % unresolvable, out)
            self.assertIn("probe      %s: HANDSHAKE_FAILED for " % junk1, out)
            self.assertIn("listen     %s: listening for " % listen, out)

            # A probe started where nothing listened: connected, retries reset.
            since_refused = eps[later]["since_ts"]
            probe = h.Proc("tapbus-probe", ["--id", "late", "--publish",
                                            "tcp://127.0.0.1:%d" % later_port, "--source",
                                            "s=file:" + h.corpus_file("babel.pcap")], tmp.name)
            eps = h.wait_for(states({later: "connected"}), 30, "the late probe to connect")
            self.assertEqual((eps[later]["retries"], eps[later]["peers"], eps[later]["detail"]),
                             (0, 1, ""))
            self.assertGreater(eps[later]["since_ts"], since_refused)
            # and it works: a stream from it is measured.
            h.ctl(control, "start", "s")
            h.wait_for(lambda: h.ctl_json(control, "stats", "s")["state"] == "finished", 60,
                       "the stream to finish")

            # The probe dies: the connection is lost, and the port it listened
            # on refuses the attempts to reconnect.
            since_connected = eps[later]["since_ts"]
            probe.stop(signal.SIGKILL)
            probe = None
            eps = h.wait_for(states({later: "refused"}), 30, "the dead probe's endpoint to go")
            self.assertGreater(eps[later]["since_ts"], since_connected)
            self.assertIn("probe endpoint %s: disconnected (connection lost" % later,
                          coll.output())

            # Probes that connect to --listen are counted; one that speaks
            # garbage is a failed handshake of that endpoint.
            rev = h.Proc("tapbus-probe", ["--id", "rev", "--connect", listen, "--source",
                                          "r=file:" + h.corpus_file("babel.pcap")], tmp.name)
            try:
                h.wait_for(lambda: endpoints(control)[listen]["peers"] == 1, 30,
                           "the connecting probe to be counted")
            finally:
                rev.stop()
            port = int(listen.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"\xff" * 64)
                eps = h.wait_for(lambda: endpoints(control)[listen]["handshake_failures"] >= 1
                                 and endpoints(control), 30, "the bad peer's failed handshake")
            self.assertEqual(eps[listen]["state"], "listening")
            self.assertIn("ZMTP protocol error", eps[listen]["detail"])
            h.wait_for(lambda: endpoints(control)[listen]["peers"] == 0, 30, "the peers to go")
        finally:
            if probe is not None:
                probe.stop()
            code = coll.stop()
            zmtp_junk.close()
            text_junk.close()
            log = coll.output()
            tmp.cleanup()
        self.assertEqual(code, 0, log)
        # Logs explain, once per change, not per retry.
        self.assertEqual(log.count("probe endpoint %s: refused" % later), 2, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
