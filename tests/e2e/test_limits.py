"""Per-client limits of the real daemon, configured with small values in a TOML file:
connections per client address (the next one gets 421, the others keep working),
failed-AUTH rate limits per client address and per account (454 while limited, even
for the right password), and oversized messages (552) while other clients are served."""
import smtplib
import socket
import ssl
import threading
import time
import unittest

from pecd_harness import configured_instance

PASSWORDS = {"alice@pec.localhost": "alice-secret-1", "bob@pec.localhost": "bob-secret-2",
             "carol@pec.localhost": "carol-secret-3"}
LIMITS = """
[limits]
connections_per_client = 3
auth_failures_per_address = 3
auth_failures_per_account = 4
auth_failure_window = 600
message_size = 200000
"""


def banner(sock):
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\r\n"):
        more = sock.recv(4096)
        if not more:
            break
        data += more
    return data.decode("latin-1")


def command(sock, line):
    sock.sendall(line + b"\r\n")
    return banner(sock)


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pecd = configured_instance(LIMITS, mailboxes=PASSWORDS).start()
        cls.ctx = ssl.create_default_context(cafile=cls.pecd.ca_file)

    @classmethod
    def tearDownClass(cls):
        cls.pecd.cleanup()

    def connect(self, source="127.0.0.1"):
        return socket.create_connection(("127.0.0.1", self.pecd.port("mx")), timeout=10,
                                        source_address=(source, 0))

    def test_connections_per_client(self):
        held = [self.connect("127.0.0.5") for _ in range(3)]
        try:
            for s in held:
                self.assertTrue(banner(s).startswith("220 "))
            extra = self.connect("127.0.0.5")
            reply = banner(extra)
            extra.close()
            self.assertTrue(reply.startswith("421 4.7.0"), reply)
            # Another client address is not affected, and the held sessions keep working.
            other = self.connect("127.0.0.6")
            self.assertTrue(banner(other).startswith("220 "))
            other.close()
            for s in held:
                self.assertTrue(command(s, b"NOOP").startswith("250 "))
            # Once one session ends, the address may connect again (bounded wait for the
            # server to notice the close).
            command(held.pop(), b"QUIT")
            deadline = time.monotonic() + 10
            while True:
                s = self.connect("127.0.0.5")
                reply = banner(s)
                s.close()
                if reply.startswith("220 ") or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertTrue(reply.startswith("220 "), reply)
        finally:
            for s in held:
                s.close()

    def auth(self, source, user, password):
        """One AUTH PLAIN attempt on a fresh STARTTLS session; returns the reply code."""
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20,
                          source_address=(source, 0)) as s:
            s.starttls(context=self.ctx)
            s.ehlo("client.test")
            s.user, s.password = user, password
            try:
                code, _ = s.auth("PLAIN", s.auth_plain)
            except smtplib.SMTPAuthenticationError as e:
                code = e.smtp_code
            return code

    def test_auth_failures_limited_per_address(self):
        for n in range(3):
            self.assertEqual(self.auth("127.0.0.20", "nobody%d@pec.localhost" % n, "guess"), 535)
        # The address is now limited: even the right password is refused unchecked.
        self.assertEqual(self.auth("127.0.0.20", "alice@pec.localhost", PASSWORDS["alice@pec.localhost"]), 454)
        # Another address is not.
        self.assertEqual(self.auth("127.0.0.21", "alice@pec.localhost", PASSWORDS["alice@pec.localhost"]), 235)
        self.assertIn("rate limit", self.pecd.read_log())
        self.assertNotIn(PASSWORDS["alice@pec.localhost"], self.pecd.read_log())

    def test_auth_failures_limited_per_account(self):
        # One failure from each of four addresses: no address reaches its own limit.
        for n in range(4):
            self.assertEqual(self.auth("127.0.0.%d" % (30 + n), "bob@pec.localhost", "guess%d" % n), 535)
        self.assertEqual(self.auth("127.0.0.40", "bob@pec.localhost", PASSWORDS["bob@pec.localhost"]), 454)
        # The address itself is fine for another account.
        self.assertEqual(self.auth("127.0.0.40", "carol@pec.localhost", PASSWORDS["carol@pec.localhost"]), 235)

    def test_oversized_message_refused_while_others_served(self):
        # A session opened first completes its message while a big one is refused.
        other = smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=20)
        other.ehlo("other.test")
        other.mail("a@external.test")
        other.rcpt("alice@pec.localhost")
        result = {}

        def big():
            with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=30) as s:
                # No SIZE parameter: the limit must hold for the data itself.
                body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 300
                s.ehlo("big.test")
                s.mail("a@external.test")
                s.rcpt("alice@pec.localhost")
                result["code"], result["text"] = s.data(body)
                result["after"] = s.noop()[0]

        t = threading.Thread(target=big)
        t.start()
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(result.get("code"), 552, result)
        self.assertIn(b"5.3.4", result["text"])
        self.assertEqual(result["after"], 250, "the session goes on after the refusal")
        code, _ = other.data(b"Subject: small\r\n\r\nstill served\r\n")
        self.assertEqual(code, 250)
        other.quit()


if __name__ == "__main__":
    unittest.main(verbosity=2)
