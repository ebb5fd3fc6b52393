"""End-to-end delivery through the real daemon: a message sent with smtplib on the MX
port (plain and over STARTTLS) or on submission reaches the local mailbox, and
`pecctl mailbox read` returns it byte for byte: our Received: line, then exactly the
bytes the client sent (dot-stuffing undone, 8-bit octets and long lines intact)."""
import json
import re
import smtplib
import ssl
import subprocess
import time
import unittest

from pecd_harness import PECCTL, PecdTestCase

# CRLF only (the server refuses bare LF/CR); leading dots, a lone dot line, 8-bit octets,
# trailing blanks and a 990-octet line must all come back unchanged.
BODY = (b"From: Sender <sender@external.test>\r\n"
        b"To: alice@pec.localhost\r\n"
        b"Subject: %s\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b".leading dot\r\n"
        b".\r\n"
        b"..two dots\r\n"
        b"caf\xe9 \xe0 la cr\xe8me  \t\r\n"
        + b"x" * 990 + b"\r\n"
        b"\r\n"
        b"last line\r\n")


def mailbox_ids(pecd, address):
    out = pecd.pecctl("mailbox", "read", address, "--json").stdout
    return [m["id"] for m in json.loads(out)]


def read_message(pecd, address, mid):
    r = subprocess.run([PECCTL, "mailbox", "read", address, str(mid), "--data-dir", pecd.data_dir],
                       capture_output=True, check=True, timeout=60)
    return r.stdout


def wait_for_message(pecd, address, needle, seconds=20):
    """Polls the mailbox (bounded) until a message containing needle is there."""
    deadline = time.monotonic() + seconds
    seen = set()
    while time.monotonic() < deadline:
        for mid in mailbox_ids(pecd, address):
            if mid in seen:
                continue
            data = read_message(pecd, address, mid)
            if needle in data:
                return data
            seen.add(mid)
        time.sleep(0.2)
    raise AssertionError("%r never reached %s; queue:\n%s\nlog:\n%s" % (
        needle, address, pecd.pecctl("queue", "list", check=False).stdout, pecd.read_log()[-3000:]))


def split_received(stored):
    """Splits the stored bytes into our leading Received: header and the rest."""
    m = re.match(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", stored)
    assert m, stored[:200]
    return m.group(0), stored[m.end():]


class MxDeliveryTest(PecdTestCase):
    def test_plain_mx_message_is_stored_byte_exact(self):
        body = BODY % b"plain-delivery"
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            s.ehlo("client.test")
            self.assertEqual(s.sendmail("sender@external.test", ["alice@pec.localhost"], body), {})
        stored = wait_for_message(self.pecd, "alice@pec.localhost", b"Subject: plain-delivery")
        received, rest = split_received(stored)
        self.assertEqual(rest, body)
        self.assertRegex(received, rb"^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n"
                                   rb"\tby localhost \(pecd\) with ESMTP id \w+\r\n"
                                   rb"\tfor <alice@pec\.localhost>; [^\r\n]+\r\n$")

    def test_starttls_message_records_protocol_and_cipher(self):
        body = BODY % b"tls-delivery"
        ctx = ssl.create_default_context(cafile=self.pecd.ca_file)
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20) as s:
            s.starttls(context=ctx)
            s.ehlo("client.test")
            version, cipher = s.sock.version(), s.sock.cipher()[0]
            self.assertEqual(s.sendmail("sender@external.test", ["alice@pec.localhost"], body), {})
        stored = wait_for_message(self.pecd, "alice@pec.localhost", b"Subject: tls-delivery")
        received, rest = split_received(stored)
        self.assertEqual(rest, body)
        self.assertRegex(received, rb"^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n"
                                   rb"\tby localhost \(pecd\) with ESMTPS id \w+\r\n"
                                   rb"\t\(using " + re.escape(version.encode()) + rb" with cipher " +
                         re.escape(cipher.encode()) + rb"\)\r\n"
                                   rb"\tfor <alice@pec\.localhost>; [^\r\n]+\r\n$")

    def test_submission_to_two_local_mailboxes(self):
        creds = self.pecd.credentials()
        alice, bob = "alice@pec.localhost", "bob@pec.localhost"
        body = BODY.replace(b"sender@external.test", alice.encode()) % b"submitted-delivery"
        ctx = ssl.create_default_context(cafile=self.pecd.ca_file)
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20) as s:
            s.starttls(context=ctx)
            s.login(alice, creds[alice])
            self.assertEqual(s.sendmail(alice, [alice, bob], body), {})
        for box in (alice, bob):
            stored = wait_for_message(self.pecd, box, b"Subject: submitted-delivery")
            received, rest = split_received(stored)
            self.assertEqual(rest, body, box)
            self.assertIn(b" with ESMTPSA id ", received)


if __name__ == "__main__":
    unittest.main(verbosity=2)
