"""The provider index inside the real daemon: pecd started with an [index] file source
loads the signed index published by the real pecctl, refreshes it on its schedule, keeps
the last good index when the file turns bad (and says why in its log), and keeps
accepting mail throughout, since the refresh runs beside the message path."""
import os
import smtplib
import subprocess
import time
import unittest

from pecd_harness import PECCTL, configured_instance


def wait_for_log(inst, text, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in inst.read_log():
            return True
        time.sleep(0.1)
    return False


class IndexServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pecd = configured_instance(mailboxes={"alice@pec.localhost": "alice-secret-1"})
        d = cls.pecd.data_dir
        cls.cert = os.path.join(d, "provider-cert.pem")
        cls.key = os.path.join(d, "provider-key.pem")
        cls.index = os.path.join(d, "index.p7m")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key,
                        "-out", cls.cert, "-days", "30", "-subj", "/O=Test PEC S.p.A./CN=Posta Certificata Test",
                        "-addext", "subjectAltName=email:posta-certificata@pec.localhost",
                        "-addext", "keyUsage=critical,digitalSignature"],
                       check=True, capture_output=True)
        cls.publish(["pec.localhost", "other.example"])
        with open(cls.pecd.config, "a") as f:
            f.write('\n[index]\nsource = "file"\nfile = "%s"\ntrust_anchor = "%s"\n'
                    'refresh_interval = 1\nretry_interval = 1\n' % (cls.index, cls.cert))
        cls.pecd.start()

    @classmethod
    def tearDownClass(cls):
        cls.pecd.cleanup()

    @classmethod
    def publish(cls, domains):
        args = [PECCTL, "index", "publish", "--name", "Test PEC", "--mail-receipt", "ricevute@pec.localhost",
                "--certificate", cls.cert, "--key", cls.key, "--out", cls.index + ".new"]
        for dom in domains:
            args += ["--domain", dom]
        subprocess.run(args, check=True, capture_output=True)
        os.replace(cls.index + ".new", cls.index)

    def send(self):
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=10) as s:
            s.ehlo("client.test")
            return s.sendmail("someone@example.net", ["alice@pec.localhost"],
                              b"Subject: t\r\n\r\nbody\r\n")

    def test_1_loads_at_start(self):
        self.assertTrue(wait_for_log(self.pecd, "index: index loaded"), self.pecd.read_log())
        self.assertIn("1 providers, 0 units, 2 domains", self.pecd.read_log())

    def test_2_bad_file_keeps_last_good_index_and_mail_flows(self):
        self.assertTrue(wait_for_log(self.pecd, "index: index loaded"))
        with open(self.index, "r+b") as f:  # tamper with the signed content
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0x01]))
        self.assertTrue(wait_for_log(self.pecd, "refresh failed, the previous index stays in use"),
                        self.pecd.read_log())
        self.assertEqual(self.send(), {})

    def test_3_new_document_replaces_the_index(self):
        self.publish(["pec.localhost", "other.example", "third.example"])
        self.assertTrue(wait_for_log(self.pecd, "1 providers, 0 units, 3 domains"), self.pecd.read_log())


if __name__ == "__main__":
    unittest.main()
