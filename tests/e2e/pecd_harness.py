"""pecd_harness - start the real pecd daemon for black-box tests.

PecdInstance(tmpdir) runs `pecd --data-dir DIR --any-port` (or with a config file),
waits until DIR/listeners.json appears (pecd writes it once it is ready to serve) and
exposes each listener's port. Everything listens on loopback only. The instance is
stopped (SIGTERM, then SIGKILL) when the test ends.
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BINARY_DIR = os.environ.get("PECD_BINARY_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
PECD = os.path.join(BINARY_DIR, "app/pecd/pecd")
PECCTL = os.path.join(BINARY_DIR, "app/pecctl/pecctl")


class PecdInstance:
    def __init__(self, data_dir=None, config=None, extra_args=(), start_timeout=30, pec=False):
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pecd-e2e-")
            data_dir = self._tmp.name
        self.data_dir = data_dir
        self.config = config
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        # The embedded default is a PEC provider; the SMTP-level suites run it as a plain
        # SMTP server (--smtp-only) so what they send is stored as sent.
        self.pec = pec
        self.proc = None
        self.listeners = {}

    def start(self):
        listeners = os.path.join(self.data_dir, "listeners.json")
        if os.path.exists(listeners):
            os.unlink(listeners)
        args = [PECD, "--data-dir", self.data_dir]
        if self.config:
            args += ["--config", self.config]
        else:
            args += ["--any-port"]
            if not self.pec:
                args += ["--smtp-only"]
        args += self.extra_args
        self.log = open(os.path.join(self.data_dir, "pecd.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pecd exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            if os.path.exists(listeners):
                with open(listeners) as f:
                    doc = json.load(f)
                self.listeners = {l["name"]: l for l in doc["listeners"]}
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("pecd did not become ready:\n" + self.read_log())

    def read_log(self):
        try:
            with open(os.path.join(self.data_dir, "pecd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern, seconds=15):
        """Waits (bounded) until a line of the log matches the regular expression; raises
        AssertionError with the log's end otherwise."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if re.search(pattern, self.read_log()):
                return
            time.sleep(0.2)
        raise AssertionError("no %r in the log:\n%s" % (pattern, self.read_log()[-4000:]))

    def port(self, name):
        return self.listeners[name]["port"]

    @property
    def ca_file(self):
        return os.path.join(self.data_dir, "tls", "ca.pem")

    def credentials(self):
        """The demo accounts of the embedded default: {address: password}."""
        creds = {}
        with open(os.path.join(self.data_dir, "demo-credentials.txt")) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    addr, pw = line.split(None, 1)
                    creds[addr] = pw
        return creds

    def pecctl(self, *args, input=None, check=True):
        return subprocess.run([PECCTL, *args, "--data-dir", self.data_dir], input=input,
                              capture_output=True, text=True, check=check, timeout=60)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()

    def cleanup(self):
        self.stop()
        if self._tmp:
            self._tmp.cleanup()


# Listeners of a configured instance: any free port, as listeners.json reports.
LISTENERS = """
[[listener]]
name = "mx"
port = 0
tls = "starttls"
[[listener]]
name = "submission"
port = 0
tls = "starttls-required"
auth = true
require_auth = true
"""


def configured_instance(toml_extra="", listeners=LISTENERS, mailboxes=None):
    """A PecdInstance run from a TOML file in a fresh data directory: domain pec.localhost
    and the given mailboxes ({address: password}) created with the real pecctl first."""
    inst = PecdInstance()
    path = os.path.join(inst.data_dir, "pecd.toml")
    with open(path, "w") as f:
        f.write('data_dir = "%s"\ndomains = ["pec.localhost"]\n%s\n%s' % (inst.data_dir, toml_extra, listeners))
    inst.config = path
    inst.pecctl("domain", "add", "pec.localhost")
    for address, password in (mailboxes or {}).items():
        inst.pecctl("mailbox", "add", address, "--password-stdin", input=password + "\n")
    return inst


def raw_dialog(port, chunks, host="127.0.0.1", timeout=10):
    """Sends bytes chunk by chunk on a plain connection; returns everything received."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        data = s.recv(4096)
        for c in chunks:
            s.sendall(c)
            time.sleep(0.05)
        s.shutdown(socket.SHUT_WR)
        while True:
            try:
                more = s.recv(65536)
            except socket.timeout:
                break
            if not more:
                break
            data += more
        return data.decode("latin-1")
    finally:
        s.close()


class PecdTestCase(unittest.TestCase):
    """A test class with one pecd instance for all its tests (embedded default)."""
    instance_args = ()

    @classmethod
    def setUpClass(cls):
        cls.pecd = PecdInstance(extra_args=cls.instance_args).start()

    @classmethod
    def tearDownClass(cls):
        cls.pecd.cleanup()
