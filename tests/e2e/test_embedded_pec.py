"""The embedded default as the README runs it: a PEC provider on its own, with clamd.

swaks submits alice -> bob; alice's mailbox then holds the ricevuta di accettazione and
the ricevuta di avvenuta consegna, bob's the busta di trasporto, the service mailbox the
presa in carico; all verify against the provider's own demo CA and index, and
`pecctl pec history` lists the message's events.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest

from clamd_harness import ClamdInstance
from pecd_harness import PECCTL, PecdInstance


class EmbeddedPecProvider(unittest.TestCase):
    def test_first_certified_message(self):
        with tempfile.TemporaryDirectory(prefix="pecd-embedded-") as tmp:
            clamd = ClamdInstance(os.path.join(tmp, "clamav")).start()
            pecd = PecdInstance(data_dir=tmp, pec=True).start()
            try:
                creds = pecd.credentials()
                alice, bob = "alice@pec.localhost", "bob@pec.localhost"
                out = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(pecd.port("submission")),
                                      "--tls", "--auth", "PLAIN", "--auth-user", alice, "--auth-password",
                                      creds[alice], "--from", alice, "--to", bob, "--header", "Subject: prima PEC"],
                                     capture_output=True, text=True, timeout=60)
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

                def listing(address):
                    return json.loads(pecd.pecctl("mailbox", "read", address, "--json").stdout)

                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and len(listing(alice)) < 2:
                    time.sleep(0.2)
                kinds = {}
                for address in (alice, bob, "posta-certificata@pec.localhost"):
                    for m in listing(address):
                        raw = subprocess.run([PECCTL, "mailbox", "read", address, str(m["id"]), "--data-dir", tmp],
                                             capture_output=True, check=True, timeout=60).stdout
                        path = os.path.join(tmp, "m.eml")
                        with open(path, "wb") as f:
                            f.write(raw)
                        v = subprocess.run([PECCTL, "verify", path, "--trust", os.path.join(tmp, "pec", "ca.pem"),
                                            "--index", os.path.join(tmp, "pec", "index.ldif"), "--json"],
                                           capture_output=True, text=True, timeout=60)
                        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
                        report = json.loads(v.stdout)
                        kinds.setdefault(address, []).append(report["type"])
                        if report["type"] == "busta-trasporto":
                            pec_id = report["daticert"]["identificativo"]
                self.assertEqual(sorted(kinds[alice]), ["accettazione", "consegna-completa"], pecd.read_log())
                self.assertEqual(kinds[bob], ["busta-trasporto"])
                self.assertEqual(kinds["posta-certificata@pec.localhost"], ["presa-in-carico"])
                history = json.loads(pecd.pecctl("pec", "history", pec_id, "--json").stdout)
                events = [r["kind"] for r in history]
                for k in ("acceptance", "transport-envelope", "take-in-charge", "delivery"):
                    self.assertIn(k, events)
                # The session the message came in on, as the client negotiated it.
                acceptance = next(r for r in history if r["kind"] == "acceptance")
                self.assertEqual(acceptance["tls"]["protocol"], "TLSv1.3", acceptance)
                self.assertTrue(acceptance["tls"]["cipher"].startswith("TLS_"), acceptance)
            finally:
                pecd.stop()
                clamd.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
