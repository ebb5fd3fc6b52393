"""PEC end to end: two real pecd providers on loopback, one shared index, a real clamd.

Provider A (a.pec.test) and provider B (b.pec.test) each sign with their own certificate
from one demo CA and route to each other's MX with verified TLS. Every message a test
looks at is checked with `pecctl verify` (signature, chain, index, From domain,
consistency) and with `openssl cms -verify`.
"""
import json
import os
import re
import sqlite3
import tempfile
import time
import unittest

from clamd_harness import EICAR, ClamdInstance
from pec_network import PecNetwork


def infected_body():
    """A multipart body whose base64 attachment is the EICAR test file."""
    import base64
    return ("--b1\r\nContent-Type: text/plain\r\n\r\nciao\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"eicar.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(EICAR).decode() + "\r\n--b1--\r\n")


def daticert(raw):
    m = re.search(rb"<postacert[^>]*tipo=\"([^\"]+)\"[^>]*errore=\"([^\"]+)\"", decode_daticert(raw))
    return (m.group(1).decode(), m.group(2).decode()) if m else (None, None)


def decode_daticert(raw):
    """The daticert.xml bytes of a PEC message (base64 part named daticert.xml)."""
    import base64
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.get_filename() == "daticert.xml" or part.get_param("name") == "daticert.xml":
            return part.get_payload(decode=True)
    raise AssertionError("no daticert.xml in the message")


class PecTwoProviders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pecd-pec-")
        cls.clamd = ClamdInstance(os.path.join(cls.tmp.name, "clamd")).start()
        cls.net = PecNetwork(cls.tmp.name, [("a.pec.test", "Gestore A S.p.A."), ("b.pec.test", "Gestore B S.p.A.")],
                             cls.clamd)
        cls.a, cls.b = cls.net.providers
        cls.net.prepare()
        cls.alice = cls.a.add_mailbox("alice")
        cls.anna = cls.a.add_mailbox("anna")
        cls.full = cls.a.add_mailbox("piena", "secret-pw-piena", "--quota", "1000")  # no receipt fits
        cls.bob = cls.b.add_mailbox("bob")
        cls.bea = cls.b.add_mailbox("bea")
        cls.carla = cls.b.add_mailbox("carla", "secret-pw-carla", "--quota", "2000")  # no envelope fits
        cls.office = cls.b.add_mailbox("ufficio", None, "--kind", "receive-only", "--pec-only")
        cls.net.start()

    @classmethod
    def tearDownClass(cls):
        cls.net.stop()
        cls.clamd.stop()
        cls.tmp.cleanup()

    def assertValidPec(self, provider, raw, kind):
        status, report = provider.verify(raw)
        self.assertEqual(status, 0, report)
        self.assertEqual(report["type"], kind, report)
        status, err = provider.openssl_verify(raw)
        self.assertEqual(status, 0, err)

    def by_subject(self, provider, address, subject, count, timeout=60):
        deadline = time.monotonic() + timeout
        found = []
        while time.monotonic() < deadline:
            found = [(r, m) for r, m in provider.parsed(address) if subject in (m["Subject"] or "")]
            if len(found) >= count:
                return found
            time.sleep(0.3)
        raise AssertionError("%s: %d of %d messages with %r; A log:\n%s\nB log:\n%s" % (
            address, len(found), count, subject, self.a.read_log()[-4000:], self.b.read_log()[-4000:]))

    def test_certified_exchange_between_providers(self):
        subject = "Ordine 2026-0042"
        self.a.submit(self.alice, [self.bob], subject=subject, headers={"X-TipoRicevuta": "completa"})
        got = self.by_subject(self.a, self.alice, subject, 2)
        kinds = sorted(m["X-Ricevuta"] for _, m in got)
        self.assertEqual(kinds, ["accettazione", "avvenuta-consegna"])
        for raw, m in got:
            self.assertValidPec(self.a, raw, "accettazione" if m["X-Ricevuta"] == "accettazione" else "consegna-completa")
            self.assertEqual(m["From"], "posta-certificata@a.pec.test" if m["X-Ricevuta"] == "accettazione"
                             else "posta-certificata@b.pec.test")
        (env_raw, env), = self.by_subject(self.b, self.bob, subject, 1)
        self.assertEqual(env["X-Trasporto"], "posta-certificata")
        self.assertEqual(env["Subject"], "POSTA CERTIFICATA: " + subject)
        self.assertIn("Per conto di: alice@a.pec.test", env["From"])
        self.assertValidPec(self.b, env_raw, "busta-trasporto")
        # The sending provider's service mailbox holds B's presa in carico.
        (pic_raw, pic), = self.by_subject(self.a, self.a.service_mailbox, subject, 1)
        self.assertEqual(pic["X-Ricevuta"], "presa-in-carico")
        self.assertValidPec(self.a, pic_raw, "presa-in-carico")
        # The history of the message on both sides.
        pec_id = env["Message-ID"].strip("<>")
        kinds_a = [r["kind"] for r in self.a.history(pec_id)]
        for k in ("acceptance", "transport-envelope", "receipt-received"):
            self.assertIn(k, kinds_a)
        kinds_b = [r["kind"] for r in self.b.history(pec_id)]
        for k in ("take-in-charge", "delivery"):
            self.assertIn(k, kinds_b)
        # The legal log's records carry the facts of pec.md 7.
        acceptance = [r for r in self.a.history(pec_id) if r["kind"] == "acceptance"][0]
        self.assertEqual(acceptance["pec_msgid"], pec_id)
        self.assertEqual(acceptance["sender"], self.alice)
        self.assertEqual(acceptance["subject"], subject)
        self.assertEqual(acceptance["recipients"], [{"address": self.bob, "type": "certified"}])
        self.assertIn(pec_id, acceptance["generated_ids"])
        self.assertEqual(acceptance["tls"]["protocol"][:5], "TLSv1")
        self.assertTrue(acceptance["client_msgid"].startswith("<Ordine"))
        delivery = [r for r in self.b.history(pec_id) if r["kind"] == "delivery"][0]
        self.assertEqual(delivery["details"]["consegna"], self.bob)
        self.assertEqual(len(delivery["generated_ids"]), 1)
        # One time reference: the acceptance and the transport envelope records share it.
        envelope_rec = [r for r in self.a.history(pec_id) if r["kind"] == "transport-envelope"][0]
        self.assertEqual(envelope_rec["time"], acceptance["time"])
        # Between providers TLS is verified although the default policy is `may`: the
        # index makes b.pec.test a PEC domain (pec.md 8); every delivery logs its outcome.
        self.assertRegex(self.a.read_log(), r"b\.pec\.test.*tls_policy=verify tls=TLSv1\.[23] cipher=\S+"
                                            r".*chain=trusted name=\S*localhost")
        for p in (self.a, self.b):
            v = p.pecctl("log", "verify", check=False)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_receipts_for_a_full_sender_mailbox_wait_in_the_queue(self):
        subject = "Casella piena"
        self.a.submit(self.full, [self.bob], subject=subject)
        self.by_subject(self.b, self.bob, subject, 1)  # the exchange itself goes on
        # Neither the acceptance nor the delivery receipt fits: both wait in A's queue,
        # refused for now by the full mailbox, and none is lost.
        deadline = time.monotonic() + 60
        waiting = []
        while time.monotonic() < deadline:
            queued = json.loads(self.a.pecctl("queue", "list", "--json").stdout)
            waiting = [r for m in queued for r in m["recipients"]
                       if r["address"] == self.full and r["state"] == "pending" and r["attempts"] >= 1]
            if len(waiting) >= 2:
                break
            time.sleep(0.5)
        self.assertEqual(len(waiting), 2, "%s\nA log:\n%s" % (waiting, self.a.read_log()[-4000:]))
        for r in waiting:
            self.assertIn("mailbox full", r["last_error"])
        self.assertEqual(self.a.messages(self.full), [])

    def test_a_full_recipient_mailbox_is_delivered_once_it_has_room(self):
        subject = "Destinatario pieno"
        self.a.submit(self.alice, [self.carla], subject=subject)
        # B takes the envelope in charge; the delivery waits in B's queue (mailbox full).
        self.by_subject(self.a, self.a.service_mailbox, subject, 1)
        deadline = time.monotonic() + 60
        waiting = []
        while time.monotonic() < deadline and not waiting:
            queued = json.loads(self.b.pecctl("queue", "list", "--json").stdout)
            waiting = [r for m in queued for r in m["recipients"]
                       if r["address"] == self.carla and r["state"] == "pending" and r["attempts"] >= 1]
            time.sleep(0.3)
        self.assertTrue(waiting, "B log:\n" + self.b.read_log()[-4000:])
        self.assertIn("mailbox full", waiting[0]["last_error"])
        self.assertEqual(self.b.messages(self.carla), [])
        self.assertEqual([m["X-Ricevuta"] for _, m in self.a.parsed(self.alice) if subject in (m["Subject"] or "")],
                         ["accettazione"])
        # Room made: the next retry stores the envelope, once, and the receipt follows.
        self.b.pecctl("mailbox", "quota", self.carla, str(1 << 20))
        (raw, env), = self.by_subject(self.b, self.carla, subject, 1)
        self.assertValidPec(self.b, raw, "busta-trasporto")
        got = self.by_subject(self.a, self.alice, subject, 2)
        self.assertEqual(sorted(m["X-Ricevuta"] for _, m in got), ["accettazione", "avvenuta-consegna"])
        time.sleep(2)  # a later retry must not store it again
        self.assertEqual(len(self.b.messages(self.carla)), 1)
        pec_id = env["Message-ID"].strip("<>")
        self.assertEqual([r["kind"] for r in self.b.history(pec_id)].count("delivery"), 1)

    def test_same_domain_gets_every_receipt(self):
        subject = "Stesso dominio"
        self.a.submit(self.alice, [self.anna], subject=subject)
        got = self.by_subject(self.a, self.alice, subject, 2)
        self.assertEqual(sorted(m["X-Ricevuta"] for _, m in got), ["accettazione", "avvenuta-consegna"])
        (raw, env), = self.by_subject(self.a, self.anna, subject, 1)
        self.assertValidPec(self.a, raw, "busta-trasporto")
        (raw, pic), = self.by_subject(self.a, self.a.service_mailbox, subject, 1)
        self.assertEqual(pic["X-Ricevuta"], "presa-in-carico")

    def test_mixed_recipients_and_receipt_kinds(self):
        subject = "Destinatari misti"
        external = "mario@ordinaria.test"
        # To: bob (certified, other provider) and anna (certified, local); Cc: bea, external.
        self.a.submit(self.alice, [self.bob, self.anna, self.bea, external], subject=subject,
                      to=[self.bob, self.anna], cc=[self.bea, external], headers={"X-TipoRicevuta": "breve"})
        got = self.by_subject(self.a, self.alice, subject, 4)
        acc = [r for r, m in got if m["X-Ricevuta"] == "accettazione"]
        self.assertEqual(len(acc), 1)
        xml = decode_daticert(acc[0]).decode()
        self.assertIn('<destinatari tipo="certificato">bob@b.pec.test</destinatari>', xml)
        self.assertIn('<destinatari tipo="certificato">anna@a.pec.test</destinatari>', xml)
        self.assertIn('<destinatari tipo="esterno">mario@ordinaria.test</destinatari>', xml)
        deliveries = {}
        for raw, m in got:
            if m["X-Ricevuta"] == "avvenuta-consegna":
                status, report = self.a.verify(raw)
                self.assertEqual(status, 0, report)
                deliveries[report["daticert"]["consegna"]] = report["type"]
        # breve for To: recipients, sintetica for the Cc: one (pec.md 3.8); none for esterno.
        self.assertEqual(deliveries, {"bob@b.pec.test": "consegna-breve", "anna@a.pec.test": "consegna-breve",
                                      "bea@b.pec.test": "consegna-sintetica"})

    def test_formal_failures_are_not_accepted(self):
        cases = [
            ("Con Bcc", dict(headers={"Bcc": self.bea}), [self.bob, self.bea], "Bcc"),
            ("Destinatari nascosti", {}, [self.bob, self.bea], "RCPT"),
            ("Mittente diverso", dict(headers={"From": "altro@a.pec.test"}), [self.bob], "From"),
        ]
        for subject, kw, rcpts, _ in cases:
            self.a.submit(self.alice, rcpts, subject=subject, to=[self.bob], **kw)
        for subject, _, _, word in cases:
            (raw, m), = self.by_subject(self.a, self.alice, subject, 1)
            self.assertEqual(m["X-Ricevuta"], "non-accettazione")
            self.assertEqual(m["Subject"], "AVVISO DI NON ACCETTAZIONE: " + subject)
            self.assertValidPec(self.a, raw, "non-accettazione")
            xml = decode_daticert(raw).decode()
            self.assertIn('errore="altro"', xml)
            self.assertIn("<errore-esteso>", xml)
            # Nothing reached B for a refused message.
            self.assertEqual([r for r, mm in self.b.parsed(self.bob) if subject in (mm["Subject"] or "")], [])

    def test_virus_at_the_access_point(self):
        subject = "Allegato infetto"
        body = infected_body()
        self.a.submit(self.alice, [self.bob], subject=subject, body=body,
                      headers={"Content-Type": 'multipart/mixed; boundary="b1"'})
        (raw, m), = self.by_subject(self.a, self.alice, subject, 1)
        self.assertEqual(m["X-Ricevuta"], "non-accettazione")
        self.assertEqual(m["X-VerificaSicurezza"], "errore")
        self.assertEqual(m["Subject"], "AVVISO DI NON ACCETTAZIONE PER VIRUS: " + subject)
        self.assertValidPec(self.a, raw, "non-accettazione-virus")
        self.assertIn('errore="virus"', decode_daticert(raw).decode())
        entries = self.a.pecctl("quarantine", "list").stdout
        self.assertIn("Pecd.Test.EICAR", entries)

    def test_receive_only_mailbox(self):
        subject = "Notifica all'ufficio"
        self.a.submit(self.alice, [self.office], subject=subject)
        (raw, env), = self.by_subject(self.b, self.office, subject, 1)
        self.assertEqual(env["X-Trasporto"], "posta-certificata")
        got = self.by_subject(self.a, self.alice, subject, 2)
        self.assertEqual(sorted(m["X-Ricevuta"] for _, m in got), ["accettazione", "avvenuta-consegna"])
        # Ordinary mail for it is refused; the mailbox keeps only the certified message.
        ordinary = "From: x@ordinaria.test\r\nTo: %s\r\nSubject: ordinaria\r\n\r\nciao\r\n" % self.office
        self.b.send_mx("x@ordinaria.test", [self.office], ordinary)
        time.sleep(2)
        self.assertEqual(len(self.b.messages(self.office)), 1)

    def test_ordinary_mail_becomes_an_anomaly_envelope(self):
        subject = "Posta ordinaria per bob"
        raw = "From: x@ordinaria.test\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <o1@ordinaria.test>\r\n\r\nciao\r\n" % (
            self.bob, subject)
        self.b.send_mx("x@ordinaria.test", [self.bob], raw)
        (got, m), = self.by_subject(self.b, self.bob, subject, 1)
        self.assertEqual(m["X-Trasporto"], "errore")
        self.assertEqual(m["Subject"], "ANOMALIA MESSAGGIO: " + subject)
        self.assertValidPec(self.b, got, "busta-anomalia")


class PecVirusAtReception(unittest.TestCase):
    """EICAR sent by a provider whose scanner is off: the recipient provider finds it."""

    def test_virus_detected_at_reception(self):
        with tempfile.TemporaryDirectory(prefix="pecd-pec-virus-") as tmp:
            clamd = ClamdInstance(os.path.join(tmp, "clamd")).start()
            net = PecNetwork(tmp, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
            a, b = net.providers
            a.antivirus = False
            net.prepare()
            alice = a.add_mailbox("alice")
            bob = b.add_mailbox("bob")
            net.start()
            try:
                subject = "Virus non visto"
                body = infected_body()
                a.submit(alice, [bob], subject=subject, body=body,
                         headers={"Content-Type": 'multipart/mixed; boundary="b1"'})
                deadline = time.monotonic() + 60
                kinds = []
                while time.monotonic() < deadline:
                    kinds = sorted(m["X-Ricevuta"] for _, m in a.parsed(alice) if subject in (m["Subject"] or ""))
                    if len(kinds) >= 2:
                        break
                    time.sleep(0.3)
                self.assertEqual(kinds, ["accettazione", "errore-consegna"], a.read_log()[-4000:])
                notice = [r for r, m in a.parsed(alice) if m["X-Ricevuta"] == "errore-consegna"][0]
                status, report = a.verify(notice)
                self.assertEqual(status, 0, report)
                self.assertEqual(report["type"], "mancata-consegna-virus")
                service = [m for _, m in a.parsed(a.service_mailbox) if m["X-Ricevuta"] == "rilevazione-virus"]
                self.assertEqual(len(service), 1)
                self.assertEqual(service[0]["Subject"], "PROBLEMA DI SICUREZZA: " + subject)
                self.assertEqual(b.messages(bob), [])
                self.assertIn("Pecd.Test.EICAR", b.pecctl("quarantine", "list").stdout)
            finally:
                net.stop()
                clamd.stop()


class PecTimers(unittest.TestCase):
    """The 12 h / 24 h notices (pec.md 5.4) in all four cases of the table, on a real
    provider A whose clock a file moves ahead (--clock-offset-file)."""

    def kinds_of(self, provider, address, subject):
        out = []
        for raw, m in provider.parsed(address):
            if subject not in (m["Subject"] or "") or not m["X-Ricevuta"]:
                continue
            status, report = provider.verify(raw)
            self.assertEqual(status, 0, report)
            out.append(report["type"])
        return sorted(out)

    def wait_kinds(self, provider, address, subject, expected, timeout=60):
        deadline = time.monotonic() + timeout
        got = []
        while time.monotonic() < deadline:
            got = self.kinds_of(provider, address, subject)
            if got == sorted(expected):
                return
            time.sleep(0.5)
        self.fail("%s: %s, expected %s\nA log:\n%s" % (subject, got, sorted(expected), self.a.read_log()[-5000:]))

    def set_offset(self, seconds):
        with open(self.offset, "w") as f:
            f.write(str(seconds))

    def test_twelve_and_twenty_four_hour_notices(self):
        with tempfile.TemporaryDirectory(prefix="pecd-pec-timers-") as tmp:
            clamd = ClamdInstance(os.path.join(tmp, "clamd")).start()
            net = PecNetwork(tmp, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
            self.a, b = net.providers
            self.offset = os.path.join(tmp, "clock-offset")
            self.set_offset(0)
            self.a.extra_args = ["--clock-offset-file", self.offset]
            net.prepare()
            alice = self.a.add_mailbox("alice")
            bob = b.add_mailbox("bob")
            bea = b.add_mailbox("bea", "pw-bea", "--quota", "200")  # full: presa in carico, no delivery
            net.start()
            try:
                a = self.a
                # B up: one delivered normally, one taken in charge but never delivered.
                a.submit(alice, [bob], subject="ok-subito")
                a.submit(alice, [bea], subject="solo-presa")
                self.wait_kinds(a, alice, "ok-subito", ["accettazione", "consegna-completa"])
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not [
                        m for _, m in a.parsed(a.service_mailbox) if "solo-presa" in (m["Subject"] or "")]:
                    time.sleep(0.3)
                # B down: neither receipt arrives in the first 12 hours.
                b.stop()
                a.submit(alice, ["fantasma@b.pec.test"], subject="mai")
                a.submit(alice, [bob], subject="tardi")
                self.wait_kinds(a, alice, "tardi", ["accettazione"])
                self.set_offset(12 * 3600 + 60)
                self.wait_kinds(a, alice, "mai", ["accettazione", "mancata-consegna-12h"])
                self.wait_kinds(a, alice, "tardi", ["accettazione", "mancata-consegna-12h"])
                self.assertEqual(self.kinds_of(a, alice, "solo-presa"), ["accettazione"])
                # B back between 12 h and 24 h: "tardi" is delivered, "mai" is refused (no such mailbox).
                b.start()
                self.wait_kinds(a, alice, "tardi", ["accettazione", "mancata-consegna-12h", "consegna-completa"])
                self.set_offset(23 * 3600 + 120)
                self.wait_kinds(a, alice, "mai", ["accettazione", "mancata-consegna-12h", "mancata-consegna-24h"])
                self.wait_kinds(a, alice, "solo-presa", ["accettazione", "mancata-consegna-24h"])
                time.sleep(3)  # a few more timer passes: nothing else may come
                self.assertEqual(self.kinds_of(a, alice, "ok-subito"), ["accettazione", "consegna-completa"])
                self.assertEqual(self.kinds_of(a, alice, "tardi"),
                                 ["accettazione", "consegna-completa", "mancata-consegna-12h"])
                self.assertEqual(self.kinds_of(a, alice, "mai"),
                                 ["accettazione", "mancata-consegna-12h", "mancata-consegna-24h"])
            finally:
                net.stop()
                clamd.stop()


class PecDuplicates(unittest.TestCase):
    """A transport envelope delivered twice over SMTP (a peer that resends after a lost
    250) is taken in once; the record that makes it a duplicate is purged after 7 days,
    on provider B's clock (--clock-offset-file)."""

    def received_records(self, provider):
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(provider.data_dir, "pecd.db"), uri=True, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM pec_received").fetchone()[0]
        finally:
            con.close()

    def test_a_repeated_envelope_is_ignored_and_forgotten_after_seven_days(self):
        with tempfile.TemporaryDirectory(prefix="pecd-pec-dup-") as tmp:
            clamd = ClamdInstance(os.path.join(tmp, "clamd")).start()
            net = PecNetwork(tmp, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
            a, b = net.providers
            offset = os.path.join(tmp, "clock-offset")
            with open(offset, "w") as f:
                f.write("0")
            b.extra_args = ["--clock-offset-file", offset]
            net.prepare()
            alice = a.add_mailbox("alice")
            bob = b.add_mailbox("bob")
            net.start()
            try:
                a.submit(alice, [bob], subject="due-volte")
                envelope, = [raw for raw, _ in b.wait_for(bob, 1)]
                a.wait_for(alice, 2)  # accettazione, avvenuta consegna
                self.assertEqual(self.received_records(b), 1)
                # The same envelope again, as a peer would resend it.
                b.send_mx(alice, [bob], envelope)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and "duplicate ignored" not in b.read_log():
                    time.sleep(0.2)
                self.assertIn("already received, duplicate ignored", b.read_log())
                time.sleep(2)  # nothing else may come of it
                self.assertEqual(len(b.messages(bob)), 1)
                self.assertEqual(sorted(a.kinds(alice)), ["accettazione", "avvenuta-consegna"])
                # Seven days later B no longer remembers it.
                with open(offset, "w") as f:
                    f.write(str(7 * 86400 + 3600))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and self.received_records(b):
                    time.sleep(0.3)
                self.assertEqual(self.received_records(b), 0)
                self.assertIn("reception record(s) older than 7 days purged", b.read_log())
            finally:
                net.stop()
                clamd.stop()


class PecIndexAtStart(unittest.TestCase):
    """A provider started before its index can be read: PEC messages wait for the index,
    then travel as certified mail (no anomaly envelope, no recipient taken for external)."""

    def test_messages_wait_for_the_first_index(self):
        with tempfile.TemporaryDirectory(prefix="pecd-pec-index-") as tmp:
            clamd = ClamdInstance(os.path.join(tmp, "clamd")).start()
            net = PecNetwork(tmp, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
            a, b = net.providers
            a.index_toml = "retry_interval = 1\n"
            net.prepare()
            alice = a.add_mailbox("alice")
            anna = a.add_mailbox("anna")
            bob = b.add_mailbox("bob")
            aside = net.index_file + ".aside"
            os.rename(net.index_file, aside)
            try:
                a.write_config()
                a.start()
                self.assertIn("no provider index loaded yet", a.read_log())
                a.submit(alice, [anna, bob], subject="prima-dell-indice", to=[anna, bob])
                time.sleep(3)  # a few queue retries: each finds no index and waits
                self.assertEqual(a.messages(alice), [])
                self.assertIn("provider index not loaded yet", a.pecctl("queue", "list").stdout)
                os.rename(aside, net.index_file)
                b.write_config()
                b.start()
                deadline = time.monotonic() + 60
                kinds = []
                while time.monotonic() < deadline:
                    kinds = sorted(m["X-Ricevuta"] for _, m in a.parsed(alice))
                    if kinds == ["accettazione", "avvenuta-consegna", "avvenuta-consegna"]:
                        break
                    time.sleep(0.5)
                self.assertEqual(kinds, ["accettazione", "avvenuta-consegna", "avvenuta-consegna"],
                                 a.read_log()[-4000:])
                for provider, box in ((a, anna), (b, bob)):
                    got = [m["X-Trasporto"] for _, m in provider.parsed(box)]
                    self.assertEqual(got, ["posta-certificata"], box)
                acceptance = [raw for raw, m in a.parsed(alice) if m["X-Ricevuta"] == "accettazione"][0]
                status, report = a.verify(acceptance)
                self.assertEqual(status, 0, report)
                self.assertEqual(sorted((r["address"], r["tipo"]) for r in report["daticert"]["destinatari"]),
                                 [(anna, "certificato"), (bob, "certificato")])
            finally:
                net.stop()
                clamd.stop()


class PecKillNine(unittest.TestCase):
    """kill -9 of either provider during a burst: after restart every accepted message
    reaches its end state, and each receipt exists exactly once."""

    @staticmethod
    def diagnose(a, b, sender, subject):
        """What both providers know of an incomplete exchange: its legal-log history on
        each side, both queues, and the log lines naming its PEC message id."""
        ids = [m["X-Riferimento-Message-ID"] for _, m in a.parsed(sender)
               if m["X-Riferimento-Message-ID"] and (m["Subject"] or "").endswith(": " + subject)]
        out = ["reference ids: %s" % ids]
        for p in (a, b):
            for ref in set(ids):
                out.append("%s history of %s:\n%s" % (p.domain, ref, p.pecctl("pec", "history", ref.strip("<>"),
                                                                                  check=False).stdout))
            out.append("%s queue:\n%s" % (p.domain, p.pecctl("queue", "list", check=False).stdout[-3000:]))
            lines = p.read_log().splitlines()
            out.append("%s log:\n%s" % (p.domain, "\n".join(
                l for l in lines if any(r.strip("<>").split("@")[0] in l for r in ids))[-4000:]))
        return "\n".join(out)

    def test_kill_nine_during_a_burst(self):
        import threading
        with tempfile.TemporaryDirectory(prefix="pecd-pec-kill-") as tmp:
            clamd = ClamdInstance(os.path.join(tmp, "clamd")).start()
            net = PecNetwork(tmp, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
            a, b = net.providers
            net.prepare()
            alice = a.add_mailbox("alice")
            anna = a.add_mailbox("anna")
            bob = b.add_mailbox("bob")
            net.start()
            acked, lock = set(), threading.Lock()
            stop_at = time.monotonic() + 20

            def sender(n):
                for i in range(12):  # bounded: 4 senders x 12 messages
                    if time.monotonic() > stop_at:
                        return
                    subject = "raffica-%d-%d" % (n, i)
                    try:
                        a.submit(alice, [bob, anna], subject=subject, to=[bob, anna])
                        with lock:
                            acked.add(subject)
                    except Exception:
                        time.sleep(0.3)  # the server was being killed: this one is not acknowledged

            try:
                threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
                for t in threads:
                    t.start()
                time.sleep(1.5)
                a.kill()
                a.start()
                time.sleep(1.5)
                b.kill()
                b.start()
                for t in threads:
                    t.join(60)
                self.assertGreater(len(acked), 10)
                deadline = time.monotonic() + 300
                while True:
                    alice_kinds = {}
                    for _, m in a.parsed(alice):
                        subj = (m["Subject"] or "").split(": ", 1)[-1]
                        alice_kinds.setdefault(subj, []).append(m["X-Ricevuta"])
                    complete = all(sorted(alice_kinds.get(s, [])) ==
                                   ["accettazione", "avvenuta-consegna", "avvenuta-consegna"] for s in acked)
                    if complete or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                envelopes = {}
                for _, m in b.parsed(bob):
                    subj = m["Subject"].split(": ", 1)[-1]
                    envelopes[subj] = envelopes.get(subj, 0) + 1
                local = {}
                for _, m in a.parsed(anna):
                    subj = m["Subject"].split(": ", 1)[-1]
                    local[subj] = local.get(subj, 0) + 1
                for subj in acked:
                    kinds = sorted(alice_kinds.get(subj, []))
                    if kinds != ["accettazione", "avvenuta-consegna", "avvenuta-consegna"]:
                        self.fail("%s: %s\n%s" % (subj, kinds, self.diagnose(a, b, alice, subj)))
                    self.assertEqual(envelopes.get(subj), 1, subj)
                    self.assertEqual(local.get(subj), 1, subj)
                # Messages without a 250 are either wholly absent or wholly processed once.
                for subj, kinds in alice_kinds.items():
                    self.assertIn(sorted(kinds), (["accettazione", "avvenuta-consegna", "avvenuta-consegna"],), subj)
            finally:
                net.stop()
                clamd.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
