#!/usr/bin/env python3
"""test_smtp_crash - kill -9 of the real pecd while many SMTP clients send; RPO 0

Eight smtplib clients send messages concurrently to pecd's mx listener, each message
carrying a token. pecd is SIGKILLed at several points mid-stream and restarted on the
same data directory. At the end pecd runs until its queue is empty, and the mailboxes
(read with `pecctl mailbox read`) must hold every message that got a 250 exactly once,
complete; no message may be present in part.
"""
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../e2e"))
from pecd_harness import PECCTL, PecdInstance  # noqa: E402

BOXES = ["r%d@crash.test" % i for i in range(4)]


def body(token):
    lines = ["token %d line %d ................................" % (token, i) for i in range(20 + token % 150)]
    return ("From: crash@sender.test\r\nTo: r@crash.test\r\nSubject: crash %d\r\nX-Token: %d\r\n\r\n" % (
        token, token) + "\r\n".join(lines) + "\r\n.leading dot\r\nend %d\r\n" % token)


def recipients(token):
    r = [BOXES[token % 4]]
    if token % 3 == 0:
        r.append(BOXES[(token + 1) % 4])
    return r


def pecctl(data_dir, *args):
    return subprocess.run([PECCTL, *args, "--data-dir", data_dir], check=True, capture_output=True).stdout


class Sender:
    """Threads sending tokens first, first+1, ... until stopped; records the 250s."""

    def __init__(self, port, first, threads=8):
        self.port = port
        self.next = first
        self.lock = threading.Lock()
        self.acked = set()
        self.stop = False
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def take(self):
        with self.lock:
            t = self.next
            self.next += 1
            return t

    def run(self):
        while not self.stop:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
                    while not self.stop:
                        token = self.take()
                        s.sendmail("crash@sender.test", recipients(token), body(token).encode())
                        with self.lock:
                            self.acked.add(token)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)  # the server died or refused: no 250, nothing promised

    def count(self):
        with self.lock:
            return len(self.acked)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(timeout=15)


class SmtpCrashTest(unittest.TestCase):
    def test_kill_nine_mid_stream_loses_and_duplicates_nothing(self):
        with tempfile.TemporaryDirectory(prefix="pecd-smtp-crash-") as data:
            pecctl(data, "domain", "add", "crash.test")
            for b in BOXES:
                pecctl(data, "mailbox", "add", b)
            acked = set()
            for round_no, kill_after in enumerate([30, 120, 10, 60]):
                pecd = PecdInstance(data_dir=data).start()
                sender = Sender(pecd.port("mx"), round_no * 100000)
                deadline = time.monotonic() + 60
                while sender.count() < kill_after and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(pecd.proc.pid, signal.SIGKILL)
                pecd.proc.wait()
                pecd.stop()  # closes its log; the process is already gone
                sender.finish()
                self.assertGreaterEqual(sender.count(), kill_after, "pecd too slow in round %d" % round_no)
                acked |= sender.acked
            pecd = PecdInstance(data_dir=data).start()
            try:
                db = sqlite3.connect(os.path.join(data, "pecd.db"), timeout=30)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if db.execute("SELECT count(*) FROM queue_messages").fetchone()[0] == 0:
                        break
                    time.sleep(0.1)
                self.assertEqual(db.execute("SELECT count(*) FROM queue_messages").fetchone()[0], 0,
                                 "queue did not drain")
            finally:
                pecd.stop()
            found = {b: [] for b in BOXES}
            for b in BOXES:
                listing = pecctl(data, "mailbox", "read", b).decode()
                for line in listing.splitlines():
                    msg_id = line.split("\t")[0]
                    raw = pecctl(data, "mailbox", "read", b, msg_id).decode()
                    token = int(raw.split("X-Token: ", 1)[1].split("\r\n", 1)[0])
                    self.assertTrue(raw.endswith(body(token)), "incomplete message %d in %s" % (token, b))
                    found[b].append(token)
            for token in acked:
                for b in recipients(token):
                    self.assertEqual(found[b].count(token), 1, "acknowledged %d in %s" % (token, b))
            for b, tokens in found.items():
                self.assertEqual(len(tokens), len(set(tokens)), "duplicates in %s" % b)
            print("acknowledged %d messages over 4 kills" % len(acked), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
