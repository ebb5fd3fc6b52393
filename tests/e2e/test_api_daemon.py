"""The mailbox API served by the running daemon ([api]), read the way a registry portal reads it.

Two real providers (tests/e2e/pec_network.py, real clamd); provider B serves the API with
mutual TLS (client CA made here), RS256 bearer tokens (a JWKS file made here) and an
allow-list. Through the API a receive-only mailbox is provisioned at B; alice at A sends
it a certified message over SMTP; the portal then finds it, reads its metadata with the
PEC events and the receipts issued for it, downloads it and its attachment, and gets the
verification verdict. Every one of those requests, and the refused ones, leaves an
api_audit record in B's legal log, whose chain `pecctl log verify` then checks.
"""
import email
import email.policy
import json
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
import unittest

from api_client import ApiClient, ApiCredentials
from clamd_harness import ClamdInstance
from pec_network import PecNetwork, free_port


def audit_records(data_dir, after_seq=0):
    """(seq, record) of every api_audit record after `after_seq`, from B's legal log."""
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "pecd.db"), uri=True, timeout=30)
    try:
        rows = con.execute("SELECT seq, record FROM log_records WHERE seq > ? ORDER BY seq", (after_seq,)).fetchall()
    finally:
        con.close()
    out = []
    for seq, text in rows:
        r = json.loads(text)
        if r["kind"] == "api-audit":
            out.append((seq, r))
    return out


def last_seq(data_dir):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "pecd.db"), uri=True, timeout=30)
    try:
        return con.execute("SELECT COALESCE(MAX(seq), 0) FROM log_records").fetchone()[0]
    finally:
        con.close()


class ApiInTheDaemon(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pecd-api-")
        cls.clamd = ClamdInstance(os.path.join(cls.tmp.name, "clamd")).start()
        cls.creds = ApiCredentials(os.path.join(cls.tmp.name, "portal"))
        cls.net = PecNetwork(cls.tmp.name, [("a.pec.test", "Gestore A S.p.A."), ("b.pec.test", "Gestore B S.p.A.")],
                             cls.clamd)
        cls.a, cls.b = cls.net.providers
        cls.api_port = free_port()
        cls.b.extra_toml = cls.creds.config_toml(cls.api_port)
        cls.net.prepare()
        cls.alice = cls.a.add_mailbox("alice")
        cls.net.start()
        cls.office = "registro@b.pec.test"
        cls.portal = cls.creds.token(scope="mailbox:read mailbox:provision", domains=["b.pec.test"])

    @classmethod
    def tearDownClass(cls):
        cls.net.stop()
        cls.clamd.stop()
        cls.tmp.cleanup()

    def client(self, **kw):
        return ApiClient(self.api_port, self.creds, self.net.tls_ca, **kw)

    def test_01_listener_is_announced(self):
        with open(os.path.join(self.b.data_dir, "listeners.json")) as f:
            names = {l["name"]: l for l in json.load(f)["listeners"]}
        self.assertEqual(names["api"]["port"], self.api_port)
        self.assertEqual(names["api"]["tls"], "implicit")

    def test_02_mutual_tls_is_required(self):
        # No client certificate, and one from another CA: the handshake fails.
        for cert, key in ((False, None), (self.creds.foreign_cert, self.creds.foreign_key)):
            c = self.client(cert=cert, key=key)
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                c.request("GET", "/v1/mailboxes/" + self.office, self.portal)
            c.close()
        # The trusted client without a token: 401 with a problem document, audited.
        before = last_seq(self.b.data_dir)
        c = self.client()
        status, headers, body = c.request("GET", "/v1/mailboxes/" + self.office)
        self.assertEqual(status, 401)
        self.assertEqual(headers["Content-Type"], "application/problem+json")
        self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
        c.close()
        refused = [r for _, r in audit_records(self.b.data_dir, before)]
        self.assertTrue(any(r["details"]["status"] == "401" for r in refused), refused)

    def test_03_certified_message_to_a_receive_only_mailbox_read_through_the_api(self):
        c = self.client()
        # Provisioning: a receive-only mailbox that refuses ordinary mail.
        status, mb = c.json("POST", "/v1/mailboxes", self.portal,
                            {"address": self.office, "kind": "receive-only", "accepts_ordinary_mail": False})
        self.assertEqual(status, 201, mb)
        self.assertEqual(mb["kind"], "receive-only")
        self.assertEqual(mb["state"], "active")

        # A certified message from provider A, with a PDF attachment.
        subject = "Deposito bilancio 2026"
        body = ("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSi trasmette il bilancio.\r\n"
                "--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"bilancio.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagolJUVPRgo=\r\n--b1--\r\n")
        self.a.submit(self.alice, [self.office], subject=subject, body=body,
                      headers={"Content-Type": 'multipart/mixed; boundary="b1"'})
        receipts = self.a.wait_for(self.alice, 2, timeout=90)
        kinds = {m["X-Ricevuta"]: m for _, m in receipts}
        self.assertEqual(sorted(kinds), ["accettazione", "avvenuta-consegna"])
        delivery_receipt_id = kinds["avvenuta-consegna"]["Message-ID"].strip("<>")

        user = self.creds.token(subject="portal-reader", domains=[], mailboxes=[self.office])
        before = last_seq(self.b.data_dir)
        base = "/v1/mailboxes/" + self.office
        status, page = c.json("GET", base + "/messages?type=posta-certificata&subject=bilancio", user)
        self.assertEqual(status, 200, page)
        self.assertEqual(page["total"], 1)
        item = page["items"][0]
        self.assertEqual(item["subject"], "POSTA CERTIFICATA: " + subject)
        msg = base + "/messages/%d" % item["id"]

        status, meta = c.json("GET", msg, user)
        self.assertEqual(status, 200, meta)
        self.assertEqual(meta["pec"]["type"], "posta-certificata")
        self.assertEqual(meta["pec"]["source"], "pec-engine")
        events = {e["kind"]: e for e in meta["pec"]["events"]}
        self.assertIn("take-in-charge", events, meta["pec"]["events"])
        self.assertIn("delivery", events, meta["pec"]["events"])
        self.assertIn(self.office, events["delivery"]["recipients"])
        # The delivery receipt listed is the one alice got.
        self.assertIn(delivery_receipt_id, events["delivery"]["generated_ids"])

        status, headers, raw = c.request("GET", msg + "/raw", user)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "message/rfc822")
        stored = self.b.read(self.office, item["id"])
        self.assertEqual(raw, stored)
        code, report = self.b.verify(raw)
        self.assertEqual(code, 0, report)

        status, listing = c.json("GET", msg + "/attachments", user)
        self.assertEqual(status, 200)
        names = [a["filename"] for a in listing["attachments"]]
        self.assertIn("daticert.xml", names)
        original = next(a for a in listing["attachments"] if a["content_type"] == "message/rfc822")
        status, _, eml = c.request("GET", msg + "/attachments/%d" % original["index"], user)
        self.assertEqual(status, 200)
        inner = email.message_from_bytes(eml, policy=email.policy.default)
        self.assertEqual(inner["Subject"], subject)
        pdf = next(p for p in inner.walk() if p.get_filename() == "bilancio.pdf")
        self.assertTrue(pdf.get_payload(decode=True).startswith(b"%PDF-1.4"))

        status, verdict = c.json("GET", msg + "/verification", user)
        self.assertEqual(status, 200)
        self.assertEqual(verdict["verdict"], "valid", verdict)
        self.assertEqual(verdict["details"]["provider_name"], "Gestore A S.p.A.")
        self.assertEqual(verdict["details"]["signature"], "pass")

        # Reads never change the mailbox; a read-only token cannot provision; another
        # company's mailbox looks like no mailbox at all.
        status, mb = c.json("GET", base, user)
        self.assertEqual((status, mb["message_count"]), (200, 1))
        self.assertEqual(c.request("POST", base + "/deactivate", user)[0], 403)
        self.assertEqual(c.request("GET", "/v1/mailboxes/alice@a.pec.test/messages", user)[0], 404)
        c.close()

        # One audit record per request, each naming who, from where, what and the outcome.
        records = [r for _, r in audit_records(self.b.data_dir, before)]
        self.assertEqual(len(records), 9, records)
        actions = [r["details"]["action"] for r in records]
        for a in ("message.search", "message.read", "message.raw", "message.attachments", "message.attachment",
                  "message.verification"):
            self.assertIn(a, actions)
        for r in records:
            self.assertEqual(r["actor"], "portal-reader")
            self.assertEqual(r["peer_host"], "127.0.0.1")
            self.assertIn("portal-portal", r["tls"]["peer"])
        self.assertEqual(sorted(r["details"]["status"] for r in records).count("200"), 7)
        # The token itself never reaches the log.
        with open(os.path.join(self.b.data_dir, "pecd.db"), "rb") as f:
            self.assertNotIn(user.encode(), f.read())

        # Ordinary mail for the receive-only mailbox is refused.
        ordinary = "From: x@ordinaria.test\r\nTo: %s\r\nSubject: ordinaria\r\n\r\nciao\r\n" % self.office
        try:
            self.b.send_mx("x@ordinaria.test", [self.office], ordinary)
        except Exception:
            pass
        time.sleep(2)
        self.assertEqual(len(self.b.messages(self.office)), 1)

    def test_04_log_with_audit_records_verifies(self):
        out = self.b.pecctl("log", "verify", check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_05_bad_requests_and_the_server_keeps_serving(self):
        c = self.client()
        status, headers, body = c.request("POST", "/v1/mailboxes", self.portal, b"{not json")
        self.assertEqual(status, 400)
        self.assertEqual(headers["Content-Type"], "application/problem+json")
        self.assertIn("malformed JSON", json.loads(body)["detail"])
        c.close()
        c = self.client()
        status, _, _ = c.request("GET", "/v1/openapi.yaml")
        self.assertEqual(status, 200)
        c.close()

    def served_serial(self):
        """The serial of the certificate the API presents now (a portal's TLS handshake)."""
        ctx = ssl.create_default_context(cafile=self.net.tls_ca)
        ctx.check_hostname = False
        ctx.load_cert_chain(self.creds.client_cert, self.creds.client_key)
        with socket.create_connection(("127.0.0.1", self.api_port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
        out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                             capture_output=True, check=True).stdout.decode()
        return out.strip().split("=")[1]

    def test_06_certificate_renewed_without_a_signal(self):
        """The API's certificate (here the [tls] pair) written anew is served within
        reload_interval, with no SIGHUP, and the API keeps answering."""
        before = self.served_serial()
        ca_dir = os.path.dirname(self.net.tls_ca)
        work = os.path.join(self.tmp.name, "renewal")
        os.makedirs(work)
        key, csr, crt = (os.path.join(work, n) for n in ("new.key", "new.csr", "new.pem"))
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                        "-subj", "/CN=localhost"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.net.tls_ca, "-CAkey",
                        os.path.join(ca_dir, "ca.key"), "-CAcreateserial", "-days", "30", "-extfile",
                        os.path.join(ca_dir, "server.ext"), "-out", crt], check=True, capture_output=True)
        renewed = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", crt], capture_output=True,
                                 check=True, text=True).stdout.strip().split("=")[1]
        self.assertNotEqual(before, renewed)
        for src, dst in ((key, self.net.tls_key), (crt, self.net.tls_cert)):  # the key first, as certbot does
            shutil.copyfile(src, dst + ".new")
            os.rename(dst + ".new", dst)
        deadline, seen = time.monotonic() + 15, before
        while time.monotonic() < deadline and seen != renewed:
            time.sleep(0.5)
            seen = self.served_serial()
        self.assertEqual(seen, renewed, "the API still serves the old certificate")
        c = self.client()
        status, _, _ = c.request("GET", "/v1/openapi.yaml")
        self.assertEqual(status, 200)
        c.close()


class ApiKeysFromTheIdentityProvider(unittest.TestCase):
    """jwks_url: the keys fetched over verified HTTPS, cached, and followed through a rotation."""

    @classmethod
    def setUpClass(cls):
        import subprocess
        cls.tmp = tempfile.TemporaryDirectory(prefix="pecd-api-jwks-")
        cls.creds = ApiCredentials(os.path.join(cls.tmp.name, "portal"))
        cls.net = PecNetwork(cls.tmp.name, [("c.pec.test", "Gestore C S.p.A.")], None)
        (cls.c,) = cls.net.providers
        cls.c.antivirus = False
        cls.www = os.path.join(cls.tmp.name, "idp")
        os.makedirs(cls.www)
        cls.served = os.path.join(cls.www, "certs")
        cls.creds.write_jwks(cls.served, ["portal-key-1"])
        port_file, cls.requests = os.path.join(cls.tmp.name, "idp.port"), os.path.join(cls.tmp.name, "idp.log")
        cls.idp = subprocess.Popen(["python3", os.path.join(os.path.dirname(__file__), "../index/https_server.py"),
                                    "--dir", cls.www, "--cert", cls.net.tls_cert, "--key", cls.net.tls_key,
                                    "--port-file", port_file, "--log", cls.requests])
        deadline = time.monotonic() + 20
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError("the identity provider's HTTPS server did not start")
            time.sleep(0.05)
        idp_port = int(open(port_file).read())
        cls.api_port = free_port()
        cls.c.extra_toml = cls.creds.config_toml(
            cls.api_port, keys='jwks_url = "https://localhost:%d/certs"\njwks_ca = "%s"\njwks_min_refresh = 1\n'
            % (idp_port, cls.net.tls_ca))
        cls.net.prepare()
        cls.net.start()

    @classmethod
    def tearDownClass(cls):
        cls.net.stop()
        cls.idp.terminate()
        cls.idp.wait(10)
        cls.tmp.cleanup()

    def fetches(self):
        with open(self.requests) as f:
            return sum(1 for line in f if line.startswith("GET /certs "))

    def test_rotation_by_kid(self):
        c = ApiClient(self.api_port, self.creds, self.net.tls_ca)
        path = "/v1/mailboxes/registro@c.pec.test"
        old = self.creds.token(scope="mailbox:read", domains=["c.pec.test"])
        status, _, _ = c.request("GET", path, old)
        self.assertEqual(status, 404)  # authenticated: no such mailbox (yet), not 401
        at_start = self.fetches()
        self.assertGreaterEqual(at_start, 1)
        for _ in range(20):  # cached: no fetch per request
            c.request("GET", path, old)
        self.assertEqual(self.fetches(), at_start)

        # The identity provider rotates: a new key, the old one withdrawn.
        self.creds.add_key("portal-key-2")
        self.creds.write_jwks(self.served, ["portal-key-2"])
        time.sleep(1.2)  # jwks_min_refresh
        new = self.creds.token(scope="mailbox:read", domains=["c.pec.test"], kid="portal-key-2")
        status, _, _ = c.request("GET", path, new)
        self.assertEqual(status, 404)  # the unknown kid made pecd fetch the new set
        self.assertGreater(self.fetches(), at_start)
        status, headers, _ = c.request("GET", path, old)
        self.assertEqual(status, 401)  # the withdrawn key's tokens stop at once
        self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
