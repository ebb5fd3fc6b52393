#!/usr/bin/env python3
"""idle_memory.py - resident memory of pecd per idle SMTP connection.

Starts pecd on loopback, opens N idle connections (plain: banner read; TLS: STARTTLS
and a completed handshake), and reports the growth of pecd's resident set size per
connection. Bars: < 50 KB per plain connection, < 100 KB per TLS connection.

usage: bench/smtp/idle_memory.py [--connections 2000] [--build build]
"""
import argparse
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/e2e"))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kb(pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "../../build"))
    a = ap.parse_args()
    os.environ["PECD_BINARY_DIR"] = os.path.abspath(a.build)
    from pecd_harness import PecdInstance

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = a.connections
    tmp = tempfile.TemporaryDirectory(prefix="pecd-bench-")
    conf = os.path.join(tmp.name, "pecd.toml")
    with open(conf, "w") as f:
        f.write('data_dir = "%s"\nthreads = 2\n[limits]\nconnections = %d\nconnections_per_client = %d\n'
                '[[listener]]\nname = "mx"\nport = 0\ntls = "starttls"\n' % (tmp.name, 4 * n + 10, 4 * n + 10))
    inst = PecdInstance(data_dir=tmp.name, config=conf).start()
    pid = inst.proc.pid
    port = inst.port("mx")
    ctx = ssl.create_default_context(cafile=inst.ca_file)
    try:
        # Warm up: one full session of each kind so allocator pools and TLS tables exist.
        for tls in (False, True):
            s = socket.create_connection(("127.0.0.1", port))
            s.recv(512)
            if tls:
                s.sendall(b"EHLO bench\r\n"); s.recv(4096)
                s.sendall(b"STARTTLS\r\n"); s.recv(512)
                s = ctx.wrap_socket(s, server_hostname="localhost")
            s.close()
        base = settle(pid)
        plain = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.recv(512)
            plain.append(s)
        after_plain = settle(pid)
        tls_socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.recv(512)
            s.sendall(b"EHLO bench\r\n")
            buf = b""
            while not buf.endswith(b"250 DSN\r\n"):
                buf += s.recv(4096)
            s.sendall(b"STARTTLS\r\n")
            s.recv(512)
            t = ctx.wrap_socket(s, server_hostname="localhost")
            tls_socks.append(t)
        after_tls = settle(pid)
        per_plain = (after_plain - base) * 1024 / n
        per_tls = (after_tls - after_plain) * 1024 / n
        print("machine: %d cores; connections: %d plain + %d TLS" % (os.cpu_count(), n, n))
        print("pecd RSS: base %d KB, +plain %d KB, +TLS %d KB" % (base, after_plain, after_tls))
        print("memory per idle plain connection: %.1f KB (bar < 50 KB): %s"
              % (per_plain / 1024, "PASS" if per_plain < 50 * 1024 else "FAIL"))
        print("memory per idle TLS connection:   %.1f KB (bar < 100 KB): %s"
              % (per_tls / 1024, "PASS" if per_tls < 100 * 1024 else "FAIL"))
        for s in plain + tls_socks:
            s.close()
    finally:
        inst.cleanup()


if __name__ == "__main__":
    main()
