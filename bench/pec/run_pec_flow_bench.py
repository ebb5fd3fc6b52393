#!/usr/bin/env python3
"""run_pec_flow_bench - end-to-end PEC exchanges per second between two real providers.

Two pecd providers on loopback (tests/e2e/pec_network.py: shared demo CA and index,
verified STARTTLS between them, a real clamd scanning every message). SESSIONS
submitters (one STARTTLS + AUTH connection each) send MESSAGES certified messages from
alice@a.pec.test to bob@b.pec.test. An exchange is complete when both receipts
(accettazione and avvenuta consegna) are in alice's mailbox; the figure is completed
exchanges per second from the first submission to the last receipt.

While the load runs, a probe account submits one message at a time and measures the
time from its 250 reply to the first receipt in its mailbox (the accettazione: the
delivery receipt needs three more hops), giving p50/p99 of the acceptance receipt.

The same run measures `openssl speed rsa2048` (each exchange costs four RSA signatures:
envelope, accettazione, presa in carico, consegna) and repeats the load with the legal
log off ([log] enabled = false), so the cost of logging is a ratio from one run.

    python3 bench/pec/run_pec_flow_bench.py [--build build] [--messages 600] [--sessions 8]
"""
import argparse
import json
import os
import re
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../tests/e2e"))


def mailbox_rows(db, address):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return [r[0] for r in con.execute(
            "SELECT m.received_at FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id"
            " WHERE b.address = ? ORDER BY m.id", (address,))]
    finally:
        con.close()


def run_once(messages, sessions, log_on):
    from clamd_harness import ClamdInstance
    from pec_network import PecNetwork
    tmp = tempfile.TemporaryDirectory(prefix="pecd-bench-pec-")
    clamd = ClamdInstance(os.path.join(tmp.name, "clamd")).start()
    net = PecNetwork(tmp.name, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
    a, b = net.providers
    if not log_on:
        a.extra_toml = b.extra_toml = "[log]\nenabled = false\n"
    net.prepare()
    alice = a.add_mailbox("alice", "pw-alice", "--quota", str(8 << 30))
    probe = a.add_mailbox("probe", "pw-probe", "--quota", str(8 << 30))
    bob = b.add_mailbox("bob", "pw-bob", "--quota", str(8 << 30))
    net.start()
    db = os.path.join(a.data_dir, "pecd.db")
    ctx = ssl.create_default_context(cafile=net.tls_ca)
    body = ("Testo del messaggio di prova.\r\n" * 160)[:5000]  # about 5 KB
    latencies, errors = [], []
    done = threading.Event()

    def message(sender, subject):
        return ("Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                % (time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), sender, bob, subject, subject,
                   body)).encode()

    def submitter(n, count):
        try:
            with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=120) as s:
                s.starttls(context=ctx)
                s.login(alice, "pw-alice")
                for i in range(count):
                    s.sendmail(alice, [bob], message(alice, "carico-%d-%d" % (n, i)))
        except Exception as e:  # reported, never hidden
            errors.append(repr(e))

    def prober():
        with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=120) as s:
            s.starttls(context=ctx)
            s.login(probe, "pw-probe")
            i = 0
            while not done.is_set() and i < 200:
                before = len(mailbox_rows(db, probe))
                s.sendmail(probe, [bob], message(probe, "sonda-%d" % i))
                sent = time.time()
                deadline = sent + 30
                while time.time() < deadline:
                    rows = mailbox_rows(db, probe)
                    if len(rows) > before:  # rows keep whole seconds: time it here
                        latencies.append(time.time() - sent)
                        break
                    time.sleep(0.002)
                # let the pair of receipts of this probe settle before the next one
                while len(mailbox_rows(db, probe)) < before + 2 and time.time() < deadline:
                    time.sleep(0.01)
                i += 1
                time.sleep(0.05)

    per = [messages // sessions + (1 if k < messages % sessions else 0) for k in range(sessions)]
    start = time.time()
    threads = [threading.Thread(target=submitter, args=(k, per[k])) for k in range(sessions)]
    probe_thread = threading.Thread(target=prober)
    for t in threads:
        t.start()
    probe_thread.start()
    for t in threads:
        t.join()
    submitted = time.time()
    deadline = submitted + 600
    while time.time() < deadline and len(mailbox_rows(db, alice)) < 2 * messages:
        time.sleep(0.05)
    finished = time.time()
    done.set()
    probe_thread.join()
    got = len(mailbox_rows(db, alice))
    rss = 0
    for p in (a, b):
        with open("/proc/%d/status" % p.proc.pid) as f:
            rss = max(rss, int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) // 1024)
    net.stop()
    clamd.stop()
    tmp.cleanup()
    latencies.sort()

    def pct(q):
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None

    return {"legal_log": log_on, "messages": messages, "sessions": sessions, "receipts": got,
            "complete": got >= 2 * messages, "errors": errors[:3],
            "submit_s": round(submitted - start, 2), "total_s": round(finished - start, 2),
            "exchanges_per_s": round(messages / (finished - start), 1),
            "accept_p50_ms": pct(0.50), "accept_p99_ms": pct(0.99), "probes": len(latencies),
            "peak_rss_mib": rss}


def rsa_sign_rate():
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], capture_output=True, text=True,
                         timeout=120).stdout
    m = re.search(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)", out, re.M)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "../../build"))
    ap.add_argument("--messages", type=int, default=600)
    ap.add_argument("--sessions", type=int, default=8)
    args = ap.parse_args()
    os.environ["PECD_BINARY_DIR"] = os.path.abspath(args.build)  # read when pecd_harness is imported
    with_log = run_once(args.messages, args.sessions, True)
    without_log = run_once(args.messages, args.sessions, False)
    rsa = rsa_sign_rate()
    result = {"cores": os.cpu_count(), "with_log": with_log, "without_log": without_log,
              "openssl_rsa2048_sign_per_s": rsa,
              "rsa_bound_exchanges_per_s": round(rsa / 4, 1) if rsa else None,
              "log_on_over_off": round(with_log["exchanges_per_s"] / without_log["exchanges_per_s"], 3)}
    print(json.dumps(result, indent=2))
    print("pecd: %.1f complete exchanges/s with the legal log, %.1f without (ratio %.2f); acceptance receipt "
          "p50 %s ms, p99 %s ms; RSA-2048 %.0f signatures/s = %.0f exchanges/s at 4 signatures each "
          "(bars: >= 300/s, p99 < 100 ms, logging >= 0.90)"
          % (with_log["exchanges_per_s"], without_log["exchanges_per_s"], result["log_on_over_off"],
             with_log["accept_p50_ms"], with_log["accept_p99_ms"], rsa or 0, (rsa or 0) / 4))


if __name__ == "__main__":
    main()
