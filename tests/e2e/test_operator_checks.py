"""What an operator relies on at the edges of the SMTP server, through the real daemon:
a bad configuration refused at start with the key and the reason, listeners.json as
documented, the header-size limit, a TLS 1.3-only setting, the listener certificate
expiry warned about in the log, and a certificate that never expires taken as such."""
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest

from pecd_harness import BINARY_DIR, PECCTL, PECD, PecdInstance, configured_instance, raw_dialog


class OperatorChecks(unittest.TestCase):
    def test_bad_configuration_is_refused_with_key_and_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "pecd.toml")
            with open(path, "w") as f:
                f.write('data_dir = "%s"\n[[listener]]\nname = "mx"\nport = 2525\ntls = "sometimes"\n' % tmp)
            p = subprocess.run([PECD, "--config", path], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2)
            self.assertIn("listener[1].tls", p.stderr)
            self.assertIn("must be one of", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "listeners.json")))

    def test_out_of_range_periods_are_refused_by_check_config(self):
        # A "keep forever" retention of two thousand million months once became a purge
        # cut-off in the future; --check-config and the start refuse it, naming the key.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "pecd.toml")
            base = 'data_dir = "%s"\n[[listener]]\nname = "mx"\nport = 2525\n' % tmp
            for section, key, value in (("log", "retention_months", "2000000000"),
                                        ("antivirus", "retention_months", "1201"),
                                        ("limits", "idle_timeout", "999999999999")):
                with open(path, "w") as f:
                    f.write(base + "[%s]\n%s = %s\n" % (section, key, value))
                for args in (["--check-config"], []):
                    p = subprocess.run([PECD, "--config", path, *args], capture_output=True, text=True, timeout=30)
                    self.assertEqual(p.returncode, 2, (key, args, p.stdout, p.stderr))
                    self.assertIn("%s.%s: at most" % (section, key), p.stderr)
            with open(path, "w") as f:
                f.write(base + "[log]\nretention_months = 1200\n")
            p = subprocess.run([PECD, "--config", path, "--check-config"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "listeners.json")))

    def test_check_config_reads_the_files_it_names(self):
        with tempfile.TemporaryDirectory() as tmp:
            def openssl(*args):
                subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
            for name in ("mx", "other"):
                openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "30", "-subj", "/CN=%s.example" % name, "-keyout", os.path.join(tmp, name + ".key"),
                        "-out", os.path.join(tmp, name + ".pem"))
            with open(os.path.join(tmp, "garbage.pem"), "w") as f:
                f.write("not a certificate\n")
            with open(os.path.join(tmp, "db.password"), "w") as f:
                f.write("s3cret-value\n")
            path = os.path.join(tmp, "pecd.toml")

            def check(text):
                with open(path, "w") as f:
                    f.write(text)
                return subprocess.run([PECD, "--config", path, "--check-config"], capture_output=True, text=True,
                                      timeout=30)

            good = ('data_dir = "{t}/data"\n[tls]\ncertificate = "{t}/mx.pem"\nkey = "{t}/mx.key"\n'
                    '[[listener]]\nname = "mx"\nport = 2525\ncertificate = "{t}/other.pem"\nkey = "{t}/other.key"\n'
                    '[outbound]\nca_file = "{t}/mx.pem"\n').format(t=tmp)
            p = check(good)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("configuration is valid", p.stdout)
            self.assertFalse(os.path.exists(os.path.join(tmp, "data")), "a check creates nothing")

            bad = ('data_dir = "{t}/missing/data"\n[tls]\ncertificate = "{t}/nothere.pem"\nkey = "{t}/mx.key"\n'
                   '[[listener]]\nname = "mx"\nport = 2525\ncertificate = "{t}/mx.pem"\nkey = "{t}/other.key"\n'
                   '[outbound]\nca_file = "{t}/garbage.pem"\n'
                   '[store]\nbackend = "postgresql"\nconninfo = "host=db"\npassword_file = "{t}/db.pw"\n').format(t=tmp)
            p = check(bad)
            self.assertEqual(p.returncode, 2, p.stdout)
            lines = p.stderr.strip().splitlines()
            keys = [l.split(": ")[2] for l in lines]
            self.assertEqual(keys, ["data_dir", "tls.certificate", "listener[1].key", "outbound.ca_file",
                                    "store.password_file"], p.stderr)
            self.assertIn("is not the key of the certificate", p.stderr)
            self.assertIn("nothere.pem", p.stderr)
            # A secret file's content never appears, even when it is named wrongly.
            p = check(good + '[store]\nbackend = "postgresql"\nconninfo = "host=db"\npassword_file = "%s/garbage.pem"\n' % tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            # The provider index is read as the daemon reads it: a broken file names its line.
            with open(os.path.join(tmp, "index.ldif"), "w") as f:
                f.write("dn: o=postacert\nobjectClass: top\nthis line has no colon\n")
            p = check(good + '[index]\nsource = "file"\nfile = "%s/index.ldif"\n' % tmp)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("index.file: ", p.stderr)
            self.assertIn("line 3", p.stderr)
            # A provider's own record, plain and signed (as `pecctl index publish` writes them).
            signing = json.loads(subprocess.run(
                [PECCTL, "pec", "demo-identity", "--ca-dir", os.path.join(tmp, "pec-ca"), "--domain", "pec.a.test",
                 "--name", "A", "--out", os.path.join(tmp, "signing")],
                check=True, capture_output=True, text=True, timeout=60).stdout)
            subprocess.run([PECCTL, "index", "publish", "--name", "A", "--mail-receipt",
                            "posta-certificata@pec.a.test", "--domain", "pec.a.test", "--certificate",
                            signing["certificate"], "--key", signing["key"], "--out", os.path.join(tmp, "record.p7m"),
                            "--ldif-out", os.path.join(tmp, "record.ldif")],
                           check=True, capture_output=True, timeout=60)
            p = check(good + '[index]\nsource = "file"\nfile = "%s/record.ldif"\n' % tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = check(good + '[index]\nsource = "file"\nfile = "%s/record.p7m"\ntrust_anchor = "%s/pec-ca/ca.pem"\n'
                      % (tmp, tmp))
            self.assertEqual(p.returncode, 0, p.stderr)
            p = check(good + '[index]\nsource = "file"\nfile = "%s/record.p7m"\ntrust_anchor = "%s/mx.pem"\n'
                      % (tmp, tmp))
            self.assertEqual(p.returncode, 2, "signed by a chain the anchor does not vouch for")
            self.assertIn("index.file: ", p.stderr)
            # The PEC trust: a CRL file is parsed as the daemon parses it.
            pec = ('[pec]\nprovider_name = "A"\ndomain = "pec.a.test"\nsigning_certificate = "{c}"\nsigning_key = "{k}"\n'
                   'trust_anchors = "{t}/pec-ca/ca.pem"\n').format(c=signing["certificate"], k=signing["key"], t=tmp)
            p = check(good + pec)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = check(good + pec + 'crl_file = "%s/garbage.pem"\n' % tmp)
            self.assertEqual(p.returncode, 2, p.stdout)
            self.assertIn("pec.crl_file: no CRL (PEM or DER) in %s/garbage.pem" % tmp, p.stderr)
            # A CRL past its next update: every chain it covers would fail.
            ca_dir = os.path.join(tmp, "pec-ca")
            with open(os.path.join(tmp, "ca.cnf"), "w") as f:
                f.write("[ca]\ndefault_ca = pec\n[pec]\ndatabase = %s/index.txt\ncrlnumber = %s/crlnumber\n"
                        "certificate = %s/ca.pem\nprivate_key = %s/ca.key\ndefault_md = sha256\n"
                        % (tmp, tmp, ca_dir, ca_dir))
            open(os.path.join(tmp, "index.txt"), "w").close()
            with open(os.path.join(tmp, "crlnumber"), "w") as f:
                f.write("01\n")
            for name, last, nxt in (("stale.crl", "20260101000000Z", "20260102000000Z"),
                                    ("fresh.crl", "20260101000000Z", "20991231000000Z")):
                openssl("ca", "-config", os.path.join(tmp, "ca.cnf"), "-batch", "-gencrl", "-crl_lastupdate", last,
                        "-crl_nextupdate", nxt, "-out", os.path.join(tmp, name))
            p = check(good + pec + 'crl_file = "%s/fresh.crl"\n' % tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            p = check(good + pec + 'crl_file = "%s/stale.crl"\n' % tmp)
            self.assertEqual(p.returncode, 2, p.stdout)
            self.assertRegex(p.stderr, r"pec\.crl_file: .*stale\.crl: the CRL of .* is out of date since "
                                       r"2026-01-02T00:00:00Z")
            p = check(good.replace("other.key", "db.password"))
            self.assertEqual(p.returncode, 2)
            self.assertIn("listener[1].key", p.stderr)
            self.assertNotIn("s3cret", p.stderr)

    def test_version_is_printed_without_starting(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([PECD, "--version", "--data-dir", tmp], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"^pecd \d+\.\d+\.\d+\nallocator: .+\n$")
            self.assertEqual(os.listdir(tmp), [])  # nothing created, nothing started
            # The allocator the build chose is the one malloc() uses (jemalloc by default,
            # the C library's under the sanitizers).
            with open(os.path.join(BINARY_DIR, "CMakeCache.txt")) as f:
                jemalloc = re.search(r"^PECD_JEMALLOC:BOOL=(ON|OFF)$", f.read(), re.M).group(1) == "ON"
            allocator = p.stdout.splitlines()[1]
            if jemalloc:
                self.assertRegex(allocator, r"^allocator: jemalloc \d+\.\d+\.\d+")
            else:
                self.assertEqual(allocator, "allocator: the C library's malloc")

    def test_listeners_file_describes_every_listener(self):
        inst = PecdInstance().start()
        try:
            with open(os.path.join(inst.data_dir, "listeners.json")) as f:
                doc = json.load(f)
            self.assertEqual(doc["pid"], inst.proc.pid)
            modes = {l["name"]: l["tls"] for l in doc["listeners"]}
            self.assertEqual(modes, {"mx": "starttls", "submission": "starttls-required", "submissions": "implicit"})
            for l in doc["listeners"]:
                self.assertEqual(l["address"], "127.0.0.1")
                self.assertGreater(l["port"], 0)
                socket.create_connection(("127.0.0.1", l["port"]), timeout=3).close()  # it listens
            banner = raw_dialog(inst.port("mx"), [b"QUIT\r\n"])
            self.assertTrue(banner.startswith("220 "), banner)
        finally:
            inst.cleanup()
        self.assertFalse(os.path.exists(os.path.join(inst.data_dir, "listeners.json")))

    def test_header_block_over_the_limit_is_refused(self):
        inst = configured_instance("[limits]\nheader_size = 4096\n",
                                   listeners='[[listener]]\nname = "mx"\nport = 0\ntls = "none"\n',
                                   mailboxes={"alice@pec.localhost": "pw-alice-1"})
        inst.start()
        try:
            big = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 80) for i in range(80))
            out = raw_dialog(inst.port("mx"), [b"EHLO c\r\n", b"MAIL FROM:<x@ext.test>\r\n",
                                               b"RCPT TO:<alice@pec.localhost>\r\n", b"DATA\r\n",
                                               b"Subject: big\r\n" + big + b"\r\nbody\r\n.\r\n", b"QUIT\r\n"])
            self.assertIn("552 5.3.4 Error: message header too large", out)
            small = raw_dialog(inst.port("mx"), [b"EHLO c\r\n", b"MAIL FROM:<x@ext.test>\r\n",
                                                 b"RCPT TO:<alice@pec.localhost>\r\n", b"DATA\r\n",
                                                 b"Subject: small\r\n\r\nbody\r\n.\r\n", b"QUIT\r\n"])
            self.assertIn("250 2.0.0", small)
        finally:
            inst.cleanup()

    def test_tls13_only_refuses_tls12(self):
        inst = configured_instance('[tls]\nmin_version = "1.3"\n')
        inst.start()
        try:
            def handshake(flag):
                p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % inst.port("mx"),
                                    "-starttls", "smtp", flag], input="QUIT\n", capture_output=True, text=True,
                                   timeout=30)
                return p.returncode, p.stdout + p.stderr
            rc13, out13 = handshake("-tls1_3")
            self.assertEqual(rc13, 0, out13)
            self.assertIn("TLSv1.3", out13)
            rc12, out12 = handshake("-tls1_2")
            self.assertNotEqual(rc12, 0, out12)
            # The log says why, so the operator can tell a peer on an old TLS from a broken one.
            deadline = time.monotonic() + 10
            while "handshake failed" not in inst.read_log() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertIn("mx STARTTLS handshake failed from [127.0.0.1]: unsupported protocol", inst.read_log())
        finally:
            inst.cleanup()

    def test_listener_certificate_expiry_is_logged(self):
        with tempfile.TemporaryDirectory() as tmp:
            key, cert = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "5", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=60)
            inst = configured_instance('[tls]\ncertificate = "%s"\nkey = "%s"\n' % (cert, key))
            inst.start()
            try:
                log = inst.read_log()
                self.assertRegex(log, r"warn.*listener certificate .*c\.pem expires in [45] days")
            finally:
                inst.cleanup()

    def test_pec_signing_certificate_expiry_is_logged(self):
        # Once the signing certificate expires, nothing the provider signs verifies at the
        # other providers: its expiry is announced like a listener's. The [pec] section
        # names no domain: the provider's domain is the first one served.
        with tempfile.TemporaryDirectory() as tmp:
            key, cert = os.path.join(tmp, "s.key"), os.path.join(tmp, "s.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "5", "-subj", "/CN=Gestore Prova"], check=True, capture_output=True, timeout=60)
            inst = configured_instance(
                '[pec]\nprovider_name = "Gestore Prova"\nsigning_certificate = "%s"\nsigning_key = "%s"\n'
                'trust_anchors = "%s"\n[log]\nenabled = false\n[antivirus]\nenabled = false\n' % (cert, key, cert))
            inst.start()
            try:
                log = inst.read_log()
                self.assertRegex(log, r"warn.*pec: signing certificate .*s\.pem expires in [45] days")
                self.assertNotIn("message ids need a provider mail domain", log)
            finally:
                inst.cleanup()

    def test_certificate_validity_at_its_ends(self):
        # RFC 5280 4.1.2.5: 99991231235959Z is the notAfter of a certificate with no
        # well-defined expiration. Past the system clock's range (2262), it once wrapped
        # into 1816: `cert show` and --check-config called it expired 76 953 days ago.
        with tempfile.TemporaryDirectory() as tmp:
            key, csr, cert = (os.path.join(tmp, n) for n in ("k.pem", "r.csr", "c.pem"))
            subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                           check=True, capture_output=True, timeout=60)
            os.mkdir(os.path.join(tmp, "ca"))
            open(os.path.join(tmp, "ca", "index.txt"), "w").close()
            with open(os.path.join(tmp, "ca", "serial"), "w") as f:
                f.write("01\n")
            with open(os.path.join(tmp, "ca.cnf"), "w") as f:
                f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = {t}/ca/index.txt\nnew_certs_dir = {t}/ca\n"
                        "serial = {t}/ca/serial\nunique_subject = no\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n"
                        .format(t=tmp))

            def issue(out, start, end):
                subprocess.run(["openssl", "ca", "-batch", "-config", os.path.join(tmp, "ca.cnf"), "-selfsign",
                                "-keyfile", key, "-in", csr, "-out", out, "-startdate", start, "-enddate", end],
                               check=True, capture_output=True, timeout=60)

            def checked(inst):
                return subprocess.run([PECD, "--config", inst.config, "--check-config"], capture_output=True,
                                      text=True, timeout=30)

            issue(cert, "20240101000000Z", "99991231235959Z")

            shown = subprocess.run([PECCTL, "cert", "show", cert], capture_output=True, text=True, timeout=30)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn("2024-01-01T00:00:00Z .. 9999-12-31T23:59:59Z", shown.stdout)
            self.assertNotIn("expired", shown.stderr)
            shown = subprocess.run([PECCTL, "cert", "show", "--json", cert], capture_output=True, text=True,
                                   timeout=30)
            listed = json.loads(shown.stdout)
            self.assertEqual(listed[0]["not_after"], "9999-12-31T23:59:59Z")
            self.assertGreater(listed[0]["days_to_expiry"], 2_900_000)

            inst = configured_instance('[tls]\ncertificate = "%s"\nkey = "%s"\n' % (cert, key))
            try:
                p = checked(inst)
                self.assertEqual(p.returncode, 0, p.stderr)
                inst.start()
                log = inst.read_log()
                self.assertRegex(log, r"certificate .*c\.pem valid for 29\d{5} more days")
                self.assertNotIn("expires in -", log)
            finally:
                inst.cleanup()

            # A certificate whose validity has not begun is named with its start day.
            later = os.path.join(tmp, "later.pem")
            issue(later, "20990101000000Z", "21000101000000Z")
            shown = subprocess.run([PECCTL, "cert", "show", later], capture_output=True, text=True, timeout=30)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn("WARNING: CN=localhost is not valid until 2099-01-01T00:00:00Z", shown.stderr)
            inst = configured_instance('[tls]\ncertificate = "%s"\nkey = "%s"\n' % (later, key))
            try:
                p = checked(inst)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("tls.certificate: %s: the certificate is not valid until 2099-01-01T00:00:00Z" % later,
                              p.stderr)
            finally:
                inst.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
