#!/usr/bin/env python3
"""The container deployment (compose/) without a Docker engine:

- docker-compose (Debian package) validates compose/docker-compose.yml, and
  the stack it describes is wired as documented: who talks to whom on which
  network, capabilities, secrets, volumes;
- Grafana's provisioning files and the dashboard link up (data source uid,
  database, paths inside the container);
- the runtime package list covers every shared library the built programs
  link against (ldd, then dpkg -S for the owning package);
- the Dockerfile installs the package lists (no second list by hand) and
  deps.sh reads the same lists;
- as root: the probe, given the file capabilities the Dockerfile sets and run
  as an unprivileged user with only the capabilities compose grants, captures;
  without those in its bounding set the kernel refuses to run it."""

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
COMPOSE_DIR = os.path.join(SRC, "compose")
COMPOSE = os.path.join(COMPOSE_DIR, "docker-compose.yml")
DOCKERFILE = os.path.join(COMPOSE_DIR, "Dockerfile")
BUILD_LIST = os.path.join(COMPOSE_DIR, "packages-build.txt")
RUNTIME_LIST = os.path.join(COMPOSE_DIR, "packages-runtime.txt")
GRAFANA = os.path.join(COMPOSE_DIR, "grafana")

# The packages every Debian base image has (apt itself depends on them),
# whose libraries the runtime list need not name: the C library libc6
# (libc.so.6, libm.so.6, the dynamic loader ...) and the GCC runtime
# libgcc-s1 (libgcc_s.so.1, which a sanitizer build links directly).
# Nothing else is assumed.
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1"}
# The image's user (Dockerfile) and what compose grants the probes.
IMAGE_UID = 10001
PROBE_CAPS = {"NET_RAW", "NET_ADMIN"}


def read_list(path):
    """Package names of a list file: one a line, '#' starts a comment."""
    with open(path, encoding="utf-8") as f:
        return [w for line in f for w in line.split("#")[0].split()]


def compose_env(**extra):
    """The environment for docker-compose: none of the variables the compose
    file reads from this machine's environment, unless given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TAPBUS_", "COMPOSE_", "DOCKER_"))}
    env.update(extra)
    return env


def docker_compose(*args, file=COMPOSE, **env):
    exe = shutil.which("docker-compose")
    if exe is None:
        raise AssertionError("docker-compose is not installed (Debian package docker-compose; "
                             "deps.sh installs it)")
    return subprocess.run([exe, "-f", file] + list(args), capture_output=True, text=True,
                          timeout=120, cwd=SRC, env=compose_env(**env))


def rendered(**env):
    """The compose file as docker-compose resolves it (anchors merged,
    variables replaced, relative paths made absolute)."""
    r = docker_compose("config", **env)
    if r.returncode != 0:
        raise AssertionError("docker-compose config failed (%d): %s" % (r.returncode, r.stderr))
    return yaml.safe_load(r.stdout)


def option(command, name):
    """The values of a repeatable option in a command list."""
    return [command[i + 1] for i, a in enumerate(command[:-1]) if a == name]


def mounts(service):
    """{target: (source, mode)} of a rendered service's volumes."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = (v.get("source"), "ro" if v.get("read_only") else "rw")
        else:
            parts = v.split(":")
            out[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "rw")
    return out


def ports(service):
    """[(host address, host port, container port)] a rendered service publishes."""
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.append((p.get("host_ip", "0.0.0.0"), int(p["published"]), int(p["target"])))
        else:
            parts = p.split("/")[0].split(":")
            parts = ["0.0.0.0"] * (3 - len(parts)) + parts
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def under(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


class ComposeFile(unittest.TestCase):
    def test_config_is_valid(self):
        r = docker_compose("config", "-q")
        self.assertEqual(r.returncode, 0, r.stderr)
        # A warning here is a variable without a default, or a deprecated key.
        self.assertEqual(r.stderr.strip(), "", r.stderr)

    def test_broken_file_is_refused(self):
        """docker-compose config really validates: a copy with a typo in a
        key is refused."""
        with open(COMPOSE, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("\n    command:", text)
        with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=COMPOSE_DIR,
                                         prefix=".broken-") as bad:
            bad.write(text.replace("\n    command:", "\n    comand:", 1))
            bad.flush()
            r = docker_compose("config", "-q", file=bad.name)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("comand", r.stderr)

    def test_stack(self):
        cfg = rendered()
        sv = cfg["services"]
        self.assertEqual(set(sv), {"influxdb", "grafana", "collector", "gateway", "start-streams",
                                   "probe-replay", "probe-live", "traffic"})
        self.assertEqual(sv["influxdb"]["image"].split(":")[1].split(".")[:2], ["1", "8"])
        tapbus = [n for n, s in sv.items() if s.get("image", "").startswith("tapbus:")]
        self.assertEqual(set(tapbus), set(sv) - {"influxdb", "grafana"})
        built = [n for n in tapbus if "build" in sv[n]]
        self.assertEqual(len(built), 1, "one service builds the image: %s" % built)
        self.assertEqual(sv[built[0]]["build"]["context"], SRC)
        self.assertEqual(os.path.join(SRC, sv[built[0]]["build"]["dockerfile"]), DOCKERFILE)

        # Capabilities: all dropped; the probes get exactly the two capture
        # capabilities; nobody runs as another user than the image's.
        for n in tapbus:
            s = sv[n]
            self.assertEqual(s.get("cap_drop"), ["ALL"], n)
            self.assertNotIn("user", s, n)
            self.assertNotIn("privileged", s, n)
            probe = s["command"][0] == "tapbus-probe"
            self.assertEqual(set(s.get("cap_add", [])), PROBE_CAPS if probe else set(), n)
            # File capabilities do nothing under no-new-privileges.
            self.assertEqual("no-new-privileges:true" in s.get("security_opt", []), not probe, n)

        # Two probes, each on a network of its own, the collector on both.
        probes = {n: sv[n] for n in tapbus if sv[n]["command"][0] == "tapbus-probe"}
        self.assertEqual(set(probes), {"probe-replay", "probe-live"})
        nets = {n: set(sv[n]["networks"]) for n in sv}
        self.assertEqual(nets["probe-replay"] & nets["probe-live"], set())
        coll = sv["collector"]["command"]
        self.assertEqual(coll[0], "tapbus-collector")
        self.assertEqual(sorted(option(coll, "--probe")),
                         sorted("tcp://%s:5556" % n for n in probes))
        for n, s in probes.items():
            self.assertEqual(option(s["command"], "--publish"), ["tcp://0.0.0.0:5556"], n)
            self.assertTrue(nets[n] & nets["collector"], n)
            self.assertNotIn("ports", s, n)

        # The replaying probe: a directory source on a read-only mount (the
        # image's demo capture on a named volume), its checkpoints on a volume.
        replay = sv["probe-replay"]
        src = [v for v in option(replay["command"], "--source") if "=dir:" in v]
        self.assertEqual(len(src), 1, replay["command"])
        capdir = src[0].split("=dir:", 1)[1]
        m = mounts(replay)
        self.assertEqual(m[capdir], ("captures", "ro"))
        self.assertIn("captures", cfg["volumes"])
        ckpt = option(replay["command"], "--checkpoint-dir")[0]
        self.assertTrue(any(under(ckpt, t) and s in cfg["volumes"] for t, (s, mode) in m.items()
                            if mode == "rw"), m)
        # ... or the user's own directory.
        own = rendered(TAPBUS_CAPTURES="/srv/pcaps")["services"]["probe-replay"]
        self.assertEqual(mounts(own)[capdir], ("/srv/pcaps", "ro"))

        # The live probe captures its only interface; the traffic source
        # shares its network and talks to it; the bus is left out.
        live = sv["probe-live"]
        self.assertEqual(len(nets["probe-live"]), 1)
        self.assertEqual(option(live["command"], "--source"), ["live=iface:eth0"])
        self.assertIn("5556", " ".join(option(live["command"], "--filter")))
        self.assertEqual(nets["traffic"], nets["probe-live"])
        self.assertIn("/dev/udp/probe-live/", " ".join(sv["traffic"]["command"]))

        # The collector writes to the InfluxDB service, spools on a volume.
        url = option(coll, "--influx-url")
        self.assertEqual(url, ["http://influxdb:8086"])
        self.assertTrue(nets["collector"] & nets["influxdb"])
        # Its spool and its state directory are on a volume.
        for name in ("--spool-dir", "--state-dir"):
            path = option(coll, name)
            self.assertEqual(len(path), 1, name)
            self.assertTrue(any(under(path[0], t) and s in cfg["volumes"] and mode == "rw"
                                for t, (s, mode) in mounts(sv["collector"]).items()), name)

        # The gateway: on 8083, credentials only from a secret file.
        gw = sv["gateway"]["command"]
        self.assertEqual(gw[:1] + gw[gw.index("serve"):gw.index("serve") + 3],
                         ["tapbusctl", "serve", "--http", "0.0.0.0:8083"])
        self.assertEqual(option(gw, "--collector"), ["tcp://collector:5557"])
        self.assertEqual(ports(sv["gateway"]), [("127.0.0.1", 8083, 8083)])
        self.assertEqual(ports(sv["grafana"]), [("127.0.0.1", 3000, 3000)])
        for n in set(sv) - {"gateway", "grafana"}:
            self.assertEqual(ports(sv[n]), [], "%s is reachable from outside" % n)
        secret = [s["source"] for s in sv["gateway"]["secrets"]]
        self.assertEqual(option(gw, "--credentials"), ["/run/secrets/%s" % secret[0]])
        self.assertNotIn("environment", sv["gateway"])
        secret_file = cfg["secrets"][secret[0]]["file"]
        self.assertTrue(under(secret_file, os.path.join(COMPOSE_DIR, "secrets")), secret_file)
        tracked = subprocess.run(["git", "-C", SRC, "ls-files", "compose/secrets"],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(tracked.stdout, "", "a secret is in the repository")
        # start-streams starts the streams the probes offer.
        offered = [v.split("=")[0] for s in probes.values()
                   for v in option(s["command"], "--source")]
        start = sv["start-streams"]["command"]
        self.assertEqual(sorted(start[start.index("start") + 1:]), sorted(offered))

    def test_gateway_reads_its_secret_as_the_image_user(self):
        """A Compose secret keeps its host file's owner and mode, and the
        gateway refuses a credentials file its group or others may read: the
        set-up the compose file and docs/deploying.md give (owner the image's
        uid, mode 0600) is served by tapbusctl running as that uid; the old
        one (mode 0644) is refused with the fix, and a root-owned 0600 file
        cannot be read."""
        with open(COMPOSE, encoding="utf-8") as f:
            header = f.read()
        with open(os.path.join(SRC, "docs", "deploying.md"), encoding="utf-8") as f:
            docs = f.read()
        chown = "sudo chown %d:%d compose/secrets/http-credentials" % (IMAGE_UID, IMAGE_UID)
        self.assertIn(chown, header)
        self.assertIn(chown, docs)
        self.assertNotIn("chmod 0644 compose/secrets/*", header + docs)
        if os.geteuid() != 0:
            self.skipTest("needs root to give the secret to the image's uid and run as it")
        if shutil.which("setpriv") is None:
            self.skipTest("needs setpriv")
        tmp = tempfile.TemporaryDirectory(prefix="tapbus-secret-")
        self.addCleanup(tmp.cleanup)
        os.chmod(tmp.name, 0o755)
        ctl = os.path.join(tmp.name, "tapbusctl")
        shutil.copy(os.path.join(h.BIN, "tapbusctl"), ctl)
        os.chmod(ctl, 0o755)
        secrets = os.path.join(tmp.name, "secrets")  # /run/secrets in the container
        os.mkdir(secrets, 0o755)
        cred = os.path.join(secrets, "http-credentials")
        h.write_private(cred, "ops:secret\n")
        user = ["setpriv", "--reuid=%d" % IMAGE_UID, "--regid=%d" % IMAGE_UID, "--clear-groups"]

        def serve(port):
            return user + [ctl, "--collector", "tcp://127.0.0.1:1", "serve", "--http",
                           "127.0.0.1:%d" % port, "--credentials", cred]
        # Owned by root, mode 0600: the gateway's user cannot read it.
        r = subprocess.run(serve(h.free_port()), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot read credentials from " + cred, r.stderr)
        # The old instructions: readable by everybody, refused.
        os.chown(cred, IMAGE_UID, IMAGE_UID)
        os.chmod(cred, 0o644)
        r = subprocess.run(serve(h.free_port()), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("is readable by others (mode 0644): chmod 600 " + cred, r.stderr)
        # As documented: served.
        os.chmod(cred, 0o600)
        port = h.free_port()
        p = subprocess.Popen(serve(port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            def answer():
                if p.poll() is not None:
                    return "exited"
                return subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                       "-u", "ops:secret",
                                       "http://127.0.0.1:%d/nothing" % port],
                                      capture_output=True, text=True, timeout=30).stdout
            h.wait_for(lambda: answer() in ("404", "exited"), 30, "the gateway")
            self.assertEqual(answer(), "404")
        finally:
            p.terminate()
            _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)

    def test_grafana_links_up(self):
        cfg = rendered()
        g = cfg["services"]["grafana"]
        m = mounts(g)
        prov_target = [t for t, (s, _) in m.items()
                       if s == os.path.join(GRAFANA, "provisioning")]
        self.assertEqual(prov_target, ["/etc/grafana/provisioning"])
        dash_target = [t for t, (s, _) in m.items() if s == os.path.join(GRAFANA, "dashboards")]
        self.assertEqual(len(dash_target), 1, m)

        with open(os.path.join(GRAFANA, "provisioning", "datasources", "tapbus.yml")) as f:
            ds = yaml.safe_load(f)["datasources"]
        self.assertEqual(len(ds), 1, ds)
        ds = ds[0]
        self.assertEqual(ds["type"], "influxdb")
        # The data source is the InfluxDB service, on the database the
        # collector writes to.
        host, port = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", ds["url"]).groups()
        self.assertIn(host, cfg["services"])
        self.assertEqual(cfg["services"][host]["image"].split(":")[0], "influxdb")
        self.assertEqual(port, "8086")
        self.assertTrue(set(g["networks"]) & set(cfg["services"][host]["networks"]))
        coll = cfg["services"]["collector"]["command"]
        self.assertEqual(ds["jsonData"]["dbName"], option(coll, "--influx-db")[0])
        self.assertIn(ds["url"], option(coll, "--influx-url"))

        with open(os.path.join(GRAFANA, "provisioning", "dashboards", "tapbus.yml")) as f:
            providers = yaml.safe_load(f)["providers"]
        self.assertEqual([p["options"]["path"] for p in providers], dash_target)
        home = g["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        self.assertEqual(os.path.dirname(home), dash_target[0])
        self.assertTrue(os.path.isfile(os.path.join(GRAFANA, "dashboards",
                                                    os.path.basename(home))), home)
        pw = g["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"]
        self.assertEqual(pw, "/run/secrets/%s" % g["secrets"][0]["source"])

        import json
        with open(home.replace(dash_target[0], os.path.join(GRAFANA, "dashboards"))) as f:
            dash = json.load(f)
        refs = []

        def walk(node, where):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "datasource":
                        refs.append((where, v))
                    else:
                        walk(v, "%s/%s" % (where, k))
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, "%s[%d]" % (where, i))
        walk(dash, "")
        self.assertGreater(len(refs), 10)
        for where, ref in refs:
            self.assertEqual(ref, {"type": "influxdb", "uid": ds["uid"]}, where)

        # The panels the deployment promises, and the stream variable in each.
        panels = dash["panels"]
        self.assertEqual(len({p["id"] for p in panels}), len(panels))
        self.assertEqual([v["name"] for v in dash["templating"]["list"]], ["stream"])
        queries = [(p, t["query"]) for p in panels for t in p["targets"]]
        for p, q in queries:
            self.assertIn('"stream" =~ /^$stream$/', q, p["title"])
            self.assertIn("$timeFilter", q, p["title"])

        def has(kind, measurement, group, unit=None):
            return any(p["type"] == kind and '"%s"' % measurement in q and
                       re.search(r"GROUP BY .*\"%s\"" % group, q) and
                       (unit is None or p["fieldConfig"]["defaults"].get("unit") == unit)
                       for p, q in queries)
        self.assertTrue(has("timeseries", "tapbus_traffic", "stream", "pps"))
        self.assertTrue(has("timeseries", "tapbus_traffic", "stream", "bps"))
        self.assertTrue(has("piechart", "tapbus_traffic", "class"))
        self.assertTrue(has("table", "tapbus_top_flow", "rank"))
        self.assertTrue(has("table", "tapbus_top_host", "rank"))
        self.assertTrue(has("table", "tapbus_loss", "probe"))
        self.assertTrue(has("table", "tapbus_interval", "stream"))
        self.assertTrue(has("table", "tapbus_stream", "stream"))


class Image(unittest.TestCase):
    def stages(self):
        """[(FROM line, [instructions])] of the Dockerfile, continuation
        lines joined, comments left out."""
        with open(DOCKERFILE, encoding="utf-8") as f:
            text = re.sub(r"\\\n", " ", "".join(ln for ln in f if not ln.lstrip().startswith("#")))
        stages = []
        for line in text.splitlines():
            line = " ".join(line.split())
            if line.upper().startswith("FROM "):
                stages.append((line, []))
            elif line:
                self.assertTrue(stages, "an instruction before FROM: %s" % line)
                stages[-1][1].append(line)
        return stages

    def check_installs_list(self, instructions, list_path):
        """The stage copies the list file in and apt-get installs what it
        names, and no package by hand."""
        rel = os.path.relpath(list_path, SRC)
        copies = [i.split()[-1] for i in instructions
                  if i.startswith("COPY ") and i.split()[1:-1] == [rel]]
        self.assertEqual(len(copies), 1, "COPY %s into the stage" % rel)
        dest = copies[0]
        installs = [i for i in instructions if i.startswith("RUN ") and "apt-get install" in i]
        self.assertEqual(len(installs), 1, installs)
        args = installs[0].split("apt-get install", 1)[1].split("&&")[0]
        self.assertIn("$(sed 's/#.*//' %s)" % dest, args)
        words = shlex.split(args.replace("$(sed 's/#.*//' %s)" % dest, ""))
        self.assertEqual([w for w in words if not w.startswith("-")], [],
                         "packages named by hand beside %s" % rel)

    def test_stages_install_the_lists(self):
        stages = self.stages()
        self.assertEqual(len(stages), 2, [s for s, _ in stages])
        (build_from, build), (run_from, run) = stages
        self.assertRegex(build_from, r"^FROM debian:12 AS build$")
        self.assertRegex(run_from, r"^FROM debian:12-slim$")
        self.check_installs_list(build, BUILD_LIST)
        self.check_installs_list(run, RUNTIME_LIST)
        self.assertTrue(any(i.startswith("COPY --from=build ") for i in run))
        # Runs as the tapbus user, the probe with its two capabilities.
        self.assertEqual([i for i in run if i.startswith("USER ")][-1:], ["USER tapbus"])
        self.assertTrue(any("useradd" in i and "--uid %d" % IMAGE_UID in i for i in run))
        self.assertIn(self.setcap_caps(), ("cap_net_raw,cap_net_admin+ep",
                                           "cap_net_admin,cap_net_raw+ep"))

    def setcap_caps(self):
        runs = [i for _, ins in self.stages() for i in ins if "setcap" in i]
        self.assertEqual(len(runs), 1, runs)
        m = re.search(r"setcap (\S+) /usr/local/bin/tapbus-probe", runs[0])
        self.assertIsNotNone(m, runs[0])
        return m.group(1)

    def test_lists_are_shared_with_deps_sh(self):
        build, runtime = read_list(BUILD_LIST), read_list(RUNTIME_LIST)
        self.assertIn("libmicrohttpd-dev", build)
        self.assertIn("zlib1g-dev", build)
        self.assertEqual(len(set(build)), len(build))
        self.assertEqual(len(set(runtime)), len(runtime))
        with open(os.path.join(SRC, "deps.sh"), encoding="utf-8") as f:
            deps = f.read()
        for rel in ("compose/packages-build.txt", "compose/packages-runtime.txt"):
            self.assertIn('"$here/%s"' % rel, deps)
        code = "\n".join(ln.split("#")[0] for ln in deps.splitlines())
        doubled = [p for p in build + runtime if re.search(r"(?<![\w.-])%s(?![\w.-])"
                                                           % re.escape(p), code)]
        self.assertEqual(doubled, [], "named in deps.sh as well as in a list")
        # The names are real: deps.sh installed them on this machine.
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"] + build + runtime,
                           capture_output=True, text=True, timeout=60)
        installed = {ln.split()[0] for ln in r.stdout.splitlines() if ln.endswith(" installed")}
        self.assertEqual(sorted(set(build + runtime) - installed), [], r.stderr)

    def test_runtime_list_covers_linked_libraries(self):
        with open("/etc/os-release", encoding="utf-8") as f:
            release = f.read()
        if "VERSION_CODENAME=bookworm" not in release:
            self.skipTest("the programs were built on another release than the image's "
                          "Debian 12: its package names say nothing about the image")
        programs = installed_programs()
        self.assertEqual(sorted(programs), ["tapbus-collector", "tapbus-probe", "tapbusctl"])
        runtime = set(read_list(RUNTIME_LIST))
        closure = depends_closure(runtime | BASE_IMAGE_PACKAGES)
        checked = {}
        libs = {}
        for prog in programs:
            path = os.path.join(h.BIN, prog)
            self.assertTrue(os.path.isfile(path), path)
            libs[prog] = ldd(path)
        owner = owners({lib for found in libs.values() for _, lib in found})
        for prog in programs:
            path = os.path.join(h.BIN, prog)
            for soname, lib in libs[prog]:
                pkg = owner.get(lib)
                self.assertIsNotNone(pkg, "%s: no package owns %s (%s)" % (prog, lib, soname))
                checked[soname] = pkg
                # Every library, also those the libraries need, is installed
                # by apt along with the list (or is the C library).
                self.assertTrue(pkg in closure, "%s needs %s from %s, which the runtime list "
                                            "does not bring" % (prog, soname, pkg))
            # What the program itself links against is named in the list.
            for soname in needed(path):
                pkg = checked[soname]
                self.assertTrue(pkg in runtime | BASE_IMAGE_PACKAGES,
                                "%s links %s (%s): add it to %s"
                                % (prog, soname, pkg, os.path.relpath(RUNTIME_LIST, SRC)))
        # The check looked at what matters (a broken ldd parse finds nothing).
        for soname, pkg in (("libzmq.so.5", "libzmq5"), ("libpcap.so.0.8", "libpcap0.8"),
                            ("libmicrohttpd.so.12", "libmicrohttpd12"),
                            ("libcurl.so.4", "libcurl4"), ("libc.so.6", "libc6")):
            self.assertEqual(checked.get(soname), pkg, soname)

    def test_probe_captures_unprivileged_with_the_image_capabilities(self):
        """The scheme of the image, on this machine: a copy of the probe with
        the Dockerfile's file capabilities, run as the image's uid with the
        bounding set compose leaves it (cap_drop ALL, cap_add NET_RAW,
        NET_ADMIN), captures on the loopback interface; with an empty
        bounding set the kernel refuses to run it."""
        if os.geteuid() != 0:
            self.skipTest("needs root to set file capabilities and change user")
        for tool in ("setcap", "setpriv"):
            if shutil.which(tool) is None:
                self.skipTest("needs %s" % tool)
        caps = self.setcap_caps()
        bounding = ",".join(["-all"] + ["+" + c.lower() for c in sorted(PROBE_CAPS)])
        tmp = tempfile.TemporaryDirectory(prefix="tapbus-caps-")
        self.addCleanup(tmp.cleanup)
        os.chmod(tmp.name, 0o755)
        saved_bin = h.BIN
        self.addCleanup(setattr, h, "BIN", saved_bin)
        probe = os.path.join(tmp.name, "tapbus-probe")
        shutil.copy(os.path.join(saved_bin, "tapbus-probe"), probe)
        os.chmod(probe, 0o755)
        for prog in ("tapbus-collector", "tapbusctl"):
            os.symlink(os.path.join(saved_bin, prog), os.path.join(tmp.name, prog))
        r = subprocess.run(["setcap", caps, probe], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            self.skipTest("this file system takes no file capabilities: %s" % r.stderr.strip())
        user = ["setpriv", "--reuid=%d" % IMAGE_UID, "--regid=%d" % IMAGE_UID, "--clear-groups"]
        r = subprocess.run(user + ["--bounding-set=-all", probe, "--help"], capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Operation not permitted", r.stderr)

        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        h.BIN = tmp.name
        bus = h.Bus([("lo", "iface:lo")], probe_args=["--filter", "udp port %d" % port],
                    probe_prefix=user + ["--bounding-set=" + bounding])
        try:
            bus.start("lo")
            h.wait_for(lambda: bus.probe_view("lo").get("source_state") in ("running", "error"),
                       20, "the capture to start or fail")
            self.assertEqual(bus.probe_view("lo").get("source_state"), "running",
                             bus.probe_view("lo"))
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with sender:
                for _ in range(100):
                    sender.sendto(b"x" * 58, ("127.0.0.1", port))
            h.wait_for(lambda: bus.stats("lo")["packets"] >= 100, 30, "100 captured packets")
            h.wait_for(lambda: bus.probe_view("lo").get("published", 0) == 100, 30,
                       "a heartbeat counting the 100 packets")
            s = bus.stats("lo")
            self.assertEqual(s["packets"], 100)
            self.assertEqual(s["bytes"], 100 * (14 + 20 + 8 + 58))
        finally:
            bus.close()


def installed_programs():
    """The programs `cmake --install` puts in bin/ (what the image copies)."""
    found = []
    for d in ("probe", "collector", "controller"):
        with open(os.path.join(SRC, d, "CMakeLists.txt"), encoding="utf-8") as f:
            found += re.findall(r"install\(TARGETS\s+([\w-]+)\s+RUNTIME DESTINATION "
                                r"(?:bin|\$\{CMAKE_INSTALL_BINDIR\})\)", f.read())
    return found


def ldd(path):
    """[(soname, path)] of every shared library ldd resolves for a program
    (the loader too), failing on one it cannot find."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        line = line.strip()
        assert "not found" not in line, "%s: %s" % (path, line)
        m = re.match(r"(\S+) => (/\S+) \(0x", line) or re.match(r"((/\S+)) \(0x", line)
        if m:
            out.append((os.path.basename(m.group(1)), m.group(2)))
    return out


def needed(path):
    """The sonames a program itself names (DT_NEEDED)."""
    r = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", r.stdout)


def owners(paths):
    """{path: the package that ships it} for library files, each found under
    any of its names (the path ldd prints, the file it points to, with or
    without the /usr prefix of a merged /usr); one dpkg -S for them all."""
    names = {}
    for path in paths:
        for p in (path, os.path.realpath(path)):
            names[p] = path
            names["/usr" + p if not p.startswith("/usr/") else p[4:]] = path
    # dpkg -S exits 1 when some name is not found; the others are listed.
    r = subprocess.run(["dpkg", "-S"] + sorted(names), capture_output=True, text=True,
                       timeout=120)
    found = {}
    for line in r.stdout.splitlines():
        if line.startswith("diversion by"):
            continue
        pkgs, _, where = line.partition(": ")
        if where in names:
            found.setdefault(names[where], pkgs.split(",")[0].strip().split(":")[0])
    return found


def depends_closure(roots):
    """The installed packages apt brings with roots: Depends and Pre-Depends,
    followed through every installed alternative."""
    r = subprocess.run(["dpkg-query", "-W", "-f",
                        "${Package}\t${Status}\t${Provides}\t${Depends}, ${Pre-Depends}\n"],
                       capture_output=True, text=True, timeout=60)
    deps, provides = {}, {}
    for line in r.stdout.splitlines():
        name, status, prov, dep = line.split("\t")
        if not status.endswith(" installed"):
            continue
        deps[name] = [[alt.split()[0].split(":")[0] for alt in group.split("|") if alt.strip()]
                      for group in dep.split(",") if group.strip()]
        for p in prov.split(","):
            if p.strip():
                provides.setdefault(p.split()[0], []).append(name)
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for group in deps.get(p, []):
            for alt in group:
                todo += [q for q in [alt] + provides.get(alt, []) if q in deps]
    return seen


if __name__ == "__main__":
    unittest.main(verbosity=2)
