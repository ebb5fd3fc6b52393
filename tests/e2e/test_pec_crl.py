"""The reception point's CRL is re-read while the daemon runs (pec.md 5.2: "refresh often
enough to minimise the gap between a revocation and its effect").

Two real providers; B checks signatures against a CRL file of the shared provider CA.
While that CRL revokes nothing, alice@A's certified message reaches bob@B as a transport
envelope and alice gets both receipts. Then the CA revokes A's signing certificate and
the CRL file is replaced, as a scheduled job would, with no signal and no restart: B
logs that it re-read its trust, and alice's next message reaches bob only as a busta di
anomalia (X-Trasporto: errore; its signer's chain no longer validates), with no receipt from B for it. A
broken CRL file written next is refused and the revocation stays in force.
"""
import os
import tempfile
import time
import unittest

from pec_network import PecNetwork
from provider_ca import ProviderCa


class CrlRefreshedWhileRunning(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pecd-crl-")
        self.net = PecNetwork(self.tmp.name, [("a.pec.test", "Gestore A S.p.A."), ("b.pec.test", "Gestore B S.p.A.")],
                              None)
        self.a, self.b = self.net.providers
        for p in self.net.providers:
            p.antivirus = False
        self.ca = ProviderCa(self.net.pec_ca_dir, os.path.join(self.tmp.name, "ca-db"))
        self.crl = os.path.join(self.tmp.name, "provider-ca.crl")
        self.ca.write_crl(self.crl)
        self.b.pec_toml = 'crl_file = "%s"\n' % self.crl
        self.net.prepare()
        self.alice = self.a.add_mailbox("alice")
        self.bob = self.b.add_mailbox("bob")
        self.net.start()

    def tearDown(self):
        self.net.stop()
        self.tmp.cleanup()

    def test_a_revocation_takes_effect_without_a_restart(self):
        self.assertRegex(self.b.read_log(), r"info pec: trust: 1 anchor\(s\) from .*, 1 CRL\(s\) from .*provider-ca\.crl")
        self.assertRegex(self.b.read_log(), r"info pec: CRL of .* valid until 20")

        self.a.submit(self.alice, [self.bob], subject="before the revocation")
        got = self.b.wait_for(self.bob, 1)
        self.assertEqual(self.b.kinds(self.bob), ["busta-posta-certificata"])
        self.assertIn("before the revocation", got[0][1]["Subject"])
        self.a.wait_for(self.alice, 2)
        self.assertEqual(sorted(self.a.kinds(self.alice)), ["accettazione", "avvenuta-consegna"])

        self.ca.revoke(self.a.signing["certificate"])
        self.ca.write_crl(self.crl)
        self.b.wait_for_log(r"info pec: trust re-read from .* and .*provider-ca\.crl")

        self.a.submit(self.alice, [self.bob], subject="after the revocation")
        got = self.b.wait_for(self.bob, 2)
        self.assertEqual(self.b.kinds(self.bob), ["busta-posta-certificata", "busta-errore"])
        self.assertIn("after the revocation", got[1][1]["Subject"])
        time.sleep(3)  # no presa in carico or consegna from B comes back for it
        self.assertEqual(sorted(self.a.kinds(self.alice)), ["accettazione", "accettazione", "avvenuta-consegna"])

        with open(self.crl + ".new", "w") as f:
            f.write("-----BEGIN X509 CRL-----\nbroken\n-----END X509 CRL-----\n")
        os.rename(self.crl + ".new", self.crl)
        self.b.wait_for_log(r"error pec: trust files not re-read, keeping the ones in use")
        self.a.submit(self.alice, [self.bob], subject="with the broken file")
        self.b.wait_for(self.bob, 3)
        self.assertEqual(self.b.kinds(self.bob)[2], "busta-errore")


if __name__ == "__main__":
    unittest.main(verbosity=2)
