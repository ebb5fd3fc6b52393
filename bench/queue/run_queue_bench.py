#!/usr/bin/env python3
"""run_queue_bench.py - pecd against Postfix: durable accept, and accept plus relay

One run on this machine, both servers set up the same way: accept SMTP on 127.0.0.1 for
the domain bench.test, write every message durably before the 250 (pecd: fsync of file,
directory and database; Postfix: its default fsync of the queue file), and relay it to
an smtp-sink. Postfix's smtp-source sends the load (default: 20 parallel sessions,
5 KB messages, 20 000 messages, one recipient each).

Printed per server: messages per second accepted (smtp-source's wall time), messages per
second accepted and relayed (until the queue is empty), and for pecd its peak resident
memory (VmHWM); then the ratios pecd / Postfix.

Usage: run_queue_bench.py [--build DIR] [--messages N] [--sessions N] [--size BYTES]
Needs root (smtp-sink and Postfix drop privileges to the postfix user).
"""
import argparse
import glob
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
POSTFIX_DIR = "/tmp/pecd-bench-postfix"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=30):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on port %d" % port)


def smtp_source(port, args):
    cmd = ["/usr/sbin/smtp-source", "-s", str(args.sessions), "-l", str(args.size), "-m", str(args.messages),
           "-f", "sender@source.test", "-t", "rcpt@bench.test", "-M", "bench-client.test", "127.0.0.1:%d" % port]
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if r.returncode != 0:
        raise RuntimeError("smtp-source failed: " + r.stdout + r.stderr)
    return start, elapsed


def wait_until(predicate, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for the queue to drain")


def start_sink(port):
    p = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "postfix", "127.0.0.1:%d" % port, "256"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_pecd(args, sink_port):
    data = tempfile.mkdtemp(prefix="pecd-bench-")
    pecd = os.path.join(args.build, "app/pecd/pecd")
    pecctl = os.path.join(args.build, "app/pecctl/pecctl")
    subprocess.run([pecctl, "domain", "add", "bench.test", "--route", "smtp:127.0.0.1:%d" % sink_port,
                    "--data-dir", data], check=True, capture_output=True)
    log = open(os.path.join(data, "pecd.log"), "wb")
    proc = subprocess.Popen([pecd, "--data-dir", data, "--any-port", "--smtp-only"], stdout=log, stderr=subprocess.STDOUT)
    try:
        listeners = os.path.join(data, "listeners.json")
        end = time.monotonic() + 30
        while not os.path.exists(listeners):
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("pecd did not start: " + open(os.path.join(data, "pecd.log")).read())
            time.sleep(0.05)
        port = {l["name"]: l["port"] for l in json.load(open(listeners))["listeners"]}["mx"]
        start, accepted = smtp_source(port, args)
        db = sqlite3.connect(os.path.join(data, "pecd.db"), timeout=30)

        def drained():
            return db.execute("SELECT count(*) FROM queue_messages").fetchone()[0] == 0

        done = wait_until(drained, 600)
        rss = peak_rss_kib(proc.pid)
        log.flush()
        delivered = open(os.path.join(data, "pecd.log"), errors="replace").read().count("delivered via")
        if delivered < args.messages:
            raise RuntimeError("pecd relayed only %d of %d messages" % (delivered, args.messages))
        return {"accepted_s": accepted, "relayed_s": done - start, "peak_rss_kib": rss}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def allow_postfix_dir(d):
    main_cf = "/etc/postfix/main.cf"
    text = open(main_cf).read() if os.path.exists(main_cf) else ""
    if d in text:
        return
    lines, found = [], False
    for line in text.splitlines():
        lines.append(line)
        if line.startswith("alternate_config_directories"):
            found = True
            lines.append("    " + d)
    if not found:
        lines.append("alternate_config_directories = " + d)
    with open(main_cf + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(main_cf + ".tmp", main_cf)


def postfix_queue_files():
    n = 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
        n += sum(len(files) for _, _, files in os.walk(os.path.join(POSTFIX_DIR, "queue", sub)))
    return n


def run_postfix(args, sink_port):
    d = POSTFIX_DIR
    subprocess.run(["postfix", "-c", d, "stop"], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "queue"))
    os.makedirs(os.path.join(d, "data"))
    shutil.chown(os.path.join(d, "data"), "postfix")
    port = free_port()
    with open(os.path.join(d, "main.cf"), "w") as f:
        f.write("compatibility_level = 3.6\nqueue_directory = %s/queue\ndata_directory = %s/data\n"
                "mail_owner = postfix\nmyhostname = mx.bench.test\ninet_interfaces = 127.0.0.1\n"
                "inet_protocols = ipv4\nmydestination =\nmynetworks = 127.0.0.0/8\n"
                "relay_domains = bench.test\nrelayhost = [127.0.0.1]:%d\n"
                "maillog_file_prefixes = /tmp\nmaillog_file = %s/log\n"
                "smtpd_client_connection_count_limit = 0\nsmtpd_client_connection_rate_limit = 0\n"
                "smtpd_client_message_rate_limit = 0\nsmtp_destination_concurrency_limit = 20\n"
                "default_destination_concurrency_limit = 20\n" % (d, d, sink_port, d))
    with open(os.path.join(d, "master.cf"), "w") as f:
        f.write("127.0.0.1:%d inet n - n - - smtpd\n" % port +
                "cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n"
                "tlsmgr unix - - n 1000? 1 tlsmgr\nrewrite unix - - n - - trivial-rewrite\n"
                "bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n"
                "verify unix - - n - 1 verify\nproxymap unix - - n - - proxymap\n"
                "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\nerror unix - - n - - error\n"
                "retry unix - - n - - error\ndiscard unix - - n - - discard\nanvil unix - - n - 1 anvil\n"
                "scache unix - - n - 1 scache\npostlog unix-dgram n - n - 1 postlogd\n")
    allow_postfix_dir(d)
    subprocess.run(["postfix", "-c", d, "start"], check=True, capture_output=True)
    try:
        wait_port(port)
        start, accepted = smtp_source(port, args)
        done = wait_until(lambda: postfix_queue_files() == 0, 600)
        return {"accepted_s": accepted, "relayed_s": done - start}
    finally:
        subprocess.run(["postfix", "-c", d, "stop"], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "../../build"))
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5120)
    args = ap.parse_args()
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        pecd = run_pecd(args, sink_port)
        postfix = run_postfix(args, sink_port)
    finally:
        sink.terminate()
        sink.wait()
    n = args.messages
    print("machine: %d cores; %d messages of %d bytes, %d sessions" % (os.cpu_count(), n, args.size,
                                                                        args.sessions))
    for name, r in (("pecd", pecd), ("postfix", postfix)):
        print("%-8s accepted: %8.1f msg/s   accepted+relayed: %8.1f msg/s" %
              (name, n / r["accepted_s"], n / r["relayed_s"]))
    print("ratio pecd/postfix  accepted: %.2fx   accepted+relayed: %.2fx" %
          (postfix["accepted_s"] / pecd["accepted_s"], postfix["relayed_s"] / pecd["relayed_s"]))
    print("pecd peak memory (VmHWM): %.1f MiB" % (pecd["peak_rss_kib"] / 1024.0))


if __name__ == "__main__":
    sys.exit(main())
