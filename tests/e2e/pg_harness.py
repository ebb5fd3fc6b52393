"""pg_harness - a real PostgreSQL server for black-box tests and benchmarks, on loopback.

PostgresInstance(durable=False).start() runs Debian's initdb and pg_ctl as the `postgres`
system user (both refuse root) in a fresh directory (tmpfs when there is one), listening
on 127.0.0.1 at a free port, and creates the role `pecd` with a random password and the
database `pecd`. conninfo() is what pecd's [store] conninfo takes (no password: that goes
in password_file, written 0600). durable=False turns the server's own fsync off (the
data is thrown away; the client-side commit semantics pecd relies on are unchanged);
benchmarks pass durable=True to compare with SQLite on equal terms. stop() removes it all.
"""
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile

from pec_network import free_port


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (install Debian's postgresql package)")
    return os.path.dirname(found[-1])


class PostgresInstance:
    def __init__(self, durable=False, max_connections=100):
        self.durable = durable
        self.max_connections = max_connections
        self.bin = _bin_dir()
        parent = "/dev/shm" if os.path.isdir("/dev/shm") and not durable else None
        self.dir = tempfile.mkdtemp(prefix="pecd-pg-", dir=parent)
        self.port = None
        self.password = secrets.token_hex(16)
        self.password_file = None
        self.running = False

    def _as_postgres(self, *args, timeout=120):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              timeout=timeout)

    def start(self):
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.dir, "data")
        r = self._as_postgres(os.path.join(self.bin, "initdb"), "-D", data, "-U", "postgres",
                              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                              "--no-instructions", *([] if self.durable else ["--no-sync"]))
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stdout + r.stderr)
        for _ in range(3):
            self.port = free_port()
            opts = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c max_connections=%d"
                    " -c shared_buffers=64MB -c log_min_messages=warning" % (self.port, self.dir, self.max_connections))
            if not self.durable:
                opts += " -c fsync=off -c full_page_writes=off"
            r = self._as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", data, "-l",
                                  os.path.join(self.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start")
            if r.returncode == 0:
                self.running = True
                break
        if not self.running:
            raise RuntimeError("PostgreSQL did not start: " + r.stdout + r.stderr)
        self.sql("CREATE ROLE pecd LOGIN PASSWORD '%s'" % self.password)
        self.sql("CREATE DATABASE pecd OWNER pecd")
        fd, self.password_file = tempfile.mkstemp(prefix="pecd-pg-password-")
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        os.chmod(self.password_file, 0o600)
        return self

    def sql(self, statement, dbname="postgres"):
        r = self._as_postgres("psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", dbname,
                              "-v", "ON_ERROR_STOP=1", "-Atc", statement, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr)
        return r.stdout

    def conninfo(self):
        return "host=127.0.0.1 port=%d dbname=pecd user=pecd" % self.port

    def stop(self):
        if self.running:
            self._as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.dir, "data"),
                              "-m", "immediate", "-w", "-t", "30", "stop")
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.password_file and os.path.exists(self.password_file):
            os.unlink(self.password_file)
