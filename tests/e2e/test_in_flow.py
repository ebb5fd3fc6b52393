"""In-flow control through the real daemon ([limits] in_flow_backlog, in_flow_delay).

Provider A's scanner is a socket that takes every connection and never answers, so every
submission stays in A's queue (its access point waits for the scan) and the backlog only
grows. Once it passes in_flow_backlog, a submission still gets its 250, but only after
waiting in_flow_delay; the MX listener is not paced, and nothing is refused or lost.
"""
import os
import smtplib
import socket
import ssl
import tempfile
import threading
import time
import unittest

from pec_network import PecNetwork

BACKLOG = 2
DELAY_MS = 1500


class SilentScanner:
    """A clamd socket that accepts connections and never answers."""

    def __init__(self, directory):
        self.socket = os.path.join(directory, "silent-clamd.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.socket)
        self.server.listen(64)
        self.held = []
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.server.close()
        for c in self.held:
            c.close()


def message(sender, rcpt, n):
    return ("From: %s\r\nTo: %s\r\nSubject: carico %d\r\nMessage-ID: <flow-%d.%d@client.test>\r\n"
            "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\nTesto.\r\n" % (sender, rcpt, n, n, time.monotonic_ns()))


class InFlowControl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pecd-inflow-")
        cls.scanner = SilentScanner(cls.tmp.name)
        cls.net = PecNetwork(cls.tmp.name, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], cls.scanner)
        cls.a, cls.b = cls.net.providers
        cls.a.antivirus_toml = "timeout = 30\n"
        cls.a.extra_toml = "[limits]\nin_flow_backlog = %d\nin_flow_delay = %d\n" % (BACKLOG, DELAY_MS)
        cls.net.prepare()
        cls.alice = cls.a.add_mailbox("alice")
        cls.anna = cls.a.add_mailbox("anna")
        cls.bob = cls.b.add_mailbox("bob")
        cls.net.start()

    @classmethod
    def tearDownClass(cls):
        cls.scanner.stop()  # the waiting scans fail now: the messages are deferred, not lost
        cls.net.stop()
        cls.tmp.cleanup()

    def test_submissions_wait_once_the_backlog_passes_the_limit_and_mx_does_not(self):
        ctx = ssl.create_default_context(cafile=self.net.tls_ca)
        took = []
        with smtplib.SMTP("127.0.0.1", self.a.submission_port, timeout=30) as s:
            s.starttls(context=ctx)
            s.login(self.alice, self.a.passwords[self.alice])
            for n in range(BACKLOG + 4):
                began = time.monotonic()
                refused = s.sendmail(self.alice, [self.bob], message(self.alice, self.bob, n))
                took.append(time.monotonic() - began)
                self.assertEqual(refused, {})
        # The first ones find an empty queue; the last ones find more than BACKLOG messages
        # waiting for the scanner, and each waits the whole delay before its 250.
        self.assertLess(took[0], 1.0, took)
        for t in took[-2:]:
            self.assertGreaterEqual(t, DELAY_MS / 1000.0 - 0.1, took)
            self.assertLess(t, DELAY_MS / 1000.0 + 5.0, took)

        # Mail from other servers is not paced, however long A's backlog.
        began = time.monotonic()
        self.a.send_mx("someone@example.org", [self.anna], message("someone@example.org", self.anna, 99))
        self.assertLess(time.monotonic() - began, 1.0)

        # Nothing was refused or dropped: every submission is in A's queue.
        queued = self.a.pecctl("queue", "list").stdout
        self.assertGreaterEqual(queued.count(self.bob), BACKLOG + 4, queued)
        self.assertIn("in-flow control", self.a.read_log())


if __name__ == "__main__":
    unittest.main()
