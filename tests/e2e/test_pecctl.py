"""pecctl through the real binary beside a running pecd: domains (add, list, routes),
mailboxes (add, list, show, passwords, the store check), the queue (list, show, retry) and
reading a mailbox;
errors exit with status 2 and a precise message, passwords are never printed."""
import json
import smtplib
import ssl
import subprocess
import unittest

from pecd_harness import PECCTL, configured_instance


class PecctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pecd = configured_instance(mailboxes={"alice@pec.localhost": "first-password"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.pecd.cleanup()

    def ctl(self, *args, input=None):
        return self.pecd.pecctl(*args, input=input)

    def login(self, user, password):
        ctx = ssl.create_default_context(cafile=self.pecd.ca_file)
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20) as s:
            s.starttls(context=ctx)
            try:
                return s.login(user, password)[0]
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code

    def test_domains(self):
        out = self.ctl("domain", "add", "other.test").stdout
        self.assertIn("domain other.test added (local)", out)
        self.ctl("domain", "add", "relay.test", "--route", "smtp:127.0.0.1:2")
        domains = {d["name"]: d["route"] for d in json.loads(self.ctl("domain", "list", "--json").stdout)}
        self.assertEqual(domains["pec.localhost"], "local")
        self.assertEqual(domains["other.test"], "local")
        self.assertEqual(domains["relay.test"], "smtp:127.0.0.1:2")
        self.assertIn("other.test\tlocal", self.ctl("domain", "list").stdout)
        r = self.pecd.pecctl("domain", "add", "bad.test", "--route", "carrier-pigeon", check=False)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("pecctl: ", r.stderr)

    def test_mailboxes_and_passwords(self):
        out = self.ctl("mailbox", "add", "Dave@PEC.localhost", "--quota", "5000000", "--password-stdin",
                       input="dave-password-1\n")
        self.assertIn("mailbox dave@pec.localhost created", out.stdout)
        self.assertNotIn("dave-password-1", out.stdout + out.stderr)
        boxes = {m["address"]: m for m in json.loads(self.ctl("mailbox", "list", "--json").stdout)}
        self.assertEqual(boxes["dave@pec.localhost"]["quota_bytes"], 5000000)
        self.assertTrue(boxes["dave@pec.localhost"]["has_password"])
        self.assertIn("alice@pec.localhost", boxes)
        show = json.loads(self.ctl("mailbox", "show", "dave@pec.localhost", "--json").stdout)
        self.assertEqual(show["state"], "active")
        # The running daemon sees the new account and, after passwd, only the new password.
        self.assertEqual(self.login("dave@pec.localhost", "dave-password-1"), 235)
        r = self.ctl("mailbox", "passwd", "dave@pec.localhost", input="dave-password-2\n")
        self.assertNotIn("dave-password-2", r.stdout + r.stderr)
        self.assertEqual(self.login("dave@pec.localhost", "dave-password-2"), 235)
        self.assertEqual(self.login("dave@pec.localhost", "dave-password-1"), 535)
        for args in (("mailbox", "add", "x@unknown-domain.test"), ("mailbox", "passwd", "nobody@pec.localhost"),
                     ("mailbox", "show", "nobody@pec.localhost")):
            r = self.pecd.pecctl(*args, input="pw\n", check=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertRegex(r.stderr, r"^pecctl: .+", args)

    def test_queue_and_reading_a_mailbox(self):
        self.ctl("domain", "add", "down.test", "--route", "smtp:127.0.0.1:1")
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20) as s:
            s.starttls(context=ssl.create_default_context(cafile=self.pecd.ca_file))
            s.login("alice@pec.localhost", "first-password")
            s.sendmail("alice@pec.localhost", ["someone@down.test", "alice@pec.localhost"],
                       b"Subject: queued\r\n\r\nwaits for down.test\r\n")
        # The local copy is delivered; the one for the unreachable next hop waits.
        from test_mx_delivery import wait_for_message
        stored = wait_for_message(self.pecd, "alice@pec.localhost", b"Subject: queued")
        self.assertTrue(stored.endswith(b"Subject: queued\r\n\r\nwaits for down.test\r\n"))
        listing = self.ctl("mailbox", "read", "alice@pec.localhost").stdout
        self.assertRegex(listing, r"\d+\t\S.*<alice@pec\.localhost>\t\d+ bytes")
        queued = json.loads(self.ctl("queue", "list", "--json").stdout)
        mine = [m for m in queued if any(r["address"] == "someone@down.test" for r in m["recipients"])]
        self.assertEqual(len(mine), 1, queued)
        shown = json.loads(self.ctl("queue", "show", mine[0]["id"], "--json").stdout)
        self.assertEqual(shown["from"], "alice@pec.localhost")
        self.assertEqual(shown["auth_user"], "alice@pec.localhost")
        self.assertIn("1 message(s) queued", self.ctl("queue", "list").stdout)
        r = subprocess.run([PECCTL, "queue", "show", "nonexistent", "--data-dir", self.pecd.data_dir],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no queued message nonexistent", r.stderr)

        # "Retry now": the failed first attempt waits minutes for its retry; after
        # `queue retry` the daemon tries again within its one-second poll.
        import time

        def attempts():
            shown = json.loads(self.ctl("queue", "show", mine[0]["id"], "--json").stdout)
            return [x["attempts"] for x in shown["recipients"] if x["address"] == "someone@down.test"][0]
        deadline = time.monotonic() + 30
        while attempts() < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        first = attempts()
        self.assertGreaterEqual(first, 1)
        time.sleep(1.5)
        self.assertEqual(attempts(), first, "no retry before its time")
        self.assertIn("1 recipient(s) due now", self.ctl("queue", "retry", mine[0]["id"]).stdout)
        deadline = time.monotonic() + 30
        while attempts() == first and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(attempts(), first + 1)
        for args, why in ((["queue", "retry"], "or give --all"), (["queue", "retry", "nonexistent"],
                                                                  "no queued message nonexistent")):
            r = subprocess.run([PECCTL, *args, "--data-dir", self.pecd.data_dir], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 2)
            self.assertIn(why, r.stderr)

    def test_json_listings_survive_bytes_that_are_not_utf8(self):
        # A sender's address may carry 8-bit bytes in a quoted local part; one such message
        # must not make the mailbox's JSON listing fail.
        from pecd_harness import raw_dialog
        from test_mx_delivery import wait_for_message
        self.ctl("mailbox", "add", "latin@pec.localhost", "--password-stdin", input="pw\n")
        reply = raw_dialog(self.pecd.port("mx"), [
            b"EHLO client.test\r\n", b'MAIL FROM:<"caf\xe9"@x.example>\r\n', b"RCPT TO:<latin@pec.localhost>\r\n",
            b"DATA\r\n", b"Subject: latin-1 sender\r\n\r\nbody\r\n.\r\n", b"QUIT\r\n"])
        self.assertIn("250 2.0.0", reply)
        wait_for_message(self.pecd, "latin@pec.localhost", b"Subject: latin-1 sender")
        r = subprocess.run([PECCTL, "mailbox", "read", "latin@pec.localhost", "--json", "--data-dir",
                            self.pecd.data_dir], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"caf\ufffd"@x.example', [m["from"] for m in json.loads(r.stdout)])
        # The text listing shows the same, and a C1 control (CSI, U+009B) as '?': a
        # sender does not drive the operator's terminal.
        reply = raw_dialog(self.pecd.port("mx"), [
            b"EHLO client.test\r\n", b'MAIL FROM:<"a\xc2\x9b2Jb"@x.example>\r\n', b"RCPT TO:<latin@pec.localhost>\r\n",
            b"DATA\r\n", b"Subject: control sender\r\n\r\nbody\r\n.\r\n", b"QUIT\r\n"])
        self.assertIn("250 2.0.0", reply)
        wait_for_message(self.pecd, "latin@pec.localhost", b"Subject: control sender")
        r = subprocess.run([PECCTL, "mailbox", "read", "latin@pec.localhost", "--data-dir", self.pecd.data_dir],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = r.stdout.decode("utf-8")  # valid UTF-8 throughout
        self.assertIn('<"caf\ufffd"@x.example>', text)
        self.assertIn('<"a?2Jb"@x.example>', text)
        self.assertNotIn("\x9b", text)

    def test_store_check_after_a_bad_restore(self):
        import os
        import time
        from test_mx_delivery import wait_for_message
        self.ctl("mailbox", "add", "checked@pec.localhost", "--password-stdin", input="pw\n")
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=20) as s:
            s.starttls(context=ssl.create_default_context(cafile=self.pecd.ca_file))
            s.login("checked@pec.localhost", "pw")
            s.sendmail("checked@pec.localhost", ["checked@pec.localhost"], b"Subject: kept\r\n\r\nbody\r\n")
        wait_for_message(self.pecd, "checked@pec.localhost", b"Subject: kept")
        report = json.loads(self.ctl("mailbox", "check", "--json").stdout)
        self.assertTrue(report["clean"], report)
        self.assertGreaterEqual(report["messages"], 1)

        # A restore that brought the database back without one body, and a body without its row.
        mailboxes = os.path.join(self.pecd.data_dir, "mailboxes")
        msg_id = json.loads(self.ctl("mailbox", "read", "checked@pec.localhost", "--json").stdout)[0]["id"]
        copies = []
        for d, _, files in os.walk(mailboxes):
            for name in files:
                with open(os.path.join(d, name), "rb") as f:
                    if b"Subject: kept" in f.read():
                        copies.append(os.path.join(d, name))
        self.assertEqual(len(copies), 1, "the one stored copy")
        os.unlink(copies[0])
        os.makedirs(os.path.join(mailboxes, "00"), exist_ok=True)
        with open(os.path.join(mailboxes, "00", "m999-orphan"), "wb") as f:
            f.write(b"a body without a row")
        time.sleep(1.5)
        r = subprocess.run([PECCTL, "mailbox", "check", "--grace", "1", "--data-dir", self.pecd.data_dir],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("missing: message %d of checked@pec.localhost" % msg_id, r.stdout)
        self.assertIn("orphan: m999-orphan", r.stdout)
        self.assertTrue(os.path.exists(os.path.join(mailboxes, "00", "m999-orphan")), "a check removes nothing")
        r = subprocess.run([PECCTL, "mailbox", "check", "--grace", "1", "--remove-orphans", "--json", "--data-dir",
                            self.pecd.data_dir], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, "the lost body is still reported")
        report = json.loads(r.stdout)
        self.assertEqual(report["orphans"], ["m999-orphan"])
        self.assertEqual(report["orphans_removed"], 1)
        self.assertEqual([m["message_id"] for m in report["missing"]], [msg_id])
        self.assertFalse(os.path.exists(os.path.join(mailboxes, "00", "m999-orphan")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
