"""Certificates per SNI name on a listener ([[listener.sni]]): `openssl s_client
-servername` gets the certificate configured for that name (exact and wildcard entries),
the listener's default for any other name or none; a replaced SNI pair is picked up
without restart, like the default pair."""
import os
import re
import shutil
import subprocess
import time
import unittest

from pecd_harness import configured_instance


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", "/CN=SNI test CA", "-keyout", os.path.join(d, "ca.key"), "-out", os.path.join(d, "ca.pem"))


def issue(d, stem, name):
    """A server certificate for name from the test CA; returns (cert, key)."""
    key, csr, crt, ext = (os.path.join(d, stem + s) for s in (".key", ".csr", ".pem", ".ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n" % name)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.pem"), "-CAkey", os.path.join(d, "ca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", crt)
    return crt, key


def served(port, servername):
    """(subject CN, serial) of the certificate pecd presents after STARTTLS."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp"]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    r = subprocess.run(cmd, input=b"QUIT\r\n", capture_output=True, timeout=20)
    x = subprocess.run(["openssl", "x509", "-noout", "-subject", "-serial", "-nameopt", "multiline"],
                       input=r.stdout, capture_output=True, timeout=20)
    cn = re.search(rb"commonName\s*=\s*(\S+)", x.stdout)
    serial = re.search(rb"serial=([0-9A-F]+)", x.stdout)
    if not cn:
        raise AssertionError("no certificate from s_client -servername %s:\n%s" % (servername, r.stdout + r.stderr))
    return cn.group(1).decode(), serial.group(1).decode()


class SniTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.certs = tempfile.mkdtemp(prefix="pecd-sni-")
        make_ca(cls.certs)
        cls.alpha = issue(cls.certs, "alpha", "mail.alpha.test")
        cls.beta = issue(cls.certs, "beta", "*.beta.test")
        listeners = """
[[listener]]
name = "mx"
port = 0
tls = "starttls"
[[listener.sni]]
name = "mail.alpha.test"
certificate = "%s"
key = "%s"
[[listener.sni]]
name = "*.beta.test"
certificate = "%s"
key = "%s"
""" % (cls.alpha + cls.beta)
        cls.pecd = configured_instance("[tls]\nreload_interval = 1\n", listeners=listeners).start()
        cls.port = cls.pecd.port("mx")

    @classmethod
    def tearDownClass(cls):
        cls.pecd.cleanup()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def test_each_name_gets_its_certificate(self):
        self.assertEqual(served(self.port, "mail.alpha.test")[0], "mail.alpha.test")
        self.assertEqual(served(self.port, "MAIL.Alpha.Test")[0], "mail.alpha.test")
        self.assertEqual(served(self.port, "mx1.beta.test")[0], "*.beta.test")
        # A wildcard covers exactly one label.
        self.assertEqual(served(self.port, "a.mx1.beta.test")[0], "localhost")
        self.assertEqual(served(self.port, "other.test")[0], "localhost")
        self.assertEqual(served(self.port, None)[0], "localhost")

    def test_replaced_sni_pair_is_used_without_restart(self):
        before = served(self.port, "mail.alpha.test")[1]
        work = os.path.join(self.certs, "renewed")
        os.makedirs(work, exist_ok=True)
        shutil.copy(os.path.join(self.certs, "ca.pem"), work)
        shutil.copy(os.path.join(self.certs, "ca.key"), work)
        crt, key = issue(work, "alpha", "mail.alpha.test")
        for src, dst in ((key, self.alpha[1]), (crt, self.alpha[0])):
            shutil.copyfile(src, dst + ".new")
            os.rename(dst + ".new", dst)
        want = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", crt], capture_output=True,
                              text=True).stdout.strip().split("=")[1]
        self.assertNotEqual(want, before)
        deadline = time.monotonic() + 15
        seen = before
        while time.monotonic() < deadline and seen != want:
            time.sleep(0.3)
            seen = served(self.port, "mail.alpha.test")[1]
        self.assertEqual(seen, want)
        # The other names are unaffected.
        self.assertEqual(served(self.port, "mx1.beta.test")[0], "*.beta.test")
        self.assertEqual(served(self.port, None)[0], "localhost")


if __name__ == "__main__":
    unittest.main(verbosity=2)
