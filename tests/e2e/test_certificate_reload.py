"""Certificates replaced on disk are used by the next handshake without a restart; a
session open across the swap completes; a broken new pair is refused and the old one
stays in service."""
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

from pecd_harness import PecdInstance


def serial_seen(port, ca):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp",
                        "-servername", "localhost", "-CAfile", ca, "-verify_return_error"],
                       input=b"QUIT\r\n", capture_output=True, timeout=20)
    cert = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=r.stdout, capture_output=True)
    m = re.search(rb"serial=([0-9A-F]+)", cert.stdout)
    return m.group(1).decode() if m else None, r


def issue_certificate(tls_dir, out_dir):
    """A new server certificate for localhost from the instance's own CA (as a renewal would)."""
    key = os.path.join(out_dir, "new.key")
    csr = os.path.join(out_dir, "new.csr")
    crt = os.path.join(out_dir, "new.pem")
    ext = os.path.join(out_dir, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(tls_dir, "ca.pem"),
                    "-CAkey", os.path.join(tls_dir, "ca.key"), "-CAcreateserial", "-days", "30",
                    "-extfile", ext, "-out", crt], check=True, capture_output=True)
    return crt, key


class CertificateReloadTest(unittest.TestCase):
    def setUp(self):
        self.pecd = PecdInstance().start()
        self.tls_dir = os.path.join(self.pecd.data_dir, "tls")
        self.port = self.pecd.port("mx")
        self.work = tempfile.mkdtemp(prefix="pecd-cert-")

    def tearDown(self):
        self.pecd.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)

    def replace_pair(self, crt, key):
        # Renewal tools write new files and rename them into place.
        for src, dst in ((key, "server.key"), (crt, "server.pem")):
            tmp = os.path.join(self.tls_dir, "." + dst + ".new")
            shutil.copyfile(src, tmp)
            os.rename(tmp, os.path.join(self.tls_dir, dst))

    def wait_for_serial(self, want, seconds=15):
        deadline = time.monotonic() + seconds
        seen = None
        while time.monotonic() < deadline:
            seen, _ = serial_seen(self.port, self.pecd.ca_file)
            if seen == want:
                return seen
            time.sleep(0.5)
        return seen

    def test_swap_is_used_by_next_handshake_and_open_session_completes(self):
        old_serial, r = serial_seen(self.port, self.pecd.ca_file)
        self.assertIsNotNone(old_serial, r.stdout + r.stderr)
        creds = self.pecd.credentials()
        alice, bob = sorted(creds)[:2]
        ctx = ssl.create_default_context(cafile=self.pecd.ca_file)
        session = smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=30)
        session.starttls(context=ctx)
        session.login(alice, creds[alice])

        crt, key = issue_certificate(self.tls_dir, self.work)
        new_serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", crt],
                                    capture_output=True, text=True).stdout.strip().split("=")[1]
        self.replace_pair(crt, key)
        self.assertEqual(self.wait_for_serial(new_serial), new_serial)

        # The session established before the swap still works to the end.
        refused = session.sendmail(alice, [bob], "Subject: across the swap\r\n\r\nx\r\n")
        self.assertEqual(refused, {})
        session.quit()

    def test_broken_pair_is_refused_and_old_one_stays(self):
        old_serial, _ = serial_seen(self.port, self.pecd.ca_file)
        with open(os.path.join(self.tls_dir, "server.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        time.sleep(4)
        seen, r = serial_seen(self.port, self.pecd.ca_file)
        self.assertEqual(seen, old_serial, r.stdout + r.stderr)
        self.assertRegex(self.pecd.read_log(), r"(?i)(error|refus).*server\.pem|server\.pem.*(error|refus)")

        # A key that does not match the certificate is refused too.
        crt, key = issue_certificate(self.tls_dir, self.work)
        other_crt, other_key = issue_certificate(self.tls_dir, tempfile.mkdtemp(dir=self.work))
        self.replace_pair(crt, other_key)
        time.sleep(4)
        seen, _ = serial_seen(self.port, self.pecd.ca_file)
        self.assertEqual(seen, old_serial)


if __name__ == "__main__":
    unittest.main(verbosity=2)
