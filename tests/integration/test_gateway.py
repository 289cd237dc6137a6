#!/usr/bin/env python3
"""tapbusctl serve --http: the HTTP gateway driven with real curl, as the
scripts that use it do: authentication required and checked, the URLs
(/start with DPMI-style names, /stop, /forget, /status, /stats, /probes, /db), JSON
answers with proper status codes, and refusal to start without credentials
or with a credentials file others may read. HTTPS of its own (--tls-cert,
--tls-key) with a certificate made by openssl at test time: curl with
--cacert, plain HTTP on its port refused, the per-address limit and the
header deadline as without TLS, bad certificate or key files refused."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import traceback

from tapbus_harness import BIN, Bus, Proc, free_port, wait_for, write_private

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "data", "demo.pcap")


def curl(url, user=None, method="GET", extra=()):
    """(HTTP status, parsed JSON body) from a real curl."""
    cmd = ["curl", "-s", "-S", "-X", method, "-w", "\n%{http_code}"] + list(extra) + [url]
    if user is not None:
        cmd[1:1] = ["-u", user]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition("\n")
    return int(code), json.loads(body) if body else None


def make_cert(tmp, name="gateway"):
    """A self-signed certificate for 127.0.0.1 and localhost and its key
    (openssl), as (certificate, key) paths."""
    cert, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=tapbus test",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return cert, key


def serve_fails(args, env=None):
    """(exit code, stderr) of a serve that must not start."""
    r = subprocess.run([os.path.join(BIN, "tapbusctl"), "serve", "--http",
                        "127.0.0.1:%d" % free_port()] + list(args), capture_output=True,
                       text=True, timeout=30, env=env)
    return r.returncode, r.stderr


class Gateway:
    def __init__(self, control, logdir, creds="ops:pa:ss w0rd", host="127.0.0.1", options=(),
                 cacert=None):
        """cacert: the gateway serves HTTPS (options carry --tls-cert and
        --tls-key, or a --config with them) with this certificate."""
        self.port = free_port()
        self.base = "%s://%s:%d" % ("https" if cacert else "http", host, self.port)
        self.tls = ["--cacert", cacert] if cacert else []
        cred = os.path.join(logdir, "cred")
        write_private(cred, creds + "\n")
        args = list(options)
        for c in control if isinstance(control, list) else [control]:
            args += ["--collector", c]
        self.proc = Proc("tapbusctl", args + ["serve", "--http", "%s:%d" % (host, self.port),
                                              "--credentials", cred], logdir)
        wait_for(lambda: self._up(), 30, "the gateway to listen")

    def _up(self):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"] + self.tls +
                           [self.base + "/status"], capture_output=True, text=True, timeout=30)
        return r.stdout == "401"


def test_gateway():
    bus = Bus([("01::10:01", "file:" + DEMO), ("web", "file:" + DEMO)])
    gw = Gateway(bus.control, bus.tmp.name)
    ok = "ops:pa:ss w0rd"
    try:
        # Authentication: none, wrong user, wrong password, a prefix of it.
        for user in (None, "ops:wrong", "root:pa:ss w0rd", "ops:pa:ss"):
            code, body = curl(gw.base + "/status", user)
            assert code == 401 and body == {"error": "authentication required"}, (user, code)
        # A name given twice starts once.
        code, body = curl(gw.base + "/start?streamname1=01::10:01&streamname2=web"
                          "&streamname3=01::10:01", ok)
        # "forgotten": the ended streams forgotten to make room (none here).
        assert code == 200 and body == {"started": ["01::10:01", "web"], "warnings": [],
                                        "forgotten": []}, \
            (code, body)
        bus.wait_finished(["01::10:01", "web"])
        code, st = curl(gw.base + "/stats?stream=01::10:01", ok)
        assert code == 200, (code, st)
        assert st["packets"] == 5000 and st["max_packet"]["len"] == 1514 and \
            st["min_packet"]["len"] == 60 and st["last_packet"] is not None, st
        assert st["most_active_tuple"]["src"] == "10.0.18.52" and \
            st["most_active_tuple"]["dport"] == 22, st["most_active_tuple"]
        assert abs(st["avg_pps"] - 500.1) < 0.1, st["avg_pps"]
        code, status = curl(gw.base + "/status", ok)
        assert code == 200 and {s["stream"] for s in status["streams"]} == {"01::10:01", "web"}
        code, probes = curl(gw.base + "/probes", ok)
        assert code == 200 and probes["probes"][0]["id"] == "it-probe", probes
        # Errors are JSON with a status code that says what went wrong.
        for path, want in (("/stats?stream=nope", 404), ("/stats", 400),
                           ("/start?stream=bad%20name", 400), ("/start", 400),
                           ("/nothing", 404), ("/db", 409), ("/stop?stream=web&verbose=1", 400),
                           ("/db?measurement=tapbus_traffic&n=abc", 400),
                           ("/db?measurement=", 400)):
            code, body = curl(gw.base + path, ok)
            assert code == want and "error" in body, (path, code, body)
        code, body = curl(gw.base + "/start?stream=a+b", ok)
        assert code == 400 and "%2B" in body["error"], body
        code, body = curl(gw.base + "/status", ok, method="DELETE")
        assert code == 405, code
        r = subprocess.run(["curl", "-s", "-i", "-u", ok, "-X", "PUT", gw.base + "/status"],
                           capture_output=True, text=True, timeout=30)
        assert "\nAllow: GET, POST" in r.stdout.replace("\r", ""), r.stdout
        # A body is never read: refused, even a small one (it would be ignored
        # and a POST /stop would stop everything); unauthenticated, not read.
        code, body = curl(gw.base + "/stop", ok, method="POST", extra=["-d", "stream=web"])
        assert code == 400 and "body" in body["error"], (code, body)
        big = os.path.join(bus.tmp.name, "big")
        with open(big, "wb") as f:
            f.write(b"x" * (20 << 20))
        code, body = curl(gw.base + "/stop", None, method="POST",
                          extra=["--data-binary", "@" + big])
        assert code == 401, code
        code, body = curl(gw.base + "/stop", ok, method="POST",
                          extra=["--data-binary", "@" + big])
        assert code == 400, code
        # A request cannot write lines of its own into the log.
        curl(gw.base + "/x%0Aforged%20line", ok)
        code, body = curl(gw.base + "/stop?stream=web", ok)
        assert code == 200 and body == {"stopped": ["web"]}, body
        code, body = curl(gw.base + "/stop", ok)
        assert code == 200 and body == {"stopped": ["01::10:01"]}, body
        # The collector gone: 504, not a hang.
        assert bus.collector.stop() == 0
        code, body = curl(gw.base + "/status", ok)
        assert code == 504 and "no reply" in body["error"], (code, body)
        assert gw.proc.stop(signal.SIGTERM) == 0
        log = gw.proc.output()
        assert "GET /status" in log and "\nforged line" not in log, log
    finally:
        if gw.proc.p.poll() is None:
            gw.proc.stop()
        bus.close()


def test_gateway_in_front_of_two_collectors():
    bus = Bus([("01::10:01", "file:" + DEMO), ("web", "file:" + DEMO)])
    second = bus.add_collector()
    gw = Gateway([bus.control, second], bus.tmp.name)
    ok = "ops:pa:ss w0rd"
    try:
        # A name given twice starts once.
        code, body = curl(gw.base + "/start?streamname1=01::10:01&streamname2=web"
                          "&streamname3=01::10:01", ok)
        assert code == 200 and body["started"] == ["01::10:01", "web"], (code, body)
        assert body["collector_of"] == {"01::10:01": bus.control, "web": second}, body
        bus.wait_finished(["01::10:01"])
        bus.wait_finished(["web"], control=second)
        code, status = curl(gw.base + "/status", ok)
        assert code == 200 and [c["endpoint"] for c in status["collectors"]] == \
            [bus.control, second], status
        assert {s["stream"]: s["collector"] for s in status["streams"]} == body["collector_of"]
        for stream in ("01::10:01", "web"):
            code, st = curl(gw.base + "/stats?stream=" + stream, ok)
            assert code == 200 and st["packets"] == 5000 and \
                st["collector"] == body["collector_of"][stream], (code, st)
            assert st["most_active_tuple"]["dport"] == 22, st["most_active_tuple"]
        # Asked again: straight to the collector that answered last time.
        code, st = curl(gw.base + "/stats?stream=web", ok)
        assert code == 200 and st["collector"] == second and st["packets"] == 5000, st
        code, st = curl(gw.base + "/stats?stream=nope", ok)
        assert code == 404, (code, st)
        code, body = curl(gw.base + "/stop", ok)
        assert code == 200 and sorted(body["stopped"]) == ["01::10:01", "web"], body
        # One collector gone: a partial answer that says so.
        assert bus.collector2.stop() == 0
        code, status = curl(gw.base + "/status", ok)
        assert code == 200 and [c["ok"] for c in status["collectors"]] == [True, False], status
        assert "no reply" in status["collectors"][1]["error"], status
    finally:
        if gw.proc.p.poll() is None:
            gw.proc.stop()
        bus.close()


def test_gateway_forget_and_endpoints():
    """/forget takes the names as /stop does; /status carries the bus
    endpoints' states as the collector gives them."""
    with tempfile.TemporaryDirectory() as tmp:
        live = os.path.join(tmp, "live")
        os.mkdir(live)
        shutil.copy(DEMO, live)
        refused = "tcp://127.0.0.1:%d" % free_port()  # nothing listens there
        bus = Bus([("web", "file:" + DEMO), ("live", "dir:" + live)],
                  collector_args=["--probe", refused])
        gw = Gateway(bus.control, bus.tmp.name)
        ok = "ops:pa:ss w0rd"
        try:
            def endpoint_states():
                code, status = curl(gw.base + "/status", ok)
                assert code == 200, (code, status)
                eps = status["collector"]["endpoints"]
                return {e["endpoint"]: e for e in eps}
            eps = wait_for(lambda: endpoint_states()[refused]["state"] == "refused" and
                           endpoint_states()[bus.pub]["state"] == "connected" and
                           endpoint_states(), 30, "the endpoints' states")
            assert eps[refused]["retries"] >= 1 and eps[refused]["since_ts"] > 0, eps
            assert "connection refused" in eps[refused]["detail"], eps

            code, body = curl(gw.base + "/start?streamname1=web&streamname2=live"
                              "&streamname3=typo", ok)
            assert code == 200, (code, body)
            bus.wait_finished(["web"])
            wait_for(lambda: bus.stats("live")["packets"] == 5000, 60, "the directory's packets")
            for path, want in (("/forget", 400), ("/forget?stream=nope", 404),
                               ("/forget?stream=bad%20name", 400),
                               ("/forget?stream=web&verbose=1", 400),
                               ("/forget?stream=web&stream2=live", 409)):
                code, body = curl(gw.base + path, ok)
                assert code == want and "error" in body, (path, code, body)
            assert "stop it first" in body["error"], body
            code, body = curl(gw.base + "/forget?streamname1=web&streamname2=typo", ok)
            assert code == 200 and body == {"forgotten": ["web", "typo"]}, (code, body)
            code, status = curl(gw.base + "/status", ok)
            assert [s["stream"] for s in status["streams"]] == ["live"], status
            code, body = curl(gw.base + "/stop?stream=live", ok)
            assert code == 200, body
            code, body = curl(gw.base + "/forget?stream=live", ok, method="POST")
            assert code == 200 and body == {"forgotten": ["live"]}, (code, body)
        finally:
            if gw.proc.p.poll() is None:
                gw.proc.stop()
            bus.close()


def ipv6_loopback():
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sk:
            sk.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_listen_addresses():
    """[V6ADDR]:PORT serves over IPv6; malformed addresses refuse to start."""
    bus = Bus([("web", "file:" + DEMO)])
    try:
        if ipv6_loopback():
            gw = Gateway(bus.control, bus.tmp.name, host="[::1]")
            try:
                code, body = curl(gw.base + "/status", "ops:pa:ss w0rd")
                assert code == 200 and body["streams"] == [], (code, body)
            finally:
                gw.proc.stop()
        else:
            print("     (no IPv6 loopback here: IPv6 listening not tried)")
        env = dict(os.environ, TAPBUS_HTTP_CREDENTIALS="a:b")
        for bad in (":80x", "127.0.0.1", "127.0.0.1:0", "[::1:8083", "no.such.host.invalid:8083"):
            r = subprocess.run([os.path.join(BIN, "tapbusctl"), "--collector", bus.control,
                                "serve", "--http", bad], capture_output=True, text=True,
                               timeout=30, env=env)
            assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r)
            assert "--http" in r.stderr, (bad, r.stderr)
    finally:
        bus.close()


def test_no_credentials_no_gateway():
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.pop("TAPBUS_HTTP_CREDENTIALS", None)
        long = os.path.join(tmp, "long")
        write_private(long, "ops:" + "p" * 600 + "\n")  # never cut short silently
        missing = os.path.join(tmp, "missing")
        for extra, want in (([], "there is no default"),
                            (["--credentials", missing], "cannot read credentials from " + missing),
                            (["--credentials", long], "longer than 510 characters")):
            code, err = serve_fails(extra, env)
            assert code == 2, (extra, code, err)
            assert len(err.strip().splitlines()) == 1 and want in err, err
        r = subprocess.run([os.path.join(BIN, "tapbusctl"), "serve"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and "--http" in r.stderr, r.stderr


def test_arguments_of_start():
    """Hundreds of arguments get a JSON 400 (libmicrohttpd's default memory
    per connection ran out near 500, and the connection closed without an
    answer); only stream, streamN and streamnameN name streams."""
    with tempfile.TemporaryDirectory() as tmp:
        dead = "tcp://127.0.0.1:%d" % free_port()
        gw = Gateway(dead, tmp, creds="u:p", options=["--timeout", "300", "--retries", "0"])
        try:
            for n in (300, 1000, 2500):
                args = "&".join("stream%d=s%d" % (i, i) for i in range(n))
                code, body = curl(gw.base + "/start?" + args, "u:p")
                assert code == 400 and "too many streams" in body["error"], (n, code, body)
            for bad in ("streamXYZ", "streamname", "stream1x", "streamname1a", "streams",
                        "stream-1"):
                code, body = curl(gw.base + "/start?stream=a&%s=b" % bad, "u:p")
                assert code == 400 and "unknown argument '%s'" % bad in body["error"], \
                    (bad, code, body)
            # The good names reach the (absent) collector: 504, not 400.
            code, body = curl(gw.base + "/start?stream=a&stream2=b&streamname3=c&stream04=d",
                              "u:p")
            assert code == 504 and "no reply" in body["error"], (code, body)
        finally:
            gw.proc.stop()


def test_credentials_file_others_may_read():
    """As ssh with its keys: a credentials file that its group or others may
    read (or write) is refused, naming the file and the fix; 0600 and 0400
    are served. The environment's credentials are no file."""
    with tempfile.TemporaryDirectory() as tmp:
        cred = os.path.join(tmp, "cred")
        write_private(cred, "u:p\n")
        for mode, word in ((0o644, "readable"), (0o640, "readable"), (0o604, "readable"),
                           (0o620, "accessible"), (0o601, "accessible")):
            os.chmod(cred, mode)
            code, err = serve_fails(["--collector", "tcp://127.0.0.1:1", "--credentials", cred])
            assert code == 2, (oct(mode), code, err)
            assert err == "tapbusctl: credentials file %s is %s by others (mode %04o): " \
                          "chmod 600 %s\n" % (cred, word, mode, cred), err
        dead = "tcp://127.0.0.1:%d" % free_port()
        for mode in (0o600, 0o400):
            os.chmod(cred, mode)
            port = free_port()
            gw = Proc("tapbusctl", ["--collector", dead, "--timeout", "300", "--retries", "0",
                                    "serve", "--http", "127.0.0.1:%d" % port,
                                    "--credentials", cred], tmp)
            try:
                base = "http://127.0.0.1:%d" % port
                wait_for(lambda: subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/status"],
                    capture_output=True, text=True, timeout=30).stdout == "401", 30,
                    "the gateway with a credentials file of mode %o" % mode)
                code, body = curl(base + "/status", "u:p")
                assert code == 504 and "no reply" in body["error"], (code, body)
            finally:
                assert gw.stop() == 0, gw.output()
        # $TAPBUS_HTTP_CREDENTIALS is no file: nothing to check.
        port = free_port()
        env = dict(os.environ, TAPBUS_HTTP_CREDENTIALS="e:nv")
        p = subprocess.Popen([os.path.join(BIN, "tapbusctl"), "--collector", dead, "serve",
                              "--http", "127.0.0.1:%d" % port], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = "http://127.0.0.1:%d" % port
            wait_for(lambda: p.poll() is not None or subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "e:nv",
                 base + "/nothing"], capture_output=True, text=True, timeout=30).stdout == "404",
                30, "the gateway with credentials from the environment")
            assert p.poll() is None, p.returncode
        finally:
            p.terminate()
            p.wait(20)


def tls_client(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def closed(s):
    """Whether the peer ends the connection (within a minute): an empty read
    or a reset, not an answer."""
    s.settimeout(60)
    try:
        data = s.recv(100)
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return True
    except socket.timeout:
        return False
    return data == b""


def test_https():
    """--tls-cert and --tls-key (here from a configuration file): curl gets
    /start, /stats and /status over HTTPS with its --cacert, authentication
    as over HTTP; a plain HTTP request on the port gets no HTTP answer and
    the gateway goes on serving; a connection of an address that holds 8
    already is refused before the handshake; connections that do not finish
    the handshake, or send no request after it, are closed by the header
    deadline."""
    bus = Bus([("web", "file:" + DEMO)])
    tmp = bus.tmp.name
    cert, key = make_cert(tmp)
    conf = os.path.join(tmp, "gateway.conf")
    with open(conf, "w") as f:
        f.write("tls-cert = %s\ntls-key = %s\n" % (cert, key))
    gw = Gateway(bus.control, tmp, cacert=cert, options=["--config", conf])
    ok = "ops:pa:ss w0rd"
    held = []
    try:
        assert gw.base.startswith("https://127.0.0.1:"), gw.base
        for user in (None, "ops:wrong"):
            code, body = curl(gw.base + "/status", user, extra=gw.tls)
            assert code == 401 and body == {"error": "authentication required"}, (user, code)
        code, body = curl(gw.base + "/start?stream=web", ok, extra=gw.tls)
        assert code == 200 and body["started"] == ["web"], (code, body)
        bus.wait_finished(["web"])
        code, st = curl(gw.base + "/stats?stream=web", ok, extra=gw.tls)
        assert code == 200 and st["packets"] == 5000, (code, st)
        # Without the certificate to trust, curl refuses the server: TLS it is.
        r = subprocess.run(["curl", "-s", "-S", "-u", ok, gw.base + "/status"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 60, (r.returncode, r.stderr)  # peer certificate not trusted

        # Plain HTTP on the TLS port: no HTTP answer, from curl or by hand.
        plain = "http://127.0.0.1:%d/status" % gw.port
        r = subprocess.run(["curl", "-s", "-S", "-u", ok, "-w", "%{http_code}", plain],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "200" not in r.stdout, (r.returncode, r.stdout, r.stderr)
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
        try:
            s.sendall(b"GET /status HTTP/1.0\r\nAuthorization: Basic b3BzOnBhOnNzIHcwcmQ=\r\n"
                      b"\r\n")
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            assert b"HTTP/" not in data and b"streams" not in data, data
        finally:
            s.close()
        code, body = curl(gw.base + "/status", ok, extra=gw.tls)
        assert code == 200 and [x["stream"] for x in body["streams"]] == ["web"], (code, body)

        # The per-address limit: 8 connections of 127.0.0.9 that never
        # begin the handshake, and a 9th that does is refused ...
        ctx = tls_client(cert)
        for _ in range(8):
            c = socket.socket()
            c.bind(("127.0.0.9", 0))
            c.connect(("127.0.0.1", gw.port))
            held.append(c)
        ninth = socket.socket()
        ninth.bind(("127.0.0.9", 0))
        ninth.settimeout(60)
        ninth.connect(("127.0.0.1", gw.port))
        held.append(ninth)
        try:
            ctx.wrap_socket(ninth, server_hostname="127.0.0.1")
            refused = False
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            refused = True
        assert refused, "a 9th connection from one address got a TLS handshake"
        # ... while another address is served, and one that completes the
        # handshake but sends no request is closed by the header deadline.
        other = socket.socket()
        other.bind(("127.0.0.10", 0))
        other.settimeout(60)
        other.connect(("127.0.0.1", gw.port))
        idle = ctx.wrap_socket(other, server_hostname="127.0.0.1")
        held.append(idle)
        code, body = curl(gw.base + "/status", ok, extra=gw.tls)
        assert code == 200, code
        assert closed(idle), "a TLS connection that sent no request was not closed"
        for c in held[:8]:
            assert closed(c), "a connection that never began its handshake was not closed"
        assert "took over 10 s to send its request's headers" in gw.proc.output(), \
            gw.proc.output()
        code, body = curl(gw.base + "/status", ok, extra=gw.tls)
        assert code == 200, code
        assert gw.proc.stop(signal.SIGTERM) == 0
        assert "serving https://127.0.0.1:%d/" % gw.port in gw.proc.output(), gw.proc.output()
    finally:
        for c in held:
            c.close()
        if gw.proc.p.poll() is None:
            gw.proc.stop()
        bus.close()


def test_tls_files_refused_at_start():
    """Both TLS options or neither; a certificate or key file that is
    missing, not PEM, or not the pair is refused at start (exit 2) in one
    line naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        _, other_key = make_cert(tmp, "other")
        cred = os.path.join(tmp, "cred")
        write_private(cred, "u:p\n")
        junk = os.path.join(tmp, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        der = os.path.join(tmp, "gateway.der")
        r = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER", "-out", der],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        missing = os.path.join(tmp, "missing.pem")
        for args, want in (
                (["--tls-cert", cert], "--tls-cert needs --tls-key"),
                (["--tls-key", key], "--tls-key needs --tls-cert"),
                (["--tls-cert", missing, "--tls-key", key],
                 "cannot read the TLS certificate %s: No such file" % missing),
                (["--tls-cert", cert, "--tls-key", missing],
                 "cannot read the TLS key %s: No such file" % missing),
                (["--tls-cert", junk, "--tls-key", key],
                 "the TLS certificate %s is not a PEM certificate" % junk),
                (["--tls-cert", der, "--tls-key", key], "the TLS certificate %s is not PEM" % der),
                (["--tls-cert", key, "--tls-key", key],
                 "the TLS certificate %s is not a PEM certificate" % key),
                (["--tls-cert", cert, "--tls-key", cert],
                 "the TLS key %s is not a PEM private key" % cert),
                (["--tls-cert", cert, "--tls-key", tmp],
                 "the TLS key %s is not a regular file" % tmp),
                (["--tls-cert", cert, "--tls-key", other_key],
                 "the TLS key %s is not the key of the certificate %s" % (other_key, cert))):
            code, err = serve_fails(["--credentials", cred] + args)
            assert code == 2, (args, code, err)
            assert len(err.strip().splitlines()) == 1 and want in err, (args, err)
        # From the environment as from the command line.
        code, err = serve_fails(["--credentials", cred],
                                env=dict(os.environ, TAPBUSCTL_TLS_KEY=key))
        assert code == 2 and "--tls-key needs --tls-cert" in err, err
        # Options of serve only.
        r = subprocess.run([os.path.join(BIN, "tapbusctl"), "status", "--tls-cert", cert],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "are options of serve" in r.stderr, r.stderr


def main():
    failed = 0
    for t in (test_gateway, test_gateway_in_front_of_two_collectors,
              test_gateway_forget_and_endpoints, test_listen_addresses,
              test_no_credentials_no_gateway, test_arguments_of_start,
              test_credentials_file_others_may_read, test_https,
              test_tls_files_refused_at_start):
        try:
            t()
            print("ok   %s" % t.__name__, flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
