"""A full disk under the real daemon: the spool on a small tmpfs mounted by the test
(the tests run as root). While it is full the client gets a 4xx (at DATA when the free
space is below [limits] spool_min_free, after the data when a write fails mid-message),
nothing half-written stays in the spool, other sessions go on, and once space is freed
the same server accepts and delivers again."""
import os
import smtplib
import subprocess
import time
import unittest

from pecd_harness import configured_instance
from test_mx_delivery import wait_for_message

MIN_FREE = 1 << 20


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def spool_files(spool):
    return [os.path.join(d, f) for d, _, files in os.walk(os.path.join(spool, "msg")) for f in files]


class DiskFullTest(unittest.TestCase):
    def setUp(self):
        self.pecd = configured_instance("[limits]\nspool_min_free = %d\n" % MIN_FREE)
        self.spool = os.path.join(self.pecd.data_dir, "spool")
        os.makedirs(self.spool, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.spool], capture_output=True)
        self.assertEqual(r.returncode, 0, "cannot mount a tmpfs for the disk-full test: %r" % r.stderr)
        self.addCleanup(self.pecd.cleanup)  # last: removes the data directory

        def unmount():
            self.pecd.stop()
            subprocess.run(["umount", self.spool], capture_output=True, timeout=30)
        self.addCleanup(unmount)
        self.pecd.start()
        self.filler = os.path.join(self.spool, "filler")

    def fill(self, leave):
        """Grows the filler file until about `leave` bytes are free in the spool."""
        with open(self.filler, "ab") as f:
            need = free_bytes(self.spool) - leave
            while need > 0:
                n = min(need, 1 << 20)
                f.write(b"\0" * n)
                need -= n
            f.flush()
            os.fsync(f.fileno())

    def send(self, subject, size=1000):
        body = ("Subject: %s\r\n\r\n" % subject).encode() + (b"z" * 998 + b"\r\n") * (size // 1000)
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=30) as s:
            # No SIZE parameter, so a message larger than the free space reaches the disk.
            s.ehlo("client.test")
            self.assertEqual(s.mail("sender@external.test")[0], 250)
            self.assertEqual(s.rcpt("alice@pec.localhost")[0], 250)
            try:
                return s.data(body)
            except smtplib.SMTPDataError as e:
                return e.smtp_code, e.smtp_error

    def test_full_spool_refuses_with_4xx_then_recovers(self):
        self.pecd.pecctl("mailbox", "add", "alice@pec.localhost")
        # Below the reserve: refused before any data is taken.
        self.fill(MIN_FREE // 2)
        code, text = self.send("while-full")
        self.assertTrue(400 <= code < 500, (code, text))
        self.assertEqual(spool_files(self.spool), [])

        # Above the reserve, but the message does not fit: the write fails mid-message.
        os.truncate(self.filler, os.path.getsize(self.filler) - 2 * MIN_FREE)
        self.assertGreater(free_bytes(self.spool), MIN_FREE)
        code, text = self.send("too-big-for-disk", size=3 * MIN_FREE)
        self.assertTrue(400 <= code < 500, (code, text))
        self.assertEqual(spool_files(self.spool), [], "half-written message left in the spool")

        # The server still serves, and accepts again once space is freed.
        with smtplib.SMTP("127.0.0.1", self.pecd.port("mx"), timeout=30) as s:
            self.assertEqual(s.noop()[0], 250)
        os.unlink(self.filler)
        code, text = self.send("after-freeing", size=3 * MIN_FREE)
        self.assertEqual(code, 250, text)
        stored = wait_for_message(self.pecd, "alice@pec.localhost", b"Subject: after-freeing")
        self.assertTrue(stored.endswith((b"z" * 998 + b"\r\n") * 3 * (MIN_FREE // 1000)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
