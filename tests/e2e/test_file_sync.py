"""[store] file_sync through the real daemons, watched with strace.

Two providers exchange PEC messages; each pecd is traced for fsync, fdatasync and syncfs
with the file each call names (strace -y). With the default ("file") every spool file is
synced on its own. With "file_system" no spool file, message body or directory of the
spool and the mailboxes is synced on its own: the group-commit rounds call syncfs instead,
and the exchange completes as before (acceptance and delivery receipts to the sender, the
transport envelope to the recipient).
"""
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from pec_network import PecNetwork

MESSAGES = 6
# A call's first line; "<unfinished ...>" may follow when another thread's call came between.
CALL = re.compile(r"^\d+\s+(fsync|fdatasync|syncfs)\((\d+)<([^>]*)>")


class Tracer:
    """strace attached to every thread of a running pecd, writing to a file."""

    def __init__(self, pid, out):
        self.out = out
        self.proc = subprocess.Popen(["strace", "-f", "-y", "-e", "trace=fsync,fdatasync,syncfs",
                                      "-o", out, "-p", str(pid)], stderr=subprocess.PIPE, text=True)
        # "Process N attached with T threads" once every thread is traced; an error (no
        # strace, ptrace refused) ends it instead.
        said = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            said.append(line)
            if "attached" in line or not line:
                break
        if not said[-1] or "attached" not in said[-1]:
            raise AssertionError("strace did not attach: %s" % "".join(said))
        # Later notices (threads starting or ending) must not fill the pipe.
        self.drain = threading.Thread(target=self.proc.stderr.read, daemon=True)
        self.drain.start()

    def stop(self):
        self.proc.send_signal(signal.SIGINT)  # detaches; pecd goes on
        self.proc.wait(timeout=30)
        self.drain.join(timeout=10)
        self.proc.stderr.close()
        calls = []
        with open(self.out) as f:
            for line in f:
                m = CALL.match(line)
                if m:
                    calls.append((m.group(1), m.group(3)))
        return calls


def run_exchange(file_sync):
    """Runs MESSAGES exchanges between two providers with `file_sync` (None: the default);
    returns ({provider: [(call, path)]}, {provider: data_dir}, kinds in the sender's and
    the recipient's mailbox)."""
    tmp = tempfile.TemporaryDirectory(prefix="pecd-filesync-")
    net = PecNetwork(tmp.name, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], None)
    try:
        a, b = net.providers
        for p in (a, b):
            p.antivirus = False  # this test is about storage
            if file_sync:
                p.store_toml = '[store]\nfile_sync = "%s"\n' % file_sync
        net.prepare()
        alice = a.add_mailbox("alice")
        bob = b.add_mailbox("bob")
        net.start()
        tracers = {p.domain: Tracer(p.proc.pid, os.path.join(tmp.name, p.domain + ".strace")) for p in (a, b)}
        for i in range(MESSAGES):
            a.submit(alice, [bob], subject="sincronia %d" % i)
        a.wait_for(alice, 2 * MESSAGES)  # accettazione and avvenuta-consegna of each
        b.wait_for(bob, MESSAGES)
        time.sleep(0.5)  # the last receipts' queue rows are retired after their delivery
        calls = {domain: t.stop() for domain, t in tracers.items()}
        return calls, {p.domain: p.data_dir for p in (a, b)}, sorted(a.kinds(alice)), b.kinds(bob)
    finally:
        net.stop()
        tmp.cleanup()


def own_syncs(calls, data_dir):
    """fsync/fdatasync calls on a spool or mailbox file or directory of data_dir."""
    stores = (os.path.join(data_dir, "spool"), os.path.join(data_dir, "mailboxes"))
    return [c for c in calls if c[0] != "syncfs" and c[1].startswith(stores)]


class FileSync(unittest.TestCase):
    def test_by_default_each_spool_file_is_synced_on_its_own(self):
        calls, dirs, sent, received = run_exchange(None)
        self.assertEqual(sent.count("accettazione"), MESSAGES, sent)
        self.assertEqual(sent.count("avvenuta-consegna"), MESSAGES, sent)
        for domain, c in calls.items():
            self.assertEqual([x for x in c if x[0] == "syncfs"], [], domain)
        spool_files = [c for c in own_syncs(calls["a.pec.test"], dirs["a.pec.test"])
                       if c[0] == "fdatasync" and "/spool/msg/" in c[1]]
        # At least each submission and each receipt received back.
        self.assertGreaterEqual(len(spool_files), 3 * MESSAGES, calls["a.pec.test"])

    def test_file_system_sync_replaces_every_file_sync_of_the_spool_and_the_mailboxes(self):
        calls, dirs, sent, received = run_exchange("file_system")
        self.assertEqual(sent.count("accettazione"), MESSAGES, sent)
        self.assertEqual(sent.count("avvenuta-consegna"), MESSAGES, sent)
        self.assertEqual(received, ["busta-posta-certificata"] * MESSAGES)
        for domain, c in calls.items():
            self.assertEqual(own_syncs(c, dirs[domain]), [], domain)
            syncfs = [x for x in c if x[0] == "syncfs"]
            self.assertGreater(len(syncfs), 0, (domain, c))
            # On the spool's directory (the mailboxes share its file system here).
            self.assertTrue(all(x[1].startswith(dirs[domain]) for x in syncfs), syncfs)


if __name__ == "__main__":
    unittest.main()
