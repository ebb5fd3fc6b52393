"""Provider A as two pecd nodes on one PostgreSQL; kill -9 of one node mid-burst.

A real PostgreSQL server (pg_harness.py) holds provider A's queue, mailboxes, PEC
tracking and legal log; A's two nodes share it, and share the spool and mailbox
directories as they would share storage. Provider B is a single SQLite node. Certified
messages from alice@a to bob@b are submitted to both of A's nodes at once; one node is
killed with SIGKILL in the middle. The other node takes over the dead node's claimed
work once its lease ([store] claim_lease) runs out. In the end every accepted message has
exactly one ricevuta di accettazione and one ricevuta di avvenuta consegna in alice's
mailbox and one busta di trasporto in bob's; A's legal log (one chain written by both
nodes) verifies.
"""
import collections
import email.utils
import json
import os
import smtplib
import ssl
import tempfile
import threading
import time
import unittest

from clamd_harness import ClamdInstance
from pec_network import PecNetwork, Provider
from pg_harness import PostgresInstance

MESSAGES = 40


class TwoNodesOnePostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pecd-cluster-")
        cls.pg = PostgresInstance().start()
        cls.clamd = ClamdInstance(os.path.join(cls.tmp.name, "clamd")).start()
        cls.net = PecNetwork(cls.tmp.name, [("a.pec.test", "Gestore A S.p.A."), ("b.pec.test", "Gestore B S.p.A.")],
                             cls.clamd)
        cls.a1, cls.b = cls.net.providers
        cls.a2 = Provider(cls.net, "a.pec.test", "Gestore A S.p.A.", root=os.path.join(cls.tmp.name, "a-node2"))
        cls.a2.signing = cls.a1.signing
        shared = os.path.join(cls.tmp.name, "a-shared")
        for node, name in ((cls.a1, "a1"), (cls.a2, "a2")):
            node.store_toml = ('[store]\nbackend = "postgresql"\nconninfo = "%s"\npassword_file = "%s"\n'
                               'blob_dir = "%s/mailboxes"\nspool_dir = "%s/spool"\nnode = "%s"\nclaim_lease = 5\n'
                               % (cls.pg.conninfo(), cls.pg.password_file, shared, shared, name))
        cls.net.prepare()
        cls.a2.write_config()
        cls.alice = cls.a1.add_mailbox("alice")
        cls.a2.passwords[cls.alice] = cls.a1.passwords[cls.alice]
        cls.bob = cls.b.add_mailbox("bob")
        cls.net.start()
        cls.a2.start()

    @classmethod
    def tearDownClass(cls):
        for p in (cls.a2, cls.a1, cls.b):
            try:
                p.stop()
            except Exception:
                pass
        cls.clamd.stop()
        cls.pg.stop()
        cls.tmp.cleanup()

    def submit_many(self, node, subjects, accepted):
        ctx = ssl.create_default_context(cafile=self.net.tls_ca)
        for subject in subjects:
            raw = ("Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\n"
                   "Testo.\r\n" % (email.utils.formatdate(localtime=True), self.alice, self.bob, subject, subject))
            try:
                with smtplib.SMTP("127.0.0.1", node.submission_port, timeout=20) as s:
                    s.starttls(context=ctx)
                    s.login(self.alice, node.passwords[self.alice])
                    s.sendmail(self.alice, [self.bob], raw)
                accepted.append(subject)
            except (OSError, smtplib.SMTPException):
                pass  # the killed node: not accepted, so no promise was made

    def test_burst_with_one_node_killed(self):
        accepted = []
        first = ["n1-%02d" % i for i in range(MESSAGES // 2)]
        second = ["n2-%02d" % i for i in range(MESSAGES // 2)]
        t1 = threading.Thread(target=self.submit_many, args=(self.a1, first, accepted))
        t2 = threading.Thread(target=self.submit_many, args=(self.a2, second, accepted))
        t1.start()
        t2.start()
        deadline = time.monotonic() + 60
        while sum(1 for s in accepted if s.startswith("n2-")) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.a2.kill()
        t1.join()
        t2.join()
        from_a2 = [s for s in accepted if s.startswith("n2-")]
        self.assertGreaterEqual(len(from_a2), 5)
        self.assertEqual(len([s for s in accepted if s.startswith("n1-")]), MESSAGES // 2)

        # The surviving node finishes everything, the dead node's claims included.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(self.a1.messages(self.alice)) >= 2 * len(accepted) and \
                    len(self.b.messages(self.bob)) >= len(accepted):
                break
            time.sleep(1)
        else:
            self.fail("not finished: alice %d of %d, bob %d of %d; node 1 log:\n%s"
                      % (len(self.a1.messages(self.alice)), 2 * len(accepted), len(self.b.messages(self.bob)),
                         len(accepted), self.a1.read_log()[-6000:]))
        time.sleep(8)  # a duplicate would arrive after the first copy: give it the time
        receipts = collections.Counter()
        for _, m in self.a1.parsed(self.alice):
            receipts[(m["X-Ricevuta"], m["Subject"].split(": ", 1)[1])] += 1
        envelopes = collections.Counter(m["Subject"].split(": ", 1)[1] for _, m in self.b.parsed(self.bob))
        for subject in accepted:
            self.assertEqual(receipts[("accettazione", subject)], 1, subject)
            self.assertEqual(receipts[("avvenuta-consegna", subject)], 1, subject)
            self.assertEqual(envelopes[subject], 1, subject)
        self.assertEqual(sum(receipts.values()), 2 * len(accepted), receipts)
        self.assertEqual(sum(envelopes.values()), len(accepted))
        # Both nodes accepted and processed work (the node names in the claims).
        # At least acceptance, transport envelope, presa in carico and consegna received.
        nodes = self.pg.sql("SELECT count(*) FROM log_records", "pecd")
        self.assertGreaterEqual(int(nodes), 4 * len(accepted))
        # The legal log written by both nodes is one valid chain.
        out = self.a1.pecctl("log", "verify", check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # A message the killed node accepted: its history, read from the shared database
        # by its client Message-ID typed without brackets, runs from acceptance to the
        # delivery receipt, each event once, whichever node wrote it.
        out = self.a1.pecctl("pec", "history", "%s@client.test" % from_a2[0], "--json", check=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        history = json.loads(out.stdout)
        events = sorted((r["kind"], r["outcome"]) for r in history)
        self.assertEqual(events, [("acceptance", "ok"), ("receipt-received", "consegna-completa"),
                                  ("receipt-received", "presa-in-carico"), ("transport-envelope", "ok")], history)
        # The dead node comes back and finds nothing left to do twice.
        self.a2.start()
        time.sleep(6)
        self.assertEqual(len(self.a1.messages(self.alice)), 2 * len(accepted))
        self.assertEqual(len(self.b.messages(self.bob)), len(accepted))


class TimersOnceClusterWide(unittest.TestCase):
    """Both nodes run the 12 h / 24 h timers on the same tracking rows (one test clock,
    moved ahead through --clock-offset-file): each notice reaches alice once."""

    def test_each_notice_once(self):
        with tempfile.TemporaryDirectory(prefix="pecd-cluster-timers-") as tmp:
            pg = PostgresInstance().start()
            net = PecNetwork(tmp, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], None)
            a1, b = net.providers
            a2 = Provider(net, "a.pec.test", "Gestore A", root=os.path.join(tmp, "a-node2"))
            a2.signing = a1.signing
            offset = os.path.join(tmp, "clock-offset")
            with open(offset, "w") as f:
                f.write("0")
            for node, name in ((a1, "a1"), (a2, "a2")):
                node.antivirus = False
                node.extra_args = ["--clock-offset-file", offset]
                node.store_toml = ('[store]\nbackend = "postgresql"\nconninfo = "%s"\npassword_file = "%s"\n'
                                   'blob_dir = "%s/shared/mailboxes"\nspool_dir = "%s/shared/spool"\nnode = "%s"\n'
                                   'claim_lease = 5\n' % (pg.conninfo(), pg.password_file, tmp, tmp, name))
            b.antivirus = False
            net.prepare()
            a2.write_config()
            alice = a1.add_mailbox("alice")
            a2.passwords[alice] = a1.passwords[alice]
            net.start()
            a2.start()
            try:
                b.stop()  # no receipt will come
                a1.submit(alice, ["fantasma@b.pec.test"], subject="mai-uno")
                a2.submit(alice, ["fantasma@b.pec.test"], subject="mai-due")

                def kinds():  # (type verified by pecctl verify, original subject)
                    out = collections.Counter()
                    for raw, m in a1.parsed(alice):
                        if m["X-Ricevuta"]:
                            status, report = a1.verify(raw)
                            self.assertEqual(status, 0, report)
                            out[(report["type"], m["Subject"].split(": ", 1)[1])] += 1
                    return out

                def wait(expected, timeout=60):
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline and sum(kinds().values()) < expected:
                        time.sleep(0.3)
                    time.sleep(4)  # several timer passes of both nodes
                    return kinds()

                got = wait(2)
                self.assertEqual(got[("accettazione", "mai-uno")], 1, got)
                self.assertEqual(got[("accettazione", "mai-due")], 1, got)
                with open(offset, "w") as f:
                    f.write(str(12 * 3600 + 60))
                got = wait(4)
                for subject in ("mai-uno", "mai-due"):
                    self.assertEqual(got[("mancata-consegna-12h", subject)], 1, got)
                self.assertEqual(sum(got.values()), 4, got)
                with open(offset, "w") as f:
                    f.write(str(23 * 3600 + 120))
                got = wait(6)
                self.assertEqual(sum(got.values()), 6, got)
                for subject in ("mai-uno", "mai-due"):
                    self.assertEqual(got[("mancata-consegna-12h", subject)], 1, got)
                    self.assertEqual(got[("mancata-consegna-24h", subject)], 1, got)
            finally:
                a2.stop()
                net.stop()
                pg.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
