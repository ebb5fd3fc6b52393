"""ProviderCa: `openssl ca` over a PecNetwork's provider CA, to revoke certificates and to
issue CRLs (the CRL tests, and the PEC flow benchmark's CRL of many entries)."""
import os
import subprocess
import time


def openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=300, cwd=cwd)


class ProviderCa:
    """`openssl ca` over the network's provider CA, to revoke and to issue CRLs."""

    def __init__(self, ca_dir, work):
        self.work = work
        os.makedirs(work, exist_ok=True)
        with open(os.path.join(work, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = pec\n[pec]\ndatabase = %s\ncrlnumber = %s\ncertificate = %s\n"
                    "private_key = %s\ndefault_md = sha256\ndefault_crl_days = 7\n"
                    % (os.path.join(work, "index.txt"), os.path.join(work, "crlnumber"),
                       os.path.join(ca_dir, "ca.pem"), os.path.join(ca_dir, "ca.key")))
        open(os.path.join(work, "index.txt"), "w").close()
        with open(os.path.join(work, "crlnumber"), "w") as f:
            f.write("01\n")

    def revoke(self, certificate):
        openssl("ca", "-config", "ca.cnf", "-batch", "-revoke", certificate, "-crl_reason", "keyCompromise",
                cwd=self.work)

    def write_crl(self, path):
        """The CRL written beside `path`, then renamed over it."""
        openssl("ca", "-config", "ca.cnf", "-batch", "-gencrl", "-out", path + ".new", cwd=self.work)
        os.rename(path + ".new", path)

    def revoke_others(self, count):
        """Lists `count` certificates the CA never issued to the network as revoked, written
        straight into openssl's database (one `openssl ca -revoke` each would take minutes):
        the bulk of a real CA's CRL."""
        revoked_at = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 86400))
        expires = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 365 * 86400))
        with open(os.path.join(self.work, "index.txt"), "a") as f:
            for i in range(count):
                f.write("R\t%s\t%s\t%X\tunknown\t/CN=revoked %d\n" % (expires, revoked_at, 0xF0000000 + i, i))
