#!/usr/bin/env python3
"""run_outbound_bench.py - accept and relay over STARTTLS: pecd against Postfix, same run

Both servers do the same work, one after the other on this machine: accept SMTP on
127.0.0.1 (smtp-source, C parallel sessions, one recipient per message), store each
message durably in their queue, and relay it to the same next hop over STARTTLS with TLS
required (pecd: [outbound] tls_policy = "encrypt"; Postfix: smtp_tls_security_level =
encrypt) and TLS session resumption (pecd: its client session cache; Postfix:
smtp_tls_session_cache_database), and connection reuse on both sides (pecd: its
connection cache, 2 s idle; Postfix: smtp_connection_cache_on_demand with its 2 s
smtp_connection_cache_time_limit), at most C connections to the next hop.

The next hop is smtp-sink behind a Postfix smtpd that terminates STARTTLS and passes each
transaction to smtp-sink through its before-queue proxy (smtp-sink speaks no TLS).

Measured per server: messages per second from the first connection of smtp-source until
the N-th message was relayed (pecd: "delivered via" lines in its log; Postfix: "status=sent"
lines in its log). Printed: both figures and the ratio pecd/Postfix (bar: >= 1.0).

Usage: run_outbound_bench.py [--build DIR] [--messages N] [--concurrency C] [--size BYTES]
Needs root (smtp-sink and Postfix drop privileges to the postfix user).
"""
import argparse
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
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
smtp_tls_security_level = encrypt
smtp_tls_session_cache_database = btree:{d}/data/smtp_scache
smtp_connection_cache_on_demand = yes
smtp_connection_cache_time_limit = 2s
smtp_destination_concurrency_limit = {c}
initial_destination_concurrency = {c}
default_destination_concurrency_limit = {c}
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



def wait_until(predicate, limit, what):
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out: " + what)
        time.sleep(0.02)
    return time.monotonic()


def smtp_source(port, n, concurrency, size, limit):
    run("smtp-source", "-s", str(concurrency), "-m", str(n), "-l", str(size), "-f", "bench@sender.test",
        "-t", "sink@remote.test", "-M", "bench-client.test", "127.0.0.1:%d" % port, timeout=limit)


def postfix_run(d, inject_port, n, concurrency, size, limit=900):
    sent_before = count_in_log(d, "status=sent")
    start = time.monotonic()
    smtp_source(inject_port, n, concurrency, size, limit)
    accepted = time.monotonic() - start
    done = wait_until(lambda: count_in_log(d, "status=sent") - sent_before >= n, limit,
                      "postfix relayed only %d of %d" % (count_in_log(d, "status=sent") - sent_before, n))
    seconds = done - start
    return {"messages": n, "accepted_s": round(accepted, 3), "seconds": round(seconds, 3),
            "messages_per_second": round(n / seconds, 1)}


def pecd_run(build, next_hop_port, n, concurrency, size, limit=900):
    pecd = os.path.join(build, "app/pecd/pecd")
    pecctl = os.path.join(build, "app/pecctl/pecctl")
    data = tempfile.mkdtemp(prefix="pecd-tls-bench-")
    port = free_port()
    conf = os.path.join(data, "pecd.toml")
    with open(conf, "w") as f:
        f.write("""hostname = "mx.bench.test"
data_dir = "{data}"
threads = 2
[[listener]]
name = "mx"
address = "127.0.0.1"
port = {port}
tls = "none"
[outbound]
tls_policy = "encrypt"
connections_per_destination = {c}
""".format(data=data, port=port, c=concurrency))
    run(pecctl, "domain", "add", "remote.test", "--route", "smtp:127.0.0.1:%d" % next_hop_port,
        "--data-dir", data)
    log_path = os.path.join(data, "pecd.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([pecd, "-c", conf], stdout=log, stderr=subprocess.STDOUT)

    def delivered():
        with open(log_path, errors="replace") as f:
            return f.read().count("delivered via")
    try:
        wait_port(port, 30)
        # Warm-up: one message, so the TLS session cache holds a resumable session.
        smtp_source(port, 1, 1, size, limit)
        wait_until(lambda: delivered() >= 1, 60, "pecd warm-up delivery")
        start = time.monotonic()
        smtp_source(port, n, concurrency, size, limit)
        accepted = time.monotonic() - start
        done = wait_until(lambda: delivered() >= n + 1, limit,
                          "pecd relayed only %d of %d" % (delivered() - 1, n))
        seconds = done - start
        text = open(log_path, errors="replace").read()
        tls_lines = [l for l in text.splitlines() if "delivered via" in l]
        encrypted = sum(1 for l in tls_lines if "tls=TLSv1." in l)
        resumed = sum(1 for l in tls_lines if "resumed=yes" in l)
        if encrypted < n + 1:
            raise RuntimeError("pecd relayed %d messages without TLS" % (n + 1 - encrypted))
        return {"messages": n, "accepted_s": round(accepted, 3), "seconds": round(seconds, 3),
                "messages_per_second": round(n / seconds, 1), "tls_resumed": resumed}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "../../build"))
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--size", type=int, default=5120)
    a = ap.parse_args()
    for prog in ("app/pecd/pecd", "app/pecctl/pecctl"):
        if not os.access(os.path.join(a.build, prog), os.X_OK):
            sys.exit("build %s first (in %s)" % (prog, a.build))

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
        pecd = pecd_run(a.build, smtpd_port, a.messages, a.concurrency, a.size)
        # Postfix warm-up: one message through, so its session cache holds a session too.
        postfix_run(CONF, inject_port, 1, 1, a.size)
        postfix = postfix_run(CONF, inject_port, a.messages, a.concurrency, a.size)
    finally:
        subprocess.run(["postfix", "-c", CONF, "stop"], capture_output=True)
        sink.terminate()
        sink.wait(timeout=10)
    ratio = pecd["messages_per_second"] / postfix["messages_per_second"]
    print(json.dumps({"pecd": pecd, "postfix": postfix, "ratio_pecd_to_postfix": round(ratio, 2),
                      "messages": a.messages, "concurrency": a.concurrency, "size": a.size,
                      "cores": os.cpu_count()}, indent=2))
    print("accept + relay over STARTTLS (session reuse), %d messages of %d bytes, %d sessions:"
          % (a.messages, a.size, a.concurrency))
    print("  pecd %.1f msg/s, Postfix %.1f msg/s, ratio pecd/Postfix %.2f (bar >= 1.0)"
          % (pecd["messages_per_second"], postfix["messages_per_second"], ratio))


if __name__ == "__main__":
    main()
