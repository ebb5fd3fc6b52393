"""rsa_speed - the peer figure of the PEC benchmarks: RSA-2048 signatures/s from openssl."""
import re
import subprocess


def rsa_sign_rate():
    """`openssl speed rsa2048` signatures per second on one core, or None if unreadable."""
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], capture_output=True, text=True,
                         timeout=120).stdout
    m = re.search(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)", out, re.M)
    return float(m.group(1)) if m else None
