#!/usr/bin/env python3
"""`cmake --install` of this build into a temporary prefix: the programs, the
systemd units, the documentation and the example configurations land where
docs/deploying.md says; the units name the installed programs and pass
`systemd-analyze verify` (where that command exists; skipped, saying so,
elsewhere); every example configuration is accepted by its program
(`--config FILE --print-config` exits 0) and a broken copy is refused. A
staged install (DESTDIR) writes the final prefix, not the stage, into the
units."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(h.BIN)) if h.BIN else ""
PROGRAMS = ("tapbus-probe", "tapbus-collector", "tapbusctl")
UNITS = ("tapbus-collector.service", "tapbus-probe@.service", "tapbus-gateway.service")
DOCS = ("README.md", "control-protocol.md", "database.md", "dataflow.md", "deploying.md",
        "operating.md", "performance.md", "restarts.md", "schema.md", "security.md",
        "sources.md", "wire-format.md")
# example -> the program that reads it
EXAMPLES = {"collector.conf": "tapbus-collector", "probe-edge1.conf": "tapbus-probe",
            "gateway.conf": "tapbusctl"}


def install(prefix, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("cmake --install failed (%d):\n%s%s"
                             % (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r.stdout


def unit_settings(path):
    """{key: [values]} of a unit file."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")):
                key, _, value = line.partition("=")
                out.setdefault(key, []).append(value)
    return out


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tapbus-install-")
        cls.prefix = os.path.join(cls.tmp, "usr")
        cls.log = install(cls.prefix)
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")
        cls.docdir = os.path.join(cls.prefix, "share", "doc", "tapbus")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_files_land_where_documented(self):
        for prog in PROGRAMS:
            path = os.path.join(self.prefix, "bin", prog)
            self.assertTrue(os.access(path, os.X_OK), path)
        for unit in UNITS:
            path = os.path.join(self.unitdir, unit)
            self.assertTrue(os.path.isfile(path), path)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o644, path)
        for doc in DOCS:
            self.assertTrue(os.path.isfile(os.path.join(self.docdir, doc)), doc)
        for example in list(EXAMPLES) + ["collector.env"]:
            self.assertTrue(os.path.isfile(os.path.join(self.docdir, "examples", example)),
                            example)
        # Nothing is installed outside the prefix.
        for line in self.log.splitlines():
            m = re.match(r"-- (?:Installing|Up-to-date): (.*)", line)
            if m:
                self.assertTrue(m.group(1).startswith(self.prefix + os.sep), line)

    def test_units_run_the_installed_programs(self):
        want = {"tapbus-collector.service": ("tapbus-collector", "/etc/tapbus/collector.conf"),
                "tapbus-probe@.service": ("tapbus-probe", "/etc/tapbus/probe-%i.conf"),
                "tapbus-gateway.service": ("tapbusctl", "/etc/tapbus/gateway.conf")}
        for unit, (prog, conf) in want.items():
            s = unit_settings(os.path.join(self.unitdir, unit))
            self.assertEqual(len(s["ExecStart"]), 1, unit)
            argv = s["ExecStart"][0].split()
            self.assertEqual(argv[0], os.path.join(self.prefix, "bin", prog), unit)
            self.assertEqual(argv[1:3], ["--config", conf], unit)
            self.assertNotIn("@", s["ExecStart"][0].replace("probe@", ""), unit)  # all filled in
            self.assertEqual(s["Documentation"],
                             ["file://" + os.path.join(self.docdir, "deploying.md")], unit)
            # Not root, no privilege gained.
            self.assertEqual(s.get("User"), ["tapbus"], unit)
            self.assertEqual(s.get("DynamicUser"), ["yes"], unit)
            self.assertEqual(s.get("NoNewPrivileges"), ["yes"], unit)
            self.assertEqual(s.get("ProtectSystem"), ["strict"], unit)
        probe = unit_settings(os.path.join(self.unitdir, "tapbus-probe@.service"))
        for key in ("AmbientCapabilities", "CapabilityBoundingSet"):
            self.assertEqual(probe[key], ["CAP_NET_RAW CAP_NET_ADMIN"], key)
        self.assertEqual(probe["StateDirectory"], ["tapbus/probe-%i"])
        for unit in ("tapbus-collector.service", "tapbus-gateway.service"):
            s = unit_settings(os.path.join(self.unitdir, unit))
            self.assertEqual(s["CapabilityBoundingSet"], [""], unit)
            self.assertEqual(s["AmbientCapabilities"], [""], unit)
        collector = unit_settings(os.path.join(self.unitdir, "tapbus-collector.service"))
        self.assertEqual(collector["StateDirectory"], ["tapbus/collector"])
        # The example configurations keep what the units' state directories hold.
        with open(os.path.join(self.docdir, "examples", "collector.conf")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^state-dir = /var/lib/tapbus/collector$")
        self.assertRegex(text, r"(?m)^spool-dir = /var/lib/tapbus/collector/spool$")
        with open(os.path.join(self.docdir, "examples", "probe-edge1.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^checkpoint-dir = /var/lib/tapbus/probe-edge1$")

    def test_gateway_takes_its_systemd_credential(self):
        """The gateway unit's credentials come by LoadCredential=: systemd
        writes its copy mode 0400, root's, and lets the service's user read
        it with an ACL entry (so the mode reads 0440). The gateway, which
        refuses a credentials file others may read, takes that one, run as
        the service's user; an ACL entry for another user is refused."""
        if os.geteuid() != 0:
            self.skipTest("needs root to give a file to root and run as another user")
        if shutil.which("setpriv") is None:
            self.skipTest("needs setpriv")
        import struct
        service_uid = 61234  # in systemd's range for dynamic users

        def acl(*users):
            # The kernel's form of an access ACL: user::r--, user:UID:r--
            # for each, group::---, mask::r--, other::---.
            none = 0xFFFFFFFF
            entries = [(0x01, 4, none)] + [(0x02, 4, u) for u in users] + \
                [(0x04, 0, none), (0x10, 4, none), (0x20, 0, none)]
            return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
        work = tempfile.mkdtemp(prefix="cred-", dir=self.tmp)
        os.chmod(work, 0o755)
        cred = os.path.join(work, "http-credentials")
        h.write_private(cred, "ops:secret\n")
        os.chmod(cred, 0o400)
        try:
            os.setxattr(cred, "system.posix_acl_access", acl(service_uid))
        except OSError as e:
            self.skipTest("no ACLs on this file system: %s" % e)
        self.assertEqual(os.stat(cred).st_mode & 0o777, 0o440)
        ctl = os.path.join(self.prefix, "bin", "tapbusctl")
        for d in (self.tmp, self.prefix, os.path.dirname(ctl)):
            os.chmod(d, os.stat(d).st_mode | 0o755)
        user = ["setpriv", "--reuid=%d" % service_uid, "--regid=%d" % service_uid,
                "--clear-groups"]
        # Port 0 is refused after the credentials are read: exit 2 either way,
        # the message tells which.
        cmd = user + [ctl, "serve", "--http", "127.0.0.1:0", "--credentials", cred]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--http needs ADDR:PORT", r.stderr)
        os.setxattr(cred, "system.posix_acl_access", acl(service_uid, service_uid + 1))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("credentials file %s is readable by others (mode 0440 and an ACL): "
                      "setfacl -b %s && chmod 600 %s" % (cred, cred, cred), r.stderr)

    def verify(self, paths):
        """(exit code, lines systemd-analyze verify wrote about tapbus units)."""
        r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + paths,
                           capture_output=True, text=True, timeout=120)
        about = [ln for ln in (r.stdout + r.stderr).splitlines() if "tapbus" in ln]
        return r.returncode, about

    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        work = os.path.join(self.tmp, "verify")
        os.makedirs(work, exist_ok=True)
        # A template is verified as an instance of itself.
        instance = os.path.join(work, "tapbus-probe@edge1.service")
        shutil.copy(os.path.join(self.unitdir, "tapbus-probe@.service"), instance)
        paths = [os.path.join(self.unitdir, u) for u in UNITS if "@" not in u] + [instance]
        code, about = self.verify(paths)
        self.assertEqual((code, about), (0, []), "systemd-analyze verify: %s" % about)

        # It does see a bad unit: an unknown key is reported (exit code 0,
        # so the lines are what counts), a missing program fails.
        bad = os.path.join(work, "tapbus-bad.service")
        with open(os.path.join(self.unitdir, "tapbus-collector.service")) as f:
            text = f.read()
        with open(bad, "w") as f:
            f.write(text.replace("[Service]\n", "[Service]\nNoSuchSetting=1\n"))
        code, about = self.verify([bad])
        self.assertTrue(any("NoSuchSetting" in ln for ln in about), about)
        with open(bad, "w") as f:
            f.write(text.replace(os.path.join(self.prefix, "bin"), os.path.join(work, "nothing")))
        code, about = self.verify([bad])
        self.assertNotEqual(code, 0, about)

    def test_examples_are_accepted(self):
        for example, prog in EXAMPLES.items():
            path = os.path.join(self.docdir, "examples", example)
            cmd = [os.path.join(self.prefix, "bin", prog), "--config", path, "--print-config"]
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("TAPBUS_", "TAPBUSCTL_"))}
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
            self.assertEqual(r.returncode, 0, "%s: %s" % (example, r.stderr))
            # Every option the file sets is in effect, named with its line.
            with open(path) as f:
                lines = f.read().splitlines()
            set_here = [(n, ln.split("=")[0].split("#")[0].strip())
                        for n, ln in enumerate(lines, 1)
                        if ln.strip() and not ln.lstrip().startswith("#")]
            self.assertTrue(set_here, example)
            for n, key in set_here:
                self.assertRegex(r.stdout, r"(?m)^%s\b.*# %s:%d$" % (re.escape(key),
                                                                    re.escape(path), n))

            # A broken copy is refused with its file and line.
            broken = os.path.join(self.tmp, "broken-" + example)
            with open(broken, "w") as f:
                f.write("\n".join(lines + ["no-such-option = 1"]) + "\n")
            r = subprocess.run(cmd[:2] + [broken, "--print-config"], capture_output=True,
                               text=True, timeout=30, env=env)
            self.assertNotEqual(r.returncode, 0, example)
            self.assertIn("broken-%s:%d" % (example, len(lines) + 1), r.stderr)

    def test_staged_install_names_the_final_prefix(self):
        stage = os.path.join(self.tmp, "stage")
        install("/opt/tapbus", destdir=stage)
        unit = os.path.join(stage, "opt", "tapbus", "lib", "systemd", "system",
                            "tapbus-collector.service")
        self.assertTrue(os.path.isfile(os.path.join(stage, "opt", "tapbus", "bin",
                                                    "tapbus-collector")))
        s = unit_settings(unit)
        self.assertEqual(s["ExecStart"][0].split()[0], "/opt/tapbus/bin/tapbus-collector")
        self.assertEqual(s["Documentation"], ["file:///opt/tapbus/share/doc/tapbus/deploying.md"])


if __name__ == "__main__":
    if not BUILD or not os.path.isfile(os.path.join(BUILD, "CMakeCache.txt")):
        sys.exit("set TAPBUS_BIN to the bin directory of a build tree")
    unittest.main(verbosity=2)
