"""clamd_harness - a real clamd for black-box tests, offline, in a temporary directory.

ClamdInstance(dir) writes clamd.conf (LocalSocket dir/clamd.sock, Foreground) and a
one-line custom signature database for the EICAR test string (.hdb "md5:size:Name"),
starts /usr/sbin/clamd and waits until it answers PING. No signature download is needed.
"""
import hashlib
import os
import socket
import subprocess
import time

CLAMD = "/usr/sbin/clamd"
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Pecd.Test.EICAR"


def cpu_list(text):
    """'1', '0,1' or '0-1' as a set of CPU numbers (argparse type of the benchmarks' --clamd-cpus)."""
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


class ClamdInstance:
    def __init__(self, directory, stream_max="100M", temporary_directory=None, cpus=None):
        """temporary_directory: clamd's TemporaryDirectory, where it writes each INSTREAM
        before scanning it (default: clamd's own, /tmp); a tmpfs saves a disk file per scan.
        cpus: the CPUs clamd's threads may run on (default: all). clamd maps and unmaps
        memory for every scan; with its threads on several CPUs each unmapping interrupts
        the others to flush their TLBs, which on a virtual machine is a VM exit each."""
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.socket = os.path.join(directory, "clamd.sock")
        self.stream_max = stream_max
        self.temporary_directory = temporary_directory
        self.cpus = set(cpus) if cpus else None
        self.proc = None

    def start(self, timeout=90):
        if not os.path.exists(CLAMD):
            raise RuntimeError(CLAMD + " is missing (install clamav-daemon)")
        with open(os.path.join(self.dir, "pecd-test.hdb"), "w") as f:
            f.write("%s:%d:%s\n" % (hashlib.md5(EICAR).hexdigest(), len(EICAR), SIGNATURE))
        conf = os.path.join(self.dir, "clamd.conf")
        with open(conf, "w") as f:
            f.write("LocalSocket %s\nForeground yes\nDatabaseDirectory %s\nLogFile %s\n"
                    "StreamMaxLength %s\nMaxThreads 12\n"
                    % (self.socket, self.dir, os.path.join(self.dir, "clamd.log"), self.stream_max))
            if self.temporary_directory:
                os.makedirs(self.temporary_directory, exist_ok=True)
                f.write("TemporaryDirectory %s\n" % self.temporary_directory)
        with open(os.path.join(self.dir, "clamd.out"), "ab") as out:
            self.proc = subprocess.Popen([CLAMD, "-c", conf], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("clamd exited: " + self.read_log())
            if self.ping():
                self._pin()
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("clamd did not answer: " + self.read_log())

    def _pin(self):
        # Every thread clamd has now; the ones it starts later inherit the mask.
        if self.cpus:
            for tid in os.listdir("/proc/%d/task" % self.proc.pid):
                os.sched_setaffinity(int(tid), self.cpus)

    def ping(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.connect(self.socket)
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
        except OSError:
            return False
        finally:
            s.close()

    def read_log(self):
        text = ""
        for name in ("clamd.out", "clamd.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    text += f.read()[-4000:]
        return text

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
