"""End-to-end tests of pecd's SMTP server through real clients: Python's smtplib,
swaks and openssl s_client, against the real daemon on loopback."""
import os
import re
import smtplib
import ssl
import subprocess
import threading
import time
import unittest

from pecd_harness import PecdTestCase, raw_dialog

MSG = "From: {f}\r\nTo: {t}\r\nSubject: {s}\r\nMessage-ID: <{s}@test>\r\n\r\nHello from the test.\r\n"


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def s_client(port, *args, starttls=True, send=b"QUIT\r\n", timeout=20):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    cmd += list(args)
    return subprocess.run(cmd, input=send, capture_output=True, timeout=timeout)


class SmtpServerTest(PecdTestCase):
    def setUp(self):
        self.creds = self.pecd.credentials()
        self.alice, self.bob = sorted(self.creds)[:2]

    # --- submission: STARTTLS + AUTH + send ---------------------------------------------
    def test_smtplib_submission_starttls_auth_send(self):
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20) as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"), "AUTH must not be offered before TLS")
            s.starttls(context=tls_context(self.pecd.ca_file))
            s.ehlo("client.test")
            self.assertIn("PLAIN", s.esmtp_features.get("auth", "").upper())
            s.login(self.alice, self.creds[self.alice])
            refused = s.sendmail(self.alice, [self.bob], MSG.format(f=self.alice, t=self.bob, s="sub1"))
            self.assertEqual(refused, {})

    def test_implicit_tls_submission(self):
        with smtplib.SMTP_SSL("127.0.0.1", self.pecd.port("submissions"), timeout=20,
                              context=tls_context(self.pecd.ca_file)) as s:
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"))
            s.login(self.alice, self.creds[self.alice])
            self.assertEqual(s.sendmail(self.alice, [self.bob], MSG.format(f=self.alice, t=self.bob, s="sub2")), {})

    def test_wrong_password_refused(self):
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20) as s:
            s.starttls(context=tls_context(self.pecd.ca_file))
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login(self.alice, "not-the-password")
            self.assertEqual(cm.exception.smtp_code, 535)

    def test_submission_requires_tls_before_mail(self):
        out = raw_dialog(self.pecd.port("submission"), [b"EHLO c\r\n", b"MAIL FROM:<%s>\r\n" % self.alice.encode(), b"QUIT\r\n"])
        self.assertIn("530 5.7.0 Must issue a STARTTLS command first", out)

    # --- MX: plain delivery to a local mailbox, no relay -----------------------------------
    def test_mx_plain_to_local_mailbox(self):
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            refused = s.sendmail("someone@external.test", [self.bob],
                                 MSG.format(f="someone@external.test", t=self.bob, s="mx1"))
            self.assertEqual(refused, {})

    def test_mx_relay_without_auth_refused(self):
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                s.sendmail("someone@external.test", ["victim@elsewhere.test"], "Subject: x\r\n\r\nx\r\n")
            code, text = cm.exception.recipients["victim@elsewhere.test"]
            self.assertEqual(code, 554)
            self.assertIn(b"relay access denied", text)

    def test_mx_unknown_local_user(self):
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                s.sendmail("someone@external.test", ["nobody@pec.localhost"], "Subject: x\r\n\r\nx\r\n")
            self.assertEqual(cm.exception.recipients["nobody@pec.localhost"][0], 550)

    def test_swaks_starttls_auth_send(self):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.pecd.port("submission")),
                            "--from", self.alice, "--to", self.bob, "--tls", "--tls-verify",
                            "--tls-ca-path", self.pecd.ca_file, "--tls-sni", "localhost",
                            "--auth", "PLAIN", "--auth-user", self.alice, "--auth-password",
                            self.creds[self.alice], "--header", "Subject: swaks", "--hide-all"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.pecd.port("submission")),
                            "--from", self.alice, "--to", self.bob, "--tls",
                            "--auth", "LOGIN", "--auth-user", self.alice, "--auth-password",
                            self.creds[self.alice], "--header", "Subject: swaks-login"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("235 2.7.0", r.stdout)
        self.assertIn("queued as", r.stdout)

    def test_swaks_relay_attempt_refused(self):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.pecd.port("mx")),
                            "--from", "a@external.test", "--to", "b@elsewhere.test"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("554 5.7.1", r.stdout)

    # --- TLS protocol floor -------------------------------------------------------------
    def test_tls12_and_tls13_work(self):
        for ver, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            r = s_client(self.pecd.port("mx"), ver)
            out = r.stdout.decode("latin-1")
            self.assertRegex(out, r"(Protocol\s*:\s*|New, )" + re.escape(name), ver)
            self.assertIn("Cipher is", out)
            self.assertNotIn("Cipher is (NONE)", out)
        r = s_client(self.pecd.port("submissions"), "-tls1_3", starttls=False)
        self.assertIn("TLSv1.3", r.stdout.decode("latin-1"))

    def test_tls10_and_tls11_refused(self):
        for ver in ("-tls1", "-tls1_1"):
            # SECLEVEL=0 makes the client willing; the refusal must come from the server.
            r = s_client(self.pecd.port("mx"), ver, "-cipher", "DEFAULT:@SECLEVEL=0")
            out = r.stdout.decode("latin-1") + r.stderr.decode("latin-1")
            self.assertNotEqual(r.returncode, 0, out)
            self.assertRegex(out, r"Cipher is \(NONE\)|alert|no protocols available|unsupported protocol", ver)

    def test_auth_before_starttls_not_offered_and_refused(self):
        out = raw_dialog(self.pecd.port("submission"), [b"EHLO c\r\n", b"AUTH PLAIN AGEAYg==\r\n", b"QUIT\r\n"])
        self.assertNotIn("AUTH", out.split("AUTH PLAIN")[0].split("\r\n", 1)[1])
        self.assertRegex(out, r"(530 5\.7\.0|503 5\.5\.1)")

    def test_received_header_records_tls(self):
        # The message lands in the queue; its Received: line names protocol and cipher.
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            s.starttls(context=tls_context(self.pecd.ca_file))
            s.ehlo("client.test")
            code, resp = s.mail("tls@external.test")
            s.rcpt(self.bob)
            code, resp = s.data("Subject: tls-received\r\n\r\nx\r\n")
            self.assertEqual(code, 250)
        # The Received: line's TLS details are asserted byte for byte in
        # tests/smtp/server_session_test.cpp (ReceivedRecordsTlsProtocolAndCipher).

    # --- hardening ----------------------------------------------------------------------
    def test_smuggling_payloads_do_not_split_messages(self):
        for end in (b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n"):
            out = raw_dialog(self.pecd.port("mx"), [
                b"EHLO c\r\n", b"MAIL FROM:<a@external.test>\r\n", b"RCPT TO:<%s>\r\n" % self.bob.encode(),
                b"DATA\r\n", b"Subject: first\r\n\r\nbody" + end +
                b"MAIL FROM:<spoof@pec.localhost>\r\nRCPT TO:<%s>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n" % self.bob.encode()])
            self.assertIn("521 5.5.2", out, repr(end))
            self.assertNotIn("queued as", out, repr(end))

    def test_malformed_and_overlong_then_still_serving(self):
        out = raw_dialog(self.pecd.port("mx"), [b"EHLO c\r\n", b"MAIL FROM:bad\r\n", b"X" * 5000, b"\r\n",
                                                b"RCPT TO:<a@b>\r\n", b"NOOP\r\n", b"QUIT\r\n"])
        self.assertIn("501 5.1.7", out)
        self.assertIn("500 5.5.2 Error: line too long", out)
        self.assertIn("250 2.0.0 Ok", out)
        self.assertIn("221 2.0.0 Bye", out)
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            self.assertEqual(s.noop()[0], 250)

    def test_oversized_message_refused(self):
        size_line = [l for l in raw_dialog(self.pecd.port("mx"), [b"EHLO c\r\n", b"QUIT\r\n"]).split("\r\n")
                     if "SIZE" in l][0]
        limit = int(size_line.split()[-1])
        self.assertEqual(limit, 100 * 1024 * 1024)
        out = raw_dialog(self.pecd.port("mx"), [b"EHLO c\r\n", b"MAIL FROM:<a@x.test> SIZE=%d\r\n" % (limit + 1), b"QUIT\r\n"])
        self.assertIn("552 5.3.4", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
