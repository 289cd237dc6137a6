#!/usr/bin/env python3
"""The test suite stands on its own: everything it reads is in the repository.

- every capture a test names exists in tests/data/corpus or tests/data;
- no test, build or helper file refers to a path outside the checkout;
- a fresh clone placed where nothing is beside it configures with its own
  corpus, and its decoder sweep passes there."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tapbus_harness as h  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(SRC, "tests", "data")
CAPTURE_NAME = re.compile(r"[\"']([A-Za-z0-9_.+-]+\.pcap(?:ng)?)[\"']")
CORPUS_CALL = re.compile(r"corpus(?:_file)?\(\s*[\"']([A-Za-z0-9_.+-]+\.pcap(?:ng)?)[\"']")
# A test that writes or copies captures itself (the generator, its own pcap
# writer, binary files, copies into a temporary folder): its names are its own.
MAKES_CAPTURES = re.compile(r"tb-gen-pcap|gen_pcap|write_pcap|pcap_header|struct\.pack|"
                            r"pcap_dump_open|mkfifo|[\"']wb[\"']|shutil\.copy")
TEXT_SUFFIXES = (".c", ".h", ".py", ".sh", ".txt", ".cmake", ".md", ".yml", ".yaml", ".json",
                 "Dockerfile", "run")


def source_files():
    for root, dirs, files in os.walk(SRC):
        dirs[:] = [d for d in dirs if d not in (".git", "build") and not d.startswith("build-")
                   and os.path.join(root, d) != os.path.join(DATA, "corpus")]
        for name in files:
            if name.endswith(TEXT_SUFFIXES):
                yield os.path.join(root, name)


class SelfContained(unittest.TestCase):
    def test_corpus_is_in_the_repository(self):
        corpus = os.path.realpath(h.CORPUS)
        self.assertTrue(corpus.startswith(os.path.realpath(SRC) + os.sep),
                        "TAPBUS_CORPUS %s is outside the checkout %s" % (corpus, SRC))
        for name in ("README.md", "LICENSE"):
            self.assertTrue(os.path.isfile(os.path.join(corpus, name)),
                            "tests/data/corpus/%s (origin and licence) missing" % name)

    def test_every_named_capture_exists(self):
        """Names a test reads from the repository: those handed to the
        corpus helpers anywhere, and every capture name in a test that makes
        no capture of its own (its names can only be data)."""
        tests = [p for p in source_files()
                 if p.startswith(os.path.join(SRC, "tests") + os.sep) and p.endswith((".py", ".c"))
                 and p != os.path.abspath(__file__)]
        named = {}
        for p in tests:
            with open(p, encoding="utf-8", errors="replace") as f:
                text = f.read()
            names = set(CORPUS_CALL.findall(text))
            if not MAKES_CAPTURES.search(text):
                names |= set(CAPTURE_NAME.findall(text))
            for name in names:
                named.setdefault(name, os.path.relpath(p, SRC))
        self.assertGreater(len(named), 20, "no capture names found in the tests")
        missing = ["%s (named in %s)" % (name, where) for name, where in sorted(named.items())
                   if not any(os.path.isfile(os.path.join(d, name))
                              for d in (os.path.join(DATA, "corpus"), DATA))]
        self.assertEqual(missing, [], "captures named by tests but not in tests/data")

    def test_nothing_refers_outside_the_checkout(self):
        offenders = []
        for p in source_files():
            with open(p, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if "../shared" in line and p != os.path.abspath(__file__):
                        offenders.append("%s:%d" % (os.path.relpath(p, SRC), n))
        self.assertEqual(offenders, [], "references to ../shared (outside the repository)")

    def test_fresh_clone_alone(self):
        if not os.path.isdir(os.path.join(SRC, ".git")) or shutil.which("git") is None:
            self.skipTest("not a git checkout: no clone to make")
        with tempfile.TemporaryDirectory(prefix="tapbus-clone-") as tmp:
            clone = os.path.join(tmp, "tapbus")
            r = subprocess.run(["git", "clone", "-q", "--no-hardlinks", SRC, clone],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "shared")))
            build = os.path.join(clone, "build")
            r = subprocess.run(["cmake", "-S", clone, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            with open(os.path.join(build, "CMakeCache.txt")) as f:
                cache = f.read()
            self.assertNotIn("../shared", cache)
            r = subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2),
                                "--target", "test_decode"],
                               capture_output=True, text=True, timeout=900)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
            r = subprocess.run([os.path.join(build, "bin", "test_decode")], cwd=tmp,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
            self.assertRegex(r.stdout, r"corpus: 5\d\d files opened")


if __name__ == "__main__":
    if not h.CORPUS:
        sys.exit("set TAPBUS_CORPUS")
    unittest.main(verbosity=2)
