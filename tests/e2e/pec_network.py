"""pec_network - several real pecd PEC providers on loopback, one shared provider index.

PecNetwork(tmpdir, domains) prepares, for each domain, a provider with:
  - its own PEC signing certificate (posta-certificata@<domain>) from one shared demo CA
    (`pecctl pec demo-identity`), which is every provider's trust anchor;
  - a TLS server certificate from one shared TLS CA (openssl), so providers verify each
    other on outbound TLS (PEC domains of the index get at least `verify`);
  - one index LDIF listing every provider (`pecctl index publish --ldif-out`, joined);
  - a TOML configuration: MX and submission listeners on fixed free loopback ports,
    [[outbound.routes]] to every other provider's MX, clamd over a unix socket;
  - mailboxes created with the real pecctl before the start.
Each Provider is a PecdInstance with helpers to submit mail and to read mailboxes.
"""
import email
import email.policy
import email.utils
import json
import os
import smtplib
import socket
import ssl
import subprocess
import time

from pecd_harness import PECCTL, PecdInstance


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=120, **kw)


def make_tls_ca(directory):
    """A TLS CA and a server certificate for 127.0.0.1 / localhost, made with openssl."""
    os.makedirs(directory, exist_ok=True)
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, cert = (os.path.join(directory, n) for n in ("server.key", "server.csr", "server.pem"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "30", "-subj", "/CN=pecd test TLS CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
        "-days", "30", "-extfile", ext)
    return ca, cert, key


class Provider(PecdInstance):
    def __init__(self, network, domain, name, root=None):
        """root: the data directory (default NETWORK_DIR/DOMAIN); a second node of the
        same provider gets its own, and shares the first node's signing identity."""
        self.network = network
        self.domain = domain
        self.name = name
        self.mx_port = free_port()
        self.submission_port = free_port()
        root = root or os.path.join(network.dir, domain)
        os.makedirs(root, exist_ok=True)
        super().__init__(data_dir=root, pec=True)
        self.passwords = {}
        self.extra_toml = ""
        self.store_toml = ""  # a [store] section (PostgreSQL nodes); pecctl then reads it too
        self.index_toml = ""  # more keys of the [index] section
        self.pec_toml = ""  # more keys of the [pec] section
        self.outbound_toml = ""  # more keys of the [outbound] section
        self.top_toml = ""  # top-level keys (before the first section)
        self.antivirus = True
        self.antivirus_toml = ""  # more keys of the [antivirus] section

    @property
    def service_mailbox(self):
        return "posta-certificata@" + self.domain

    def write_config(self):
        n = self.network
        routes = "".join('[[outbound.routes]]\ndomain = "%s"\nroute = "smtp:localhost:%d"\n' % (p.domain, p.mx_port)
                         for p in n.providers if p.domain != self.domain)
        av = ('enabled = true\nsocket = "%s"\n%s' % (n.clamd.socket, self.antivirus_toml) if self.antivirus
              else "enabled = false\n")
        text = """data_dir = "{dir}"
hostname = "localhost"
{top}domains = ["{domain}"]
[tls]
certificate = "{tls_cert}"
key = "{tls_key}"
[[listener]]
name = "mx"
port = {mx}
tls = "starttls"
[[listener]]
name = "submission"
port = {sub}
tls = "starttls-required"
auth = true
require_auth = true
sender_must_match_auth = true
[pec]
provider_name = "{name}"
domain = "{domain}"
signing_certificate = "{sign_cert}"
signing_key = "{sign_key}"
trust_anchors = "{ca}"
timer_interval = 1
{pec_extra}[index]
source = "file"
file = "{index}"
{index_extra}[antivirus]
{av}[outbound]
ca_file = "{tls_ca}"
retry_first = 1
retry_max = 2
{outbound_extra}{routes}{store}{extra}
""".format(dir=self.data_dir, domain=self.domain, tls_cert=n.tls_cert, tls_key=n.tls_key, mx=self.mx_port,
           sub=self.submission_port, name=self.name, sign_cert=self.signing["certificate"],
           sign_key=self.signing["key"], ca=n.pec_ca, index=n.index_file, av=av, tls_ca=n.tls_ca,
           routes=routes, store=self.store_toml, extra=self.extra_toml, index_extra=self.index_toml, pec_extra=self.pec_toml,
           outbound_extra=self.outbound_toml, top=self.top_toml)
        self.config = os.path.join(self.data_dir, "pecd.toml")
        with open(self.config, "w") as f:
            f.write(text)

    def pecctl(self, *args, input=None, check=True, raw=False):
        extra = ["--config", self.config] if self.store_toml and args and args[0] in ("mailbox", "domain", "queue",
                                                                                      "log", "pec") else []
        return subprocess.run([PECCTL, *args, "--data-dir", self.data_dir, *extra], input=input,
                              capture_output=True, text=not raw, check=check, timeout=60)

    def read(self, address, message_id):
        return self.pecctl("mailbox", "read", address, str(message_id), raw=True).stdout

    def add_mailbox(self, local, password="secret-" + "pw", *flags):
        address = local + "@" + self.domain
        args = ["mailbox", "add", address, *flags]
        if password:
            args.append("--password-stdin")
            self.passwords[address] = password
        self.pecctl(*args, input=(password + "\n") if password else None)
        return address

    # --- sending ---
    def submit(self, sender, rcpts, subject="prova", body="Testo del messaggio.\r\n", headers=None,
               to=None, cc=None, raw=None):
        """Submits on the submission port (STARTTLS + AUTH PLAIN) with smtplib."""
        if raw is None:
            hdrs = {"Date": email.utils.formatdate(localtime=True), "From": sender, "To": ", ".join(to if to is not None else rcpts), "Subject": subject,
                    "Message-ID": "<%s.%d@client.test>" % (subject.replace(" ", "-"), time.monotonic_ns()),
                    "MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8"}
            if cc:
                hdrs["Cc"] = ", ".join(cc)
            hdrs.update(headers or {})
            raw = "".join("%s: %s\r\n" % kv for kv in hdrs.items() if kv[1] is not None) + "\r\n" + body
        ctx = ssl.create_default_context(cafile=self.network.tls_ca)
        with smtplib.SMTP("127.0.0.1", self.submission_port, timeout=30) as s:
            s.starttls(context=ctx)
            s.login(sender, self.passwords[sender])
            s.sendmail(sender, rcpts, raw.encode("utf-8") if isinstance(raw, str) else raw)

    def send_mx(self, sender, rcpts, raw):
        """Plain SMTP to the MX port (ordinary mail from the Internet)."""
        with smtplib.SMTP("127.0.0.1", self.mx_port, timeout=30) as s:
            s.sendmail(sender, rcpts, raw.encode("utf-8") if isinstance(raw, str) else raw)

    # --- reading ---
    def messages(self, address):
        out = self.pecctl("mailbox", "read", address, "--json").stdout
        return json.loads(out)


    def parsed(self, address):
        """Every message of a mailbox as (raw bytes, email.message.Message)."""
        return [(b, email.message_from_bytes(b, policy=email.policy.compat32))
                for b in (self.read(address, m["id"]) for m in self.messages(address))]

    def kinds(self, address):
        """The PEC kind of each message: X-Ricevuta, X-Trasporto or 'ordinary'."""
        out = []
        for _, m in self.parsed(address):
            out.append(m.get("X-Ricevuta") or ("busta-" + m["X-Trasporto"] if m.get("X-Trasporto") else "ordinary"))
        return out

    def wait_for(self, address, count, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages(address)) >= count:
                return self.parsed(address)
            time.sleep(0.2)
        raise AssertionError("%s: %d of %d messages after %ds; log:\n%s"
                             % (address, len(self.messages(address)), count, timeout, self.read_log()[-6000:]))

    def verify(self, raw):
        """pecctl verify with the shared trust anchor and index: (exit status, JSON report)."""
        path = os.path.join(self.data_dir, "verify-%d.eml" % time.monotonic_ns())
        with open(path, "wb") as f:
            f.write(raw)
        p = subprocess.run([PECCTL, "verify", path, "--trust", self.network.pec_ca, "--index",
                            self.network.index_file, "--json"], capture_output=True, text=True, timeout=60)
        return p.returncode, json.loads(p.stdout) if p.stdout.strip().startswith("{") else p.stdout

    def openssl_verify(self, raw):
        """`openssl cms -verify` on the S/MIME message (independent of pecd's reader)."""
        path = os.path.join(self.data_dir, "smime-%d.eml" % time.monotonic_ns())
        with open(path, "wb") as f:
            f.write(raw)
        p = subprocess.run(["openssl", "cms", "-verify", "-in", path, "-inform", "SMIME", "-CAfile",
                            self.network.pec_ca, "-purpose", "any", "-out", "/dev/null"],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr

    def history(self, message_id):
        return json.loads(self.pecctl("pec", "history", message_id, "--json").stdout)


class PecNetwork:
    def __init__(self, directory, providers, clamd):
        """providers: [(domain, provider name)]; clamd: a started ClamdInstance."""
        self.dir = directory
        self.clamd = clamd
        self.pec_ca_dir = os.path.join(directory, "pec-ca")
        self.tls_ca, self.tls_cert, self.tls_key = make_tls_ca(os.path.join(directory, "tls-ca"))
        self.providers = [Provider(self, d, n) for d, n in providers]
        ldif = []
        for p in self.providers:
            out = os.path.join(p.data_dir, "signing")
            p.signing = json.loads(run(PECCTL, "pec", "demo-identity", "--ca-dir", self.pec_ca_dir, "--domain",
                                       p.domain, "--name", p.name, "--out", out).stdout)
            plain = os.path.join(out, "record.ldif")
            run(PECCTL, "index", "publish", "--name", p.name, "--mail-receipt", p.service_mailbox, "--domain",
                p.domain, "--certificate", p.signing["certificate"], "--key", p.signing["key"],
                "--out", os.path.join(out, "record.p7m"), "--ldif-out", plain)
            with open(plain) as f:
                ldif.append(f.read().strip() + "\n")
        self.pec_ca = os.path.join(self.pec_ca_dir, "ca.pem")
        self.index_file = os.path.join(directory, "index.ldif")
        with open(self.index_file, "w") as f:
            f.write("\n".join(ldif))

    def prepare(self):
        for p in self.providers:
            p.write_config()
            p.pecctl("domain", "add", p.domain)

    def start(self):
        for p in self.providers:
            p.write_config()
            p.start()
        return self

    def stop(self):
        for p in self.providers:
            p.stop()
