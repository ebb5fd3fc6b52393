#!/usr/bin/env python3
"""demo_network.py DATA_DIR - two demo PEC providers on loopback, exchanging certified mail

Used by scripts/run-demo-network.sh. It sets up, under DATA_DIR, what two real providers
have: one demo CA issuing each provider's signing certificate, one provider index listing
both (signed records joined into one LDIF), a TLS CA with the server certificate both
present on STARTTLS (and verify on outbound), a static route from each to the other's MX,
one clamd scanning for both, and the mailboxes alice@a.pec.localhost and
bob@b.pec.localhost with random passwords (DATA_DIR/demo-credentials.txt, mode 0600).
Then it starts both pecd daemons (the harness of tests/e2e), prints the ports and the
commands to try, and runs until interrupted.
"""
import os
import secrets
import shutil
import signal
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))
os.environ.setdefault("PECD_BINARY_DIR", os.path.join(ROOT, "build"))

from clamd_harness import ClamdInstance  # noqa: E402
from pec_network import PECCTL, PecNetwork  # noqa: E402

MARKER = ".pecd-demo-network"


def main():
    data = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "run-demo")
    if os.path.exists(data):
        if not os.path.exists(os.path.join(data, MARKER)):
            raise SystemExit("%s exists and was not made by this script; give another directory" % data)
        shutil.rmtree(data)  # each run starts a fresh lab: new CA, keys and index
    os.makedirs(data)
    open(os.path.join(data, MARKER), "w").close()
    clamd = ClamdInstance(os.path.join(data, "clamav")).start()
    net = PecNetwork(data, [("a.pec.localhost", "Gestore Demo A"), ("b.pec.localhost", "Gestore Demo B")], clamd)
    a, b = net.providers
    net.prepare()
    creds = []
    for provider, local in ((a, "alice"), (b, "bob")):
        pw = secrets.token_urlsafe(15)
        creds.append((provider.add_mailbox(local, pw), pw, provider))
    fd = os.open(os.path.join(data, "demo-credentials.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# address password\n" + "".join("%s %s\n" % (addr, pw) for addr, pw, _ in creds))
    net.start()
    (alice, _, _), (bob, _, _) = creds
    cred_file = os.path.join(data, "demo-credentials.txt")
    print("Two PEC providers are running (Ctrl-C stops them):")
    for p in (a, b):
        print("  %-16s MX 127.0.0.1:%d  submission 127.0.0.1:%d  data %s"
              % (p.domain, p.mx_port, p.submission_port, p.data_dir))
    print("Send a certified message from alice (provider A) to bob (provider B):")
    print("  swaks --server 127.0.0.1 --port %d --tls --auth PLAIN --auth-user %s --auth-password \"$(awk '$1==\"%s\"{print $2}' %s)\" --from %s --to %s"
          % (a.submission_port, alice, alice, cred_file, alice, bob))
    print("Then: alice has the accettazione and the avvenuta consegna, bob the busta di trasporto:")
    print("  %s mailbox read %s --data-dir %s" % (PECCTL, alice, a.data_dir))
    print("  %s mailbox read %s --data-dir %s" % (PECCTL, bob, b.data_dir))
    print("A message's events from the legal log (the Message-Id swaks printed, without <>):")
    print("  %s pec history MESSAGE-ID --data-dir %s" % (PECCTL, a.data_dir))
    sys.stdout.flush()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    net.stop()
    clamd.stop()


if __name__ == "__main__":
    main()
