"""testssl.sh against every TLS listener of a real pecd: no SSLv2/3, TLS 1.0 or 1.1, no
NULL/anonymous/export/low/3DES/CBC suites, forward secrecy everywhere, and no finding
above INFO/OK in the protocol, cipher, forward-secrecy and vulnerability sections.

The assertions read testssl's machine-readable JSON (--jsonfile). The scans run offline
(--nodns none, --ip 127.0.0.1) and in parallel, one testssl process per listener.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from pecd_harness import PecdInstance  # noqa: E402

# Findings that describe testssl's own tooling, not the server.
TOOL_IDS = {"engine_problem", "scanTime", "service"}
BAD_SEVERITIES = {"LOW", "MEDIUM", "HIGH", "CRITICAL", "FATAL"}
NOT_OFFERED = ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
               "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"]


def scan_command(listener, out):
    args = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", "127.0.0.1",
            "--openssl-timeout", "10", "--protocols", "--std", "--fs", "--vulnerable", "--jsonfile", out]
    if listener["tls"] != "implicit":
        args += ["--starttls", "smtp"]
    return args + ["127.0.0.1:%d" % listener["port"]]


class TestsslTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pecd = PecdInstance().start()
        cls.work = tempfile.TemporaryDirectory(prefix="pecd-testssl-")
        cls.results = {}
        tls_listeners = [l for l in cls.pecd.listeners.values() if l["tls"] != "none"]
        procs = []
        for l in tls_listeners:
            out = os.path.join(cls.work.name, l["name"] + ".json")
            log = open(os.path.join(cls.work.name, l["name"] + ".log"), "wb")
            procs.append((l, out, log, subprocess.Popen(scan_command(l, out), stdout=log, stderr=subprocess.STDOUT)))
        for l, out, log, p in procs:
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
            with open(out) as f:
                cls.results[l["name"]] = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.pecd.cleanup()
        cls.work.cleanup()

    def findings(self, name):
        return {f["id"]: f for f in self.results[name]}

    def test_every_tls_listener_was_scanned(self):
        names = {l["name"] for l in self.pecd.listeners.values() if l["tls"] != "none"}
        self.assertTrue(names, "pecd has no TLS listener")
        self.assertEqual(set(self.results), names)
        for name in names:
            f = self.findings(name)
            self.assertIn("TLS1_2", f, "%s: scan did not reach the protocol section" % name)
            self.assertIn("heartbleed", f, "%s: scan did not reach the vulnerability section" % name)

    def test_only_tls12_and_tls13(self):
        for name in self.results:
            f = self.findings(name)
            for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
                self.assertIn("not offered", f[proto]["finding"], "%s offers %s" % (name, proto))
            self.assertTrue(f["TLS1_2"]["finding"].startswith("offered"), (name, f["TLS1_2"]))
            self.assertTrue(f["TLS1_3"]["finding"].startswith("offered"), (name, f["TLS1_3"]))

    def test_no_weak_or_anonymous_suites(self):
        for name in self.results:
            f = self.findings(name)
            for cid in NOT_OFFERED:
                self.assertIn("not offered", f[cid]["finding"], "%s: %s %s" % (name, cid, f[cid]))
            self.assertTrue(f["cipherlist_STRONG"]["finding"].startswith("offered"), (name, f["cipherlist_STRONG"]))

    def test_nothing_flagged_above_info(self):
        for name in self.results:
            flagged = [(x["id"], x["severity"], x["finding"]) for x in self.results[name]
                       if x["severity"] in BAD_SEVERITIES and x["id"] not in TOOL_IDS]
            self.assertEqual(flagged, [], "%s: %s" % (name, flagged))


if __name__ == "__main__":
    unittest.main(verbosity=2)
