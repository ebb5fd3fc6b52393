"""The provider's signing identity, and the roots of its time-stamping authority, are
renewed without a restart.

A provider whose signing certificate and key are replaced on disk (new key, new
certificate from the same CA, renamed into place as a deployment tool would) signs the
next receipts with the new identity, with no signal and no restart; a replacement whose
key is not the certificate's is refused once and the identity in use stays; a renewed
certificate not yet in the provider index is reported as such. The signer
of each acceptance receipt is read with `openssl cms -verify -signer`, independently of
pecd. The roots of an external TSA (`[log] tsa_anchors`) are re-read by the running
daemon when their file is replaced, and a broken replacement is refused once.
"""
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

from pec_network import PECCTL, PecNetwork


def signer_serial(provider, raw):
    """The serial of the certificate that signed an S/MIME message, by openssl."""
    path = os.path.join(provider.data_dir, "signed-%d.eml" % time.monotonic_ns())
    with open(path, "wb") as f:
        f.write(raw)
    signer = path + ".signer.pem"
    subprocess.run(["openssl", "cms", "-verify", "-in", path, "-inform", "SMIME", "-CAfile", provider.network.pec_ca,
                    "-purpose", "any", "-out", "/dev/null", "-signer", signer], check=True, capture_output=True,
                   timeout=60)
    return serial_of(signer)


def serial_of(certificate):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", certificate], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return out.strip().split("=")[1]


class SigningIdentityRenewal(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pecd-signing-")
        self.net = PecNetwork(self.tmp.name, [("a.pec.test", "Gestore A S.p.A.")], None)
        (self.a,) = self.net.providers
        self.a.antivirus = False
        self.net.prepare()
        self.alice = self.a.add_mailbox("alice")
        self.bob = self.a.add_mailbox("bob")
        self.net.start()

    def tearDown(self):
        self.net.stop()
        self.tmp.cleanup()

    def new_identity(self, name):
        out = os.path.join(self.tmp.name, name)
        return json.loads(subprocess.run(
            [PECCTL, "pec", "demo-identity", "--ca-dir", self.net.pec_ca_dir, "--domain", self.a.domain, "--name",
             self.a.name, "--out", out], check=True, capture_output=True, text=True, timeout=60).stdout)

    def install(self, certificate, key):
        for src, dst in ((key, self.a.signing["key"]), (certificate, self.a.signing["certificate"])):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst + ".new", "wb") as f:
                f.write(data)
            os.rename(dst + ".new", dst)

    def acceptance_serial(self, subject, count):
        self.a.submit(self.alice, [self.bob], subject=subject)
        got = self.a.wait_for(self.alice, count)
        for raw, m in got:
            if m.get("X-Ricevuta") == "accettazione" and subject in m["Subject"]:
                return signer_serial(self.a, raw)
        self.fail("no acceptance receipt for %r" % subject)

    def test_renewed_identity_signs_the_next_receipts(self):
        old = serial_of(self.a.signing["certificate"])
        self.assertEqual(self.acceptance_serial("before", 2), old)

        renewal = self.new_identity("renewal")
        new = serial_of(renewal["certificate"])
        self.assertNotEqual(new, old)
        self.install(renewal["certificate"], renewal["key"])
        self.a.wait_for_log(r"info pec: signing identity renewed from .*signing\.pem")
        self.assertRegex(self.a.read_log(), r"pec: signing certificate .*signing\.pem valid for \d+ more days")
        # Not published yet: other providers would take its signatures for a stranger's.
        self.assertNotRegex(self.a.read_log().split("signing identity renewed")[0], r"not in the provider index")
        self.a.wait_for_log(r"error pec: the signing certificate in use \(SHA-1 [0-9a-f]{40}\) is not in the provider "
                          r"index")
        # Its own reception point does not know the unpublished signer either: alice gets
        # the acceptance receipt, bob an anomaly envelope, and no delivery receipt comes.
        self.assertEqual(self.acceptance_serial("after", 3), new)

        # A certificate without its key: refused, not read again, the renewed identity stays.
        stray = self.new_identity("stray")
        self.install(stray["certificate"], renewal["key"])
        self.a.wait_for_log(r"error pec: signing identity renewal refused, keeping the one in use: .*does not match")
        time.sleep(2.5)  # the final state of both files has been tried by now
        refusals = len(re.findall(r"signing identity renewal refused", self.a.read_log()))
        self.assertEqual(self.acceptance_serial("stray", 4), new)
        time.sleep(2.5)
        self.assertEqual(len(re.findall(r"signing identity renewal refused", self.a.read_log())), refusals,
                         "the same broken files were read again")


class TsaAnchorsRenewal(unittest.TestCase):
    """The daemon's side of `LogServiceTest.TsaAnchorsRenewedOnDiskVerifyTheNextSeal`: the
    file is watched on the certificates' timer (no signal); the seals themselves are
    checked there against a real TSA."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pecd-tsa-anchors-")
        self.net = PecNetwork(self.tmp.name, [("a.pec.test", "Gestore A S.p.A.")], None)
        (self.a,) = self.net.providers
        self.a.antivirus = False
        self.anchors = os.path.join(self.tmp.name, "tsa-roots.pem")
        self.net.prepare()
        self.replace(self.net.pec_ca)
        # No TSA listens there: segments close hourly, so nothing is sealed during the test.
        self.a.extra_toml = '[log]\ntsa_url = "http://127.0.0.1:9/"\ntsa_anchors = "%s"\n' % self.anchors
        self.a.write_config()
        self.net.start()

    def tearDown(self):
        self.net.stop()
        self.tmp.cleanup()

    def replace(self, source=None, text=None):
        if source:
            with open(source) as f:
                text = f.read()
        with open(self.anchors + ".new", "w") as f:
            f.write(text)
        os.rename(self.anchors + ".new", self.anchors)

    def count(self, pattern):
        return len(re.findall(pattern, self.a.read_log()))

    def test_roots_replaced_on_disk_are_taken_without_a_signal(self):
        self.a.wait_for_log(r"info log: TSA: trust: 1 anchor\(s\) from .*tsa-roots\.pem")
        self.replace(self.net.tls_ca)
        self.a.wait_for_log(r"info log: TSA: trust re-read from .*tsa-roots\.pem")
        self.replace(text="-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        self.a.wait_for_log(r"error log: TSA: trust files not re-read, keeping the ones in use: .*tsa-roots\.pem")
        refusals = self.count(r"log: TSA: trust files not re-read")
        time.sleep(2.5)  # more than reload_interval: the same broken file is not read again
        self.assertEqual(self.count(r"log: TSA: trust files not re-read"), refusals)
        self.assertEqual(self.count(r"log: TSA: trust re-read"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
