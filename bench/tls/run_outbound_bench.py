#!/usr/bin/env python3
"""run_outbound_bench.py - outbound SMTP throughput over STARTTLS with TLS session reuse:
pecd's client TLS path (bench_tls_outbound) against Postfix's smtp client, same sink, same run.

The sink is smtp-sink behind a Postfix smtpd that terminates STARTTLS and hands each
transaction to smtp-sink through its before-queue proxy (smtp-sink itself speaks no TLS).
Both senders open one connection per message (Postfix: connection caching off), do
STARTTLS every time and resume TLS sessions (pecd: ClientTls session cache; Postfix:
smtp_tls_session_cache_database), with the same concurrency.

Postfix side: N messages are injected with smtp-source and held (defer_transports=smtp);
the clock runs from the release until the N-th "status=sent" in its log.

Usage: run_outbound_bench.py [--build DIR] [--messages N] [--concurrency C]
Prints both figures and the ratio pecd/Postfix (bar: >= 1.0).
"""
import argparse
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

CONF = "/tmp/pecd-tls-bench-postfix"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, limit=15):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def allow_config_dir(d):
    main_cf = "/etc/postfix/main.cf"
    text = open(main_cf).read() if os.path.exists(main_cf) else ""
    if d in text:
        return
    lines = text.splitlines(True)
    for i, line in enumerate(lines):
        if line.startswith("alternate_config_directories"):
            lines.insert(i + 1, "    %s\n" % d)
            break
    else:
        lines.append("alternate_config_directories = %s\n" % d)
    with open(main_cf + ".tmp", "w") as f:
        f.write("".join(lines))
    os.replace(main_cf + ".tmp", main_cf)


def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def make_certificate(d):
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", d + "/sink.key", "-out", d + "/sink.pem", "-days", "30", "-subj", "/CN=sink.test",
        "-addext", "subjectAltName=DNS:sink.test")


def write_postfix_config(d, sink_port, smtpd_port, inject_port, concurrency):
    with open(d + "/main.cf", "w") as f:
        f.write("""compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
myhostname = sender.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
maillog_file_prefixes = /tmp
maillog_file = {d}/log
relayhost = [127.0.0.1]:{smtpd}
defer_transports = smtp
smtp_tls_security_level = encrypt
smtp_tls_session_cache_database = btree:{d}/data/smtp_scache
smtp_connection_cache_on_demand = no
smtp_destination_concurrency_limit = {c}
initial_destination_concurrency = {c}
default_process_limit = 100
smtpd_recipient_restrictions = permit_mynetworks, reject
smtp_tls_loglevel = 1
""".format(d=d, smtpd=smtpd_port, c=concurrency))
    services = """127.0.0.1:{smtpd} inet n - n - - smtpd -o myhostname=sink.test -o smtpd_tls_security_level=may -o smtpd_tls_cert_file={d}/sink.pem -o smtpd_tls_key_file={d}/sink.key -o smtpd_proxy_filter=127.0.0.1:{sink}
127.0.0.1:{inject} inet n - n - - smtpd -o smtpd_tls_security_level=none
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
""".format(d=d, smtpd=smtpd_port, sink=sink_port, inject=inject_port)
    with open(d + "/master.cf", "w") as f:
        f.write(services)


def count_in_log(d, needle):
    try:
        with open(d + "/log", errors="replace") as f:
            return sum(1 for line in f if needle in line)
    except OSError:
        return 0


def queued(d):
    return sum(len(files) for _, _, files in os.walk(d + "/queue/deferred"))


def postfix_run(d, inject_port, n, concurrency, limit=600):
    run("smtp-source", "-s", str(concurrency), "-m", str(n), "-l", "2500", "-f", "bench@sender.test",
        "-t", "sink@remote.test", "127.0.0.1:%d" % inject_port, timeout=limit)
    deadline = time.monotonic() + limit
    while queued(d) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("postfix queued only %d of %d" % (queued(d), n))
        time.sleep(0.05)
    sent_before = count_in_log(d, "status=sent")
    start = time.monotonic()
    run("postconf", "-c", d, "-e", "defer_transports =")
    run("postfix", "-c", d, "reload")
    run("postqueue", "-c", d, "-f")
    while count_in_log(d, "status=sent") - sent_before < n:
        if time.monotonic() > deadline:
            raise RuntimeError("postfix sent only %d of %d" % (count_in_log(d, "status=sent") - sent_before, n))
        time.sleep(0.02)
    seconds = time.monotonic() - start
    run("postconf", "-c", d, "-e", "defer_transports = smtp")
    run("postfix", "-c", d, "reload")
    return {"messages": n, "seconds": round(seconds, 3), "messages_per_second": round(n / seconds, 1),
            "resumed": None}  # Postfix logs no per-connection reuse at smtp_tls_loglevel 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "../../build"))
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    sender = os.path.join(a.build, "bench/tls/bench_tls_outbound")
    if not os.access(sender, os.X_OK):
        sys.exit("build bench_tls_outbound first (%s)" % sender)

    subprocess.run(["postfix", "-c", CONF, "stop"], capture_output=True)
    shutil.rmtree(CONF, ignore_errors=True)
    os.makedirs(CONF + "/queue")
    os.makedirs(CONF + "/data")
    pw = pwd.getpwnam("postfix")
    os.chown(CONF + "/data", pw.pw_uid, pw.pw_gid)
    make_certificate(CONF)
    sink_port, smtpd_port, inject_port = free_port(), free_port(), free_port()
    write_postfix_config(CONF, sink_port, smtpd_port, inject_port, a.concurrency)
    allow_config_dir(CONF)
    sink = subprocess.Popen(["smtp-sink", "-u", "postfix", "127.0.0.1:%d" % sink_port, "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run("postfix", "-c", CONF, "start")
        for p in (sink_port, smtpd_port, inject_port):
            wait_port(p)
        # Warm-up, so both sides start with a resumable session and warm processes.
        subprocess.run([sender, "--port", str(smtpd_port), "--messages", "20", "--concurrency", "2"],
                       check=True, capture_output=True, timeout=120)
        pecd = json.loads(run(sender, "--port", str(smtpd_port), "--messages", str(a.messages),
                              "--concurrency", str(a.concurrency), timeout=900).stdout)
        postfix = postfix_run(CONF, inject_port, a.messages, a.concurrency)
    finally:
        subprocess.run(["postfix", "-c", CONF, "stop"], capture_output=True)
        sink.terminate()
        sink.wait(timeout=10)
    ratio = pecd["messages_per_second"] / postfix["messages_per_second"]
    print(json.dumps({"pecd": pecd, "postfix": postfix, "ratio_pecd_to_postfix": round(ratio, 2),
                      "messages": a.messages, "concurrency": a.concurrency}, indent=2))
    print("outbound STARTTLS with session reuse: pecd %.1f msg/s, Postfix %.1f msg/s, ratio %.2f (bar >= 1.0)"
          % (pecd["messages_per_second"], postfix["messages_per_second"], ratio))


if __name__ == "__main__":
    main()
