#!/usr/bin/env python3
"""run_cluster_bench.py - the PEC flow with provider A on one SQLite node, one PostgreSQL
node, and two PostgreSQL nodes, in the same run

Provider A sends MESSAGES certified messages (SESSIONS submission sessions, STARTTLS +
AUTH, about 5 KB each) from alice@a.pec.test to bob@b.pec.test; provider B is one SQLite
node in every case (tests/e2e/pec_network.py, verified TLS between them, one real clamd).
An exchange is complete when both receipts (accettazione, avvenuta consegna) are in
alice's mailbox. Topologies of provider A:

  sqlite-1  the embedded default store, one node
  pg-1      one node on PostgreSQL (tests/e2e/pg_harness.py, fsync on: durable like SQLite)
  pg-2      two nodes on that PostgreSQL sharing spool and mailbox directories; the
            submission sessions are split over both nodes

Reported per topology: complete exchanges/s, and the CPU seconds each process used
during the run (A's nodes, B, PostgreSQL, clamd, and this script as the load generator),
which shows where the time goes, and the context switches per exchange of each process:
a count, steadier from run to run than throughput on a virtual machine, and on one a
switch costs far more than on bare metal.

For the single SQLite node the run also states the budget at a target rate (--target-rate,
default 300 exchanges/s, the PEC flow's bar): the cores that clamd's two scans per exchange
and the four RSA-2048 signatures (`openssl speed rsa2048`, same run) would need at that
rate, and the CPU per exchange left for everything else, against what the providers and
the load generator use today.

    python3 bench/cluster/run_cluster_bench.py [--build build] [--messages 300] [--sessions 8]
                                               [--target-rate 300]
"""
import argparse
import glob
import json
import os
import smtplib
import sqlite3
import ssl
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../tests/e2e"))
sys.path.insert(0, os.path.join(HERE, ".."))
from fs_settle import clean_up, settle_file_system  # noqa: E402
from rsa_speed import rsa_sign_rate  # noqa: E402
from clamd_harness import cpu_list  # noqa: E402
from proc_stats import context_switches, cpu_of  # noqa: E402


def postgres_pids():
    out = []
    for stat in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(stat) as f:
                if f.read().strip() == "postgres":
                    out.append(int(stat.split("/")[2]))
        except OSError:
            pass
    return out


def alice_receipts(kind, a1, pg, alice):
    """Messages in alice's mailbox, read straight from the store (cheap enough to poll)."""
    query = ("SELECT count(*) FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id"
             " WHERE b.address = '%s'" % alice)
    if pg:
        return int(pg.sql(query, dbname="pecd").strip() or 0)
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(a1.data_dir, "pecd.db"), uri=True, timeout=30)
    try:
        return con.execute(query).fetchone()[0]
    finally:
        con.close()


def pg_transactions(pg):
    """Transactions committed and rolled back so far in pecd's database (read-only ones included)."""
    row = pg.sql("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = 'pecd'").strip()
    commits, rollbacks = (int(x) for x in row.split("|"))
    return commits, rollbacks


def run_topology(kind, messages, sessions, clamd_tmp, keep, clamd_cpus=None):
    from clamd_harness import ClamdInstance
    from pec_network import PecNetwork, Provider
    from pg_harness import PostgresInstance

    tmp = tempfile.TemporaryDirectory(prefix="pecd-bench-cluster-")
    scratch = tempfile.TemporaryDirectory(prefix="pecd-bench-clamd-", dir=clamd_tmp) if clamd_tmp else None
    keep += [tmp, scratch]  # deleted after the last topology (a deletion slows later creates)
    pg = PostgresInstance(durable=True).start() if kind != "sqlite-1" else None
    clamd = ClamdInstance(os.path.join(tmp.name, "clamd"),
                          temporary_directory=scratch.name if scratch else None, cpus=clamd_cpus).start()
    net = PecNetwork(tmp.name, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
    a1, b = net.providers
    nodes = [a1]
    if kind == "pg-2":
        a2 = Provider(net, "a.pec.test", "Gestore A", root=os.path.join(tmp.name, "a-node2"))
        a2.signing = a1.signing
        nodes.append(a2)
    if pg:
        shared = os.path.join(tmp.name, "a-shared")
        for i, node in enumerate(nodes):
            node.store_toml = ('[store]\nbackend = "postgresql"\nconninfo = "%s"\npassword_file = "%s"\n'
                               'blob_dir = "%s/mailboxes"\nspool_dir = "%s/spool"\nnode = "a%d"\n'
                               % (pg.conninfo(), pg.password_file, shared, shared, i + 1))
    net.prepare()
    for n in nodes[1:]:
        n.write_config()
    alice = a1.add_mailbox("alice", "pw-alice", "--quota", str(8 << 30))
    b.add_mailbox("bob", "pw-bob", "--quota", str(8 << 30))
    bob = "bob@b.pec.test"
    net.start()
    for n in nodes[1:]:
        n.start()
    ctx = ssl.create_default_context(cafile=net.tls_ca)
    body = ("Testo del messaggio di prova.\r\n" * 160)[:5000]
    errors = []

    def submitter(node, k, count):
        try:
            with smtplib.SMTP("127.0.0.1", node.submission_port, timeout=120) as s:
                s.starttls(context=ctx)
                s.login(alice, "pw-alice")
                for i in range(count):
                    subject = "carico-%d-%d" % (k, i)
                    s.sendmail(alice, [bob], ("Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: "
                                              "<%s@client.test>\r\n\r\n%s" % (
                                                  time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                                                  alice, bob, subject, subject, body)).encode())
        except Exception as e:  # reported, never hidden
            errors.append(repr(e))

    procs = {"a-node%d" % (i + 1): n.proc.pid for i, n in enumerate(nodes)}
    procs["b"] = b.proc.pid
    procs["clamd"] = clamd.proc.pid
    before = {k: cpu_of([p]) for k, p in procs.items()}
    switches_before = {k: context_switches(p) for k, p in procs.items()}
    pg_before = cpu_of(postgres_pids()) if pg else 0.0
    tx_before = pg_transactions(pg) if pg else None
    per = [messages // sessions + (1 if k < messages % sessions else 0) for k in range(sessions)]
    generator_before = time.process_time()  # this process, all its threads: the load generator
    start = time.time()
    threads = [threading.Thread(target=submitter, args=(nodes[k % len(nodes)], k, per[k])) for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.time() + 900
    got = polls = 0
    while time.time() < deadline:
        got = alice_receipts(kind, a1, pg, alice)
        polls += 1
        if got >= 2 * messages:
            break
        time.sleep(0.05)
    finished = time.time()
    generator_cpu = time.process_time() - generator_before
    cpu = {k: round(cpu_of([p]) - before[k], 1) for k, p in procs.items()}
    switches = {k: context_switches(p) - switches_before[k] for k, p in procs.items()}
    if pg:
        cpu["postgresql"] = round(cpu_of(postgres_pids()) - pg_before, 1)
        time.sleep(1)  # the statistics collector reports with a short delay
        tx_after = pg_transactions(pg)
    for n in nodes[1:]:
        n.stop()
    net.stop()
    clamd.stop()
    if pg:
        pg.stop()
    if os.environ.get("PECD_BENCH_KEEP"):
        print("kept", tmp.name, file=sys.stderr)
        tmp._finalizer.detach()
        keep.remove(tmp)
    elapsed = finished - start
    busy = sum(cpu.values())
    return {"topology": kind, "messages": messages, "receipts": got, "complete": got >= 2 * messages,
            "errors": errors[:3], "seconds": round(elapsed, 2), "exchanges_per_s": round(messages / elapsed, 1),
            "cpu_seconds": cpu, "wall_seconds": round(elapsed, 1),
            # Where the time goes: CPU per exchange by process, and how much of the machine
            # the measured processes kept busy (the load generator and the kernel's own
            # threads are the rest).
            "cpu_ms_per_exchange": {k: round(1000 * v / messages, 2) for k, v in cpu.items()},
            "cores_busy": round(busy / elapsed, 2), "of_cores": os.cpu_count(),
            "load_generator_cpu_ms_per_exchange": round(1000 * generator_cpu / messages, 2),
            "context_switches_per_exchange": {k: round(v / messages, 1) for k, v in switches.items()},
            # Each is a round trip or more per statement: the PostgreSQL-side cost.
            "pg_transactions_per_exchange": (round((tx_after[0] - tx_before[0] - polls) / messages, 1) if pg
                                             else None),
            "pg_rollbacks_per_exchange": (round((tx_after[1] - tx_before[1]) / messages, 2) if pg else None)}


def cpu_budget(r, target, rsa):
    """What is left per exchange at `target` exchanges/s once clamd and the signatures are paid."""
    if not rsa:
        return None
    ms = r["cpu_ms_per_exchange"]
    providers = sum(v for k, v in ms.items() if k != "clamd")
    signatures_ms = 4 * 1000 / rsa  # part of the providers' CPU
    clamd_cores = target * ms["clamd"] / 1000
    signature_cores = target * signatures_ms / 1000
    left = (r["of_cores"] - clamd_cores - signature_cores) / target * 1000
    return {"target_per_s": target, "rsa_sign_per_s": rsa, "clamd_cores": round(clamd_cores, 2),
            "signature_cores": round(signature_cores, 2), "left_ms_per_exchange": round(left, 2),
            "today_ms_per_exchange": round(providers + r["load_generator_cpu_ms_per_exchange"] - signatures_ms, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "../../build"))
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--only", choices=("sqlite-1", "pg-1", "pg-2"), help="run one topology")
    ap.add_argument("--target-rate", type=float, default=300.0,
                    help="exchanges/s at which to state the CPU budget (sqlite-1 only)")
    ap.add_argument("--clamd-tmp", default="/dev/shm" if os.path.isdir("/dev/shm") else "",
                    help="clamd's TemporaryDirectory ('' for clamd's default), as in the PEC flow benchmark")
    ap.add_argument("--clamd-cpus", type=cpu_list, help="CPUs clamd runs on, e.g. 1 (default: all)")
    ap.add_argument("--no-settle", action="store_true",
                    help="start at once, without waiting for the file system (compare_builds.py settles once "
                         "for all its runs)")
    ap.add_argument("--json-out", help="also write the results to this file")
    args = ap.parse_args()
    os.environ["PECD_BINARY_DIR"] = os.path.abspath(args.build)
    keep = []
    if args.no_settle:
        probe_dir, create_before, create_after, waited = None, None, None, 0
    else:
        probe_dir, create_before, create_after, waited = settle_file_system(tempfile.gettempdir())
    results = [run_topology(k, args.messages, args.sessions, args.clamd_tmp, keep, args.clamd_cpus)
               for k in ([args.only] if args.only else ("sqlite-1", "pg-1", "pg-2"))]
    if keep or probe_dir:
        clean_up(keep + [probe_dir])
    single = next((r for r in results if r["topology"] == "sqlite-1"), None)
    budget = cpu_budget(single, args.target_rate, rsa_sign_rate()) if single else None
    doc = {"cores": os.cpu_count(), "clamd_cpus": sorted(args.clamd_cpus) if args.clamd_cpus else "all",
           "file_create_us": {"at_start": create_before, "after_wait": create_after, "waited_s": waited},
           "results": results, "budget": budget}
    print(json.dumps(doc, indent=2))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(doc, f, indent=2)
    base = results[0]["exchanges_per_s"]
    for r in results:
        print("%-9s %6.1f exchanges/s (x%.2f of sqlite-1)  complete=%s  %.2f of %d cores busy  cpu ms/exchange: %s"
              % (r["topology"], r["exchanges_per_s"], r["exchanges_per_s"] / base, r["complete"], r["cores_busy"],
                 r["of_cores"], ", ".join("%s %.2f" % kv for kv in sorted(r["cpu_ms_per_exchange"].items())))
              + ("  PostgreSQL transactions/exchange %.1f (rolled back %.2f)"
                 % (r["pg_transactions_per_exchange"], r["pg_rollbacks_per_exchange"])
                 if r["pg_transactions_per_exchange"] is not None else "")
              + "  load generator %.2f" % r["load_generator_cpu_ms_per_exchange"]
              + "  context switches/exchange: "
              + ", ".join("%s %.0f" % kv for kv in sorted(r["context_switches_per_exchange"].items())))
    if budget:
        print("at %.0f exchanges/s: clamd needs %.2f cores and 4 RSA-2048 signatures %.2f (openssl: %.0f/s), "
              "leaving %.2f ms of CPU per exchange for everything else; today the providers and the load "
              "generator use %.2f ms besides the signatures"
              % (budget["target_per_s"], budget["clamd_cores"], budget["signature_cores"], budget["rsa_sign_per_s"],
                 budget["left_ms_per_exchange"], budget["today_ms_per_exchange"]))


if __name__ == "__main__":
    main()
