"""MX routing through the real daemon against real pecd instances as remote MX hosts.

A local unbound on loopback serves dest.test with MX 10 mx1.dest.test (127.0.0.2) and
MX 20 mx2.dest.test (127.0.0.3). Two pecd instances listen on those addresses; a third
pecd, resolving through unbound, delivers a submitted message: with mx1 down it reaches
mx2, and once mx1 is up the lowest preference wins.
"""
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from pecd_harness import PecdInstance


def free_port(address="127.0.0.1"):
    s = socket.socket()
    s.bind((address, 0))
    p = s.getsockname()[1]
    s.close()
    return p


class MxPeers(unittest.TestCase):
    def test_preference_and_fallback_between_pecd_mx_hosts(self):
        tmp = tempfile.mkdtemp(prefix="pecd-mx-peers-")
        procs, instances = [], []
        try:
            dns_port = free_port()
            conf = os.path.join(tmp, "unbound.conf")
            with open(conf, "w") as f:
                f.write('server:\n  interface: 127.0.0.1\n  port: %d\n  do-daemonize: no\n  username: ""\n'
                        '  chroot: ""\n  directory: "%s"\n  pidfile: ""\n  use-syslog: no\n  logfile: ""\n'
                        '  do-ip6: no\n  access-control: 127.0.0.0/8 allow\n  module-config: "iterator"\n'
                        '  local-zone: "test." static\n'
                        '  local-data: "dest.test. IN MX 10 mx1.dest.test."\n'
                        '  local-data: "dest.test. IN MX 20 mx2.dest.test."\n'
                        '  local-data: "mx1.dest.test. IN A 127.0.0.2"\n'
                        '  local-data: "mx2.dest.test. IN A 127.0.0.3"\n' % (dns_port, tmp))
            unbound = subprocess.Popen(["/usr/sbin/unbound", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            procs.append(unbound)
            mx_port = free_port()

            def receiver(name, address):
                d = os.path.join(tmp, name)
                os.makedirs(d)
                path = os.path.join(d, "pecd.toml")
                with open(path, "w") as f:
                    f.write('data_dir = "%s"\nhostname = "%s.dest.test"\ndomains = ["dest.test"]\n'
                            '[[listener]]\nname = "mx"\naddress = "%s"\nport = %d\ntls = "starttls"\n'
                            % (d, name, address, mx_port))
                inst = PecdInstance(data_dir=d, config=path)
                instances.append(inst)
                inst.pecctl("domain", "add", "dest.test")
                inst.pecctl("mailbox", "add", "bob@dest.test")
                return inst

            mx1, mx2 = receiver("mx1", "127.0.0.2"), receiver("mx2", "127.0.0.3")
            d = os.path.join(tmp, "sender")
            os.makedirs(d)
            path = os.path.join(d, "pecd.toml")
            with open(path, "w") as f:
                f.write('data_dir = "%s"\nhostname = "sender.test"\ndomains = ["src.test"]\n'
                        '[[listener]]\nname = "submission"\nport = 0\ntls = "starttls-required"\nauth = true\n'
                        'require_auth = true\nsender_must_match_auth = true\n'
                        '[dns]\nservers = ["127.0.0.1:%d"]\nipv6 = false\n'
                        '[outbound]\nport = %d\nretry_first = 1\nretry_max = 2\n' % (d, dns_port, mx_port))
            sender = PecdInstance(data_dir=d, config=path)
            instances.append(sender)
            sender.pecctl("domain", "add", "src.test")
            sender.pecctl("mailbox", "add", "alice@src.test", "--password-stdin", input="pw-alice-9\n")
            sender.start()
            mx2.start()

            def send(subject):
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                with smtplib.SMTP("127.0.0.1", sender.port("submission"), timeout=30) as s:
                    s.starttls(context=ctx)
                    s.login("alice@src.test", "pw-alice-9")
                    s.sendmail("alice@src.test", ["bob@dest.test"],
                               "From: alice@src.test\r\nTo: bob@dest.test\r\nSubject: %s\r\n\r\nciao\r\n" % subject)

            def count(inst):
                return len(inst.pecctl("mailbox", "read", "bob@dest.test").stdout.strip().splitlines())

            def wait(inst, n):
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if count(inst) >= n:
                        return
                    time.sleep(0.3)
                self.fail("%s has %d messages; sender log:\n%s" % (inst.data_dir, count(inst), sender.read_log()))

            send("primo")  # mx1 is down: the next MX host takes it
            wait(mx2, 1)
            self.assertRegex(sender.read_log(), r"mx1\.dest\.test|127\.0\.0\.2")
            mx1.start()
            send("secondo")  # both up: preference 10 first
            wait(mx1, 1)
            self.assertEqual(count(mx2), 1)
        finally:
            for inst in instances:
                inst.stop()
            for p in procs:
                p.terminate()
                p.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
