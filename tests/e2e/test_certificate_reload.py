"""Certificates replaced on disk are used by the next handshake without a restart; a
session open across the swap completes; a broken new pair is refused and the old one
stays in service. The same for the outbound client certificate, seen by a receiving
server that requires one."""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from pecd_harness import PecdInstance, configured_instance


def serial_seen(port, ca):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp",
                        "-servername", "localhost", "-CAfile", ca, "-verify_return_error"],
                       input=b"QUIT\r\n", capture_output=True, timeout=20)
    cert = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=r.stdout, capture_output=True)
    m = re.search(rb"serial=([0-9A-F]+)", cert.stdout)
    return m.group(1).decode() if m else None, r


def issue_certificate(tls_dir, out_dir):
    """A new server certificate for localhost from the instance's own CA (as a renewal would)."""
    key = os.path.join(out_dir, "new.key")
    csr = os.path.join(out_dir, "new.csr")
    crt = os.path.join(out_dir, "new.pem")
    ext = os.path.join(out_dir, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(tls_dir, "ca.pem"),
                    "-CAkey", os.path.join(tls_dir, "ca.key"), "-CAcreateserial", "-days", "30",
                    "-extfile", ext, "-out", crt], check=True, capture_output=True)
    return crt, key


class CertificateReloadTest(unittest.TestCase):
    def setUp(self):
        self.pecd = PecdInstance().start()
        self.tls_dir = os.path.join(self.pecd.data_dir, "tls")
        self.port = self.pecd.port("mx")
        self.work = tempfile.mkdtemp(prefix="pecd-cert-")

    def tearDown(self):
        self.pecd.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)

    def replace_pair(self, crt, key):
        # Renewal tools write new files and rename them into place.
        for src, dst in ((key, "server.key"), (crt, "server.pem")):
            tmp = os.path.join(self.tls_dir, "." + dst + ".new")
            shutil.copyfile(src, tmp)
            os.rename(tmp, os.path.join(self.tls_dir, dst))

    def wait_for_serial(self, want, seconds=15):
        deadline = time.monotonic() + seconds
        seen = None
        while time.monotonic() < deadline:
            seen, _ = serial_seen(self.port, self.pecd.ca_file)
            if seen == want:
                return seen
            time.sleep(0.5)
        return seen

    def test_swap_is_used_by_next_handshake_and_open_session_completes(self):
        old_serial, r = serial_seen(self.port, self.pecd.ca_file)
        self.assertIsNotNone(old_serial, r.stdout + r.stderr)
        creds = self.pecd.credentials()
        alice, bob = sorted(creds)[:2]
        ctx = ssl.create_default_context(cafile=self.pecd.ca_file)
        session = smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=30)
        session.starttls(context=ctx)
        session.login(alice, creds[alice])

        crt, key = issue_certificate(self.tls_dir, self.work)
        new_serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", crt],
                                    capture_output=True, text=True).stdout.strip().split("=")[1]
        self.replace_pair(crt, key)
        self.assertEqual(self.wait_for_serial(new_serial), new_serial)

        # The session established before the swap still works to the end.
        refused = session.sendmail(alice, [bob], "Subject: across the swap\r\n\r\nx\r\n")
        self.assertEqual(refused, {})
        session.quit()

    def test_broken_pair_is_refused_and_old_one_stays(self):
        old_serial, _ = serial_seen(self.port, self.pecd.ca_file)
        with open(os.path.join(self.tls_dir, "server.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        time.sleep(4)
        seen, r = serial_seen(self.port, self.pecd.ca_file)
        self.assertEqual(seen, old_serial, r.stdout + r.stderr)
        self.assertRegex(self.pecd.read_log(), r"(?i)(error|refus).*server\.pem|server\.pem.*(error|refus)")

        # A key that does not match the certificate is refused too.
        crt, key = issue_certificate(self.tls_dir, self.work)
        other_crt, other_key = issue_certificate(self.tls_dir, tempfile.mkdtemp(dir=self.work))
        self.replace_pair(crt, other_key)
        time.sleep(4)
        seen, _ = serial_seen(self.port, self.pecd.ca_file)
        self.assertEqual(seen, old_serial)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


class Pki:
    """A CA (openssl) issuing the receiving server's certificate and client certificates."""

    def __init__(self, directory):
        self.dir = directory
        self.ca, self.ca_key = self.path("ca.pem"), self.path("ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                self.ca_key, "-out", self.ca, "-days", "30", "-subj", "/CN=relay test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, usage, days=90):
        key, csr, crt, ext = (self.path(name + s) for s in (".key", ".csr", ".pem", ".ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s\nextendedKeyUsage=%s\n" % (name, usage))
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", csr, "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                "-days", str(days), "-extfile", ext, "-out", crt)
        return crt, key


class ClientCertificateSink(threading.Thread):
    """An SMTP server on loopback that offers STARTTLS and requires a client certificate
    from `client_ca`; records, per message, the client certificate's CN and whether the
    TLS session was resumed."""

    def __init__(self, cert, key, client_ca):
        super().__init__(daemon=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.load_verify_locations(client_ca)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.messages = []  # (client CN, session resumed, data)
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def stop(self):
        self.stopping = True
        self.listener.close()

    def serve(self, conn):
        conn.settimeout(30)
        stream, cn, resumed = conn, None, None
        reader = stream.makefile("rb")
        try:
            stream.sendall(b"220 sink ESMTP\r\n")
            while True:
                line = reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    stream.sendall(b"250-sink\r\n250 STARTTLS\r\n" if cn is None else b"250 sink\r\n")
                elif verb == b"STAR":
                    stream.sendall(b"220 go ahead\r\n")
                    stream = self.context.wrap_socket(conn, server_side=True)
                    reader = stream.makefile("rb")
                    subject = dict(x[0] for x in stream.getpeercert()["subject"])
                    cn, resumed = subject["commonName"], stream.session_reused
                elif verb == b"DATA":
                    stream.sendall(b"354 go on\r\n")
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        chunk = reader.readline()
                        if not chunk:
                            return
                        data += chunk
                    self.messages.append((cn, resumed, data))
                    stream.sendall(b"250 kept\r\n")
                elif verb == b"QUIT":
                    stream.sendall(b"221 bye\r\n")
                    return
                else:  # MAIL, RCPT, RSET, NOOP
                    stream.sendall(b"250 ok\r\n")
        except (OSError, ssl.SSLError):
            return
        finally:
            if stream is not conn:
                stream.close()
            conn.close()


class OutboundClientCertificateReloadTest(unittest.TestCase):
    """[outbound] client_certificate replaced on disk: the next connection presents the new
    one (not a session resumed with the old one), a broken replacement is refused, and the
    certificate's validity is in the log. [outbound] ca_file replaced on disk: a root taken
    out stops deliveries that verify against it, and its return lets them through."""

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="pecd-client-cert-")
        self.pki = Pki(self.work)
        sink_cert, sink_key = self.pki.issue("localhost", "serverAuth")
        self.sink = ClientCertificateSink(sink_cert, sink_key, self.pki.ca)
        self.sink.start()
        self.cert, self.key = os.path.join(self.work, "client.pem"), os.path.join(self.work, "client.key")
        self.trust = os.path.join(self.work, "trust.pem")
        self.replace(self.pki.ca, self.trust)
        self.install(*self.pki.issue("relay-1.pec.localhost", "clientAuth"))
        self.pecd = configured_instance(
            '[tls]\nreload_interval = 1\n'
            '[outbound]\ntls_policy = "verify"\nca_file = "%s"\nclient_certificate = "%s"\nclient_key = "%s"\n'
            'retry_first = 1\nretry_max = 2\n'
            '[[outbound.routes]]\ndomain = "peer.test"\nroute = "smtp:localhost:%d"\n'
            % (self.trust, self.cert, self.key, self.sink.port),
            mailboxes={"alice@pec.localhost": "pw-alice-1"}).start()

    def tearDown(self):
        self.pecd.cleanup()
        self.sink.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    @staticmethod
    def replace(src, dst):
        # As a renewal tool does: the new file written beside, then renamed into place.
        shutil.copyfile(src, dst + ".new")
        os.rename(dst + ".new", dst)

    def install(self, crt, key):
        for src, dst in ((key, self.key), (crt, self.cert)):  # the key first
            self.replace(src, dst)

    def submit(self, subject):
        ctx = ssl.create_default_context(cafile=self.pecd.ca_file)
        with smtplib.SMTP("127.0.0.1", self.pecd.port("submission"), timeout=30) as s:
            s.starttls(context=ctx)
            s.login("alice@pec.localhost", "pw-alice-1")
            s.sendmail("alice@pec.localhost", ["bob@peer.test"], "Subject: %s\r\n\r\nx\r\n" % subject)

    def received(self, subject, seconds=30):
        """(client CN, resumed) of the message once the sink has it; None after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for cn, resumed, data in self.sink.messages:
                if ("Subject: " + subject).encode() in data:
                    return cn, resumed
            time.sleep(0.1)
        return None

    def send(self, subject):
        self.submit(subject)
        got = self.received(subject)
        if got is None:
            self.fail("%s never reached the sink; log:\n%s" % (subject, self.pecd.read_log()[-3000:]))
        return got

    def test_ca_file_renewed_without_restart(self):
        self.assertEqual(self.send("trusted")[0], "relay-1.pec.localhost")
        os.makedirs(os.path.join(self.work, "other"))
        self.replace(Pki(os.path.join(self.work, "other")).ca, self.trust)  # the sink's root taken out
        self.pecd.wait_for_log(r"info.*tls: reloaded outbound CA file .*trust\.pem")
        time.sleep(2.5)  # the cached SMTP session is closed by now
        self.submit("distrusted")
        self.assertIsNone(self.received("distrusted", seconds=5), "delivered to a server whose root is gone")
        self.assertRegex(self.pecd.read_log(), r"verdict=defer")
        self.replace(self.pki.ca, self.trust)  # and back
        self.assertEqual(self.received("distrusted")[0], "relay-1.pec.localhost")

    def test_renewal_is_presented_by_the_next_connection(self):
        self.assertRegex(self.pecd.read_log(), r"info.*tls: outbound client certificate .*client\.pem valid for 89 "
                                               r"more days")
        self.assertEqual(self.send("first"), ("relay-1.pec.localhost", False))
        self.install(*self.pki.issue("relay-2.pec.localhost", "clientAuth", days=5))
        self.pecd.wait_for_log(r"tls: reloaded outbound client certificate .*client\.pem")
        self.assertRegex(self.pecd.read_log(), r"warn.*tls: outbound client certificate .*client\.pem expires in 4 "
                                               r"days")
        time.sleep(2.5)  # the first message's SMTP session, cached for 2 s, is closed by now
        cn, resumed = self.send("second")
        self.assertEqual(cn, "relay-2.pec.localhost")
        self.assertFalse(resumed, "a TLS session of the old certificate was resumed")

        # A replacement whose key is another certificate's is refused; the pair in use stays.
        crt, _ = self.pki.issue("relay-3.pec.localhost", "clientAuth")
        self.install(crt, self.pki.path("localhost.key"))
        self.pecd.wait_for_log(r"error.*outbound client certificate reload refused, keeping the previous one: .*"
                               r"client\.key: private key does not match")
        time.sleep(2.5)  # the final state of both files has been tried by now
        # (a check between the two renames may refuse the intermediate state as well)
        refusals = len(re.findall(r"reload refused", self.pecd.read_log()))
        self.assertEqual(self.send("third")[0], "relay-2.pec.localhost")
        time.sleep(2.5)
        self.assertEqual(len(re.findall(r"reload refused", self.pecd.read_log())), refusals,
                         "the same broken files were read again")


if __name__ == "__main__":
    unittest.main(verbosity=2)
