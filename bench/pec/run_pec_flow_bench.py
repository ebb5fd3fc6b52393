#!/usr/bin/env python3
"""run_pec_flow_bench - end-to-end PEC exchanges per second between two real providers.

Two pecd providers on loopback (tests/e2e/pec_network.py: shared demo CA and index,
verified STARTTLS between them, a real clamd scanning every message). SESSIONS
submitters (one STARTTLS + AUTH connection each) send MESSAGES certified messages from
alice@a.pec.test to bob@b.pec.test. An exchange is complete when both receipts
(accettazione and avvenuta consegna) are in alice's mailbox; the figure is completed
exchanges per second from the first submission to the last receipt.

The bulk submitters are a C++ program of the build, bench/pec/pecd_bench_submit
(bench/pec/submit_load.cpp): the load generator shares the two cores with the servers it
measures, and Python threads with smtplib cost 0.4-0.5 ms of CPU per message, taken from
the providers and clamd. It sends the same messages in the same SMTP conversation (no
pipelining); the probe and the receipt watcher below stay in Python. The load generator's
CPU is reported in all and split into the submitters and this Python process.

While the load runs, a probe account submits a message every PROBE_INTERVAL seconds (open
loop: it never waits for receipts) and a watcher measures, per probe, the time from its 250
reply to its accettazione in the probe's mailbox (matched by X-Riferimento-Message-ID;
the delivery receipt needs three more hops and is not waited for), giving p50/p99 of the
acceptance receipt and the number of samples. The same receipts are also timed from the
probe's MAIL FROM, with the probe's wait for its 250 on its own: in-flow control
([limits] in_flow_backlog) makes a submission wait before its 250 when the queue falls
behind, and that wait is reported, not hidden.

The same run measures `openssl speed rsa2048` (each exchange costs four RSA signatures:
envelope, accettazione, presa in carico, consegna) and repeats the load with the legal
log off ([log] enabled = false), so the cost of logging is a ratio from one run.

With --rate R (repeatable) the load is also run paced at R submissions/s (the open loop
of a real submission population), which gives the acceptance latency at that rate rather
than at saturation. With --crl-entries N both providers check every signer's chain against a
CRL of N entries, as a provider does with its CAs' CRLs configured. Every run starts once
creating a file is cheap again (bench/fs_settle.py).

With --compare-build OTHER_BUILD ROUNDS, ROUNDS pairs of log-on runs alternate (ABBA...)
between OTHER_BUILD's pecd and this build's, in the same invocation, and the means and
ratios are printed: a change measured against the code before it on the same machine in
the same hour.

    ninja -C build pecd_bench_submit
    python3 bench/pec/run_pec_flow_bench.py [--build build] [--messages 600] [--sessions 16]
                                            [--probe-interval 0.05] [--rate R ...] [--log-on-only]
                                            [--in-flow-backlog N] [--crl-entries N]
                                            [--file-sync MODE] [--queue-workers N] [--io-threads N]
                                            [--compare-build OTHER_BUILD ROUNDS]
                                            [--compare-file-sync ROUNDS] [--compare-queue-workers N ROUNDS]
                                            [--compare-io-threads N ROUNDS]
"""
import argparse
import json
import os
import re
import smtplib
import sqlite3
import ssl
import statistics
import subprocess
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
from proc_stats import cpu_of  # noqa: E402


def mailbox_count(db, address):
    """Messages in a mailbox, counted by the database: polled while the providers work,
    so the load generator must not fetch thousands of rows each time."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                           " WHERE b.address = ?", (address,)).fetchone()[0]
    finally:
        con.close()


def blob_path(data_dir, key):
    """Where the mailbox store keeps a blob (store/blob_store.cpp: FNV-1a fan-out)."""
    h = 2166136261
    for c in key.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    digits = "0123456789abcdef"
    return os.path.join(data_dir, "mailboxes", digits[(h >> 4) & 15] + digits[h & 15], key)


def submitter_binary(build):
    """The bulk submitters' program in the build directory; exits clearly when it is not built."""
    path = os.path.join(os.path.abspath(build), "bench", "pec", "pecd_bench_submit")
    if not os.access(path, os.X_OK):
        sys.exit("run_pec_flow_bench: %s is missing; build it first: ninja -C %s pecd_bench_submit"
                 % (path, build))
    return path


def start_submitters(binary, port, ca, user, password, rcpt, sessions, messages, rate):
    """pecd_bench_submit with every session open and authenticated (its "ready" line): it
    sends nothing until go_submitters()."""
    cmd = [binary, "--port", str(port), "--ca", ca, "--user", user, "--password", password,
           "--from", user, "--to", rcpt, "--sessions", str(sessions), "--messages", str(messages)]
    if rate:
        cmd += ["--rate", repr(float(rate))]
    load = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    line = load.stdout.readline()
    if line.strip() != "ready":
        load.kill()
        raise RuntimeError("pecd_bench_submit did not get ready (%r, exit status %s)" % (line, load.wait()))
    return load


def go_submitters(load):
    load.stdin.write("go\n")
    load.stdin.flush()


def submitters_report(load):
    """Its JSON line, printed when every session is done; the process then waits for
    end_submitters(), so that its CPU time can still be read."""
    line = load.stdout.readline()
    try:
        return json.loads(line)
    except ValueError:
        return {"sent": 0, "errors": ["pecd_bench_submit: no report (%r)" % line], "seconds": None}


def end_submitters(load, report):
    """Lets it exit; an exit status its report does not explain is an error of its own."""
    try:
        load.stdin.write("exit\n")
        load.stdin.close()
    except OSError:
        pass
    status = load.wait(timeout=60)
    if status != (1 if report["errors"] else 0):
        return ["pecd_bench_submit: exit status %d" % status]
    return []


def run_once(submitter, messages, sessions, log_on, probe_interval, clamd_tmp, keep, rate=None,
             in_flow_backlog=None, clamd_cpus=None, crl_entries=None, file_sync=None, queue_workers=None,
             io_threads=None):
    from clamd_harness import ClamdInstance
    from pec_network import PecNetwork
    from provider_ca import ProviderCa
    tmp = tempfile.TemporaryDirectory(prefix="pecd-bench-pec-")
    scratch = tempfile.TemporaryDirectory(prefix="pecd-bench-clamd-", dir=clamd_tmp) if clamd_tmp else None
    keep += [tmp, scratch]  # deleted after the last run (a deletion slows the next run's creates)
    clamd = ClamdInstance(os.path.join(tmp.name, "clamd"),
                          temporary_directory=scratch.name if scratch else None, cpus=clamd_cpus).start()
    net = PecNetwork(tmp.name, [("a.pec.test", "Gestore A"), ("b.pec.test", "Gestore B")], clamd)
    a, b = net.providers
    if not log_on:
        a.extra_toml = b.extra_toml = "[log]\nenabled = false\n"
    if file_sync:  # both providers
        a.store_toml = b.store_toml = '[store]\nfile_sync = "%s"\n' % file_sync
    if queue_workers is not None:  # both providers
        a.outbound_toml = b.outbound_toml = "queue_workers = %d\n" % queue_workers
    if io_threads is not None:  # both providers
        a.top_toml = b.top_toml = "threads = %d\n" % io_threads
    if in_flow_backlog is not None:  # A's submission listener (B has none in this flow)
        a.extra_toml += "[limits]\nin_flow_backlog = %d\n" % in_flow_backlog
    crl_bytes = None
    if crl_entries is not None:  # both providers check every chain against it
        crl = os.path.join(tmp.name, "provider-ca.crl")
        ca = ProviderCa(net.pec_ca_dir, os.path.join(tmp.name, "ca-db"))
        ca.revoke_others(crl_entries)  # certificates other than the providers' (a real CA's CRL)
        ca.write_crl(crl)
        crl_bytes = os.path.getsize(crl)
        a.pec_toml = b.pec_toml = 'crl_file = "%s"\n' % crl
    net.prepare()
    alice = a.add_mailbox("alice", "pw-alice", "--quota", str(8 << 30))
    probe = a.add_mailbox("probe", "pw-probe", "--quota", str(8 << 30))
    bob = b.add_mailbox("bob", "pw-bob", "--quota", str(8 << 30))
    net.start()
    db = os.path.join(a.data_dir, "pecd.db")
    ctx = ssl.create_default_context(cafile=net.tls_ca)
    body = ("Testo del messaggio di prova.\r\n" * 160)[:5000]  # about 5 KB
    latencies, errors, probes_sent, missing = [], [], [], []
    from_start, replies = [], []  # per probe: MAIL FROM to accettazione, MAIL FROM to 250
    probe_lock = threading.Lock()
    sent = {}  # probe Message-ID -> (time of MAIL FROM, time of its 250), until its accettazione is seen
    done, watch_done = threading.Event(), threading.Event()

    def message(sender, subject):
        return ("Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                % (time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), sender, bob, subject, subject,
                   body)).encode()

    def prober():
        # Open loop: a probe goes out every `probe_interval` whatever the receipts do, so a
        # slow receipt cannot hide the ones behind it. Each accettazione names its probe
        # in X-Riferimento-Message-ID; the time is taken when its mailbox row is seen.
        try:
            with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=120) as s:
                s.starttls(context=ctx)
                s.login(probe, "pw-probe")
                i = 0
                while not done.is_set():
                    began = time.time()
                    s.sendmail(probe, [bob], message(probe, "sonda-%d" % i))
                    replied = time.time()
                    replies.append(replied - began)
                    with probe_lock:
                        sent["<sonda-%d@client.test>" % i] = (began, replied)
                    i += 1
                    time.sleep(probe_interval)
        except Exception as e:
            errors.append("probe: " + repr(e))
        probes_sent.append(i)
        watch_done.wait()

    def watcher():
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        last = 0
        grace = None
        try:
            while True:
                rows = con.execute(
                    "SELECT m.id, m.blob_key FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                    " WHERE b.address = ? AND m.mail_from = ? AND m.id > ? ORDER BY m.id",
                    (probe, a.service_mailbox, last)).fetchall()
                seen = time.time()
                for row_id, key in rows:
                    last = row_id
                    with open(blob_path(a.data_dir, key), "rb") as f:
                        head = f.read(16384)
                    ref = re.search(rb"^X-Riferimento-Message-ID:\s*(<[^>\r\n]*>)", head, re.M | re.I)
                    with probe_lock:
                        t = sent.pop(ref.group(1).decode(), None) if ref else None
                    if t is not None:
                        latencies.append(seen - t[1])
                        from_start.append(seen - t[0])
                if probes_sent:  # the prober stopped: wait a little for its last receipts
                    grace = grace or time.time() + 30
                    with probe_lock:
                        if not sent or time.time() > grace:
                            missing.append(len(sent))
                            return
                time.sleep(0.005)
        except Exception as e:  # reported, never hidden
            errors.append("watcher: " + repr(e))
        finally:
            con.close()
            watch_done.set()

    # The bulk submitters: `sessions` sessions sharing `messages` (paced from their go when
    # `rate` is given: message i of session n is due at (i * sessions + n) / rate), all open
    # and authenticated before the clock starts.
    load = start_submitters(submitter, a.submission_port, net.tls_ca, alice, "pw-alice", bob, sessions, messages,
                            rate)
    # CPU per exchange by process: steadier from run to run than the rate, and it shows
    # where the machine's two cores go (the load generator is the submitters' process and
    # this Python process, which runs the probe and the watcher).
    procs = {"a": a.proc.pid, "b": b.proc.pid, "clamd": clamd.proc.pid}
    cpu_before = {k: cpu_of([p]) for k, p in procs.items()}
    generator_before = time.process_time()
    submitters_before = cpu_of([load.pid])
    start = time.time()
    go_submitters(load)
    probe_thread = threading.Thread(target=prober)
    watch_thread = threading.Thread(target=watcher)
    probe_thread.start()
    watch_thread.start()
    report = submitters_report(load)
    submitted = time.time()
    errors.extend(report["errors"])
    deadline = submitted + 600
    while time.time() < deadline and mailbox_count(db, alice) < 2 * messages:
        time.sleep(0.05)
    finished = time.time()
    cpu = {k: cpu_of([p]) - cpu_before[k] for k, p in procs.items()}
    python_cpu = time.process_time() - generator_before
    submitters_cpu = cpu_of([load.pid]) - submitters_before
    errors.extend(end_submitters(load, report))
    cpu["load generator"] = submitters_cpu + python_cpu
    cpu["load generator (submitters)"] = submitters_cpu
    cpu["load generator (python)"] = python_cpu
    done.set()
    probe_thread.join()
    watch_thread.join()
    got = mailbox_count(db, alice)
    rss = 0
    for p in (a, b):
        with open("/proc/%d/status" % p.proc.pid) as f:
            rss = max(rss, int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) // 1024)
    net.stop()
    clamd.stop()
    for series in (latencies, from_start, replies):
        series.sort()

    def pct(q, series=latencies):
        return round(1000 * series[min(len(series) - 1, int(q * len(series)))], 1) if series else None

    return {"legal_log": log_on, "messages": messages, "sessions": sessions, "offered_per_s": rate,
            "crl_entries": crl_entries, "crl_bytes": crl_bytes,
            "receipts": got,
            "complete": got >= 2 * messages, "errors": errors[:3],
            "submit_s": round(submitted - start, 2), "total_s": round(finished - start, 2),
            "exchanges_per_s": round(messages / (finished - start), 1),
            "cpu_ms_per_exchange": {k: round(1000 * v / messages, 2) for k, v in cpu.items()},
            "accept_p50_ms": pct(0.50), "accept_p99_ms": pct(0.99), "probes": len(latencies),
            # The same receipts timed from the probe's MAIL FROM, and the probe's wait for its
            # 250 (which in-flow control lengthens when the queue falls behind).
            "mail_to_accept_p50_ms": pct(0.50, from_start), "mail_to_accept_p99_ms": pct(0.99, from_start),
            "reply_p50_ms": pct(0.50, replies), "reply_p99_ms": pct(0.99, replies),
            "probes_sent": probes_sent[0] if probes_sent else 0, "probes_unanswered": missing[0] if missing else None,
            "peak_rss_mib": rss}


FILE_SYNC_MODES = ("file", "file_system")


def provider_settings(args):
    """run_once's keyword arguments that the command line sets for every run."""
    return {"in_flow_backlog": args.in_flow_backlog, "clamd_cpus": args.clamd_cpus,
            "crl_entries": args.crl_entries, "file_sync": args.file_sync, "queue_workers": args.queue_workers,
            "io_threads": args.io_threads}


def alternate(args, submitter, keep, variants, rounds):
    """Runs `rounds` pairs of log-on runs of the two variants (label, setup) in ABBA order,
    setup() being called before each of its runs and returning the run's settings (its
    file_sync and queue_workers), saturated or, with --rate, paced at the first rate given;
    returns {label: [run results]}. Alternating keeps a drift of the machine (other tenants,
    the file system's state) out of the ratio."""
    rate = args.rate[0] if args.rate else None
    runs = {label: [] for label, _ in variants}
    for i in range(rounds):
        for label, setup in (variants if i % 2 == 0 else list(reversed(variants))):
            settings = dict(provider_settings(args), **setup())
            runs[label].append(run_once(submitter, args.messages, args.sessions, True, args.probe_interval,
                                        args.clamd_tmp, keep, rate, **settings))
    return runs


def compare_file_sync(args, submitter, keep):
    """--compare-file-sync: file_sync = "file" against "file_system"."""
    variants = [(mode, lambda mode=mode: {"file_sync": mode}) for mode in FILE_SYNC_MODES]
    return alternate(args, submitter, keep, variants, args.compare_file_sync)


# The counts --compare-queue-workers and --compare-io-threads set: run_once's keyword, the
# label of the compared number, pecd's name for the setting.
COMPARED_COUNTS = (("queue_workers", "workers", "queue_workers"), ("io_threads", "io threads", "threads"))


def compare_count(args, submitter, keep, key, noun):
    """--compare-KEY N ROUNDS: pecd's default for run_once's `key` against N; returns the
    runs and N's label."""
    n, rounds = getattr(args, "compare_" + key)
    label = "%d %s" % (n, noun)
    variants = [("default", lambda: {key: None}), (label, lambda: {key: n})]
    return alternate(args, submitter, keep, variants, rounds), label


def compare_builds(args, submitter, keep):
    """--compare-build: OTHER_BUILD's pecd against this build's, both with --file-sync."""
    import pecd_harness
    other, rounds = args.compare_build[0], int(args.compare_build[1])
    binaries = {"other build": os.path.join(os.path.abspath(other), "app/pecd/pecd"), "this build": pecd_harness.PECD}
    if not os.access(binaries["other build"], os.X_OK):
        sys.exit("run_pec_flow_bench: %s is missing" % binaries["other build"])

    def use(label):
        pecd_harness.PECD = binaries[label]  # read when each provider starts
        return {}

    variants = [(label, lambda label=label: use(label)) for label in binaries]
    runs = alternate(args, submitter, keep, variants, rounds)
    pecd_harness.PECD = binaries["this build"]
    return runs


def print_comparison(runs, baseline, candidate, what):
    means = {}
    for label, results in runs.items():
        rate = statistics.mean(r["exchanges_per_s"] for r in results)
        cpu = {k: statistics.mean(r["cpu_ms_per_exchange"][k] for r in results) for k in ("a", "b", "clamd")}
        p99 = statistics.mean(r["accept_p99_ms"] for r in results)
        offered = results[0].get("offered_per_s")
        means[label] = (rate, cpu["a"] + cpu["b"], cpu["clamd"])
        print("%s %-11s%s runs %s exchanges/s; mean %.1f/s, CPU ms per exchange: providers %.2f, clamd %.2f; "
              "acceptance p99 %s ms (mean %.1f)"
              % (what, label, " offered %.0f/s:" % offered if offered else "",
                 ", ".join("%.1f" % r["exchanges_per_s"] for r in results), rate, cpu["a"] + cpu["b"],
                 cpu["clamd"], ", ".join("%.1f" % r["accept_p99_ms"] for r in results), p99))
    a, b = means[baseline], means[candidate]
    print("%s / %s: exchanges/s x%.3f, providers' CPU per exchange x%.3f, clamd's x%.3f"
          % (candidate, baseline, b[0] / a[0], b[1] / a[1], b[2] / a[2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "../../build"))
    ap.add_argument("--messages", type=int, default=600)
    ap.add_argument("--sessions", type=int, default=16,
                    help="bulk submission sessions; each waits for its 250 before its next message, so too few "
                         "leave the machine idle: with 8, the providers, clamd and the load generator used about "
                         "1.76 of the two cores at saturation")
    ap.add_argument("--probe-interval", type=float, default=0.05, help="seconds between probe submissions")
    ap.add_argument("--clamd-tmp", default="/dev/shm" if os.path.isdir("/dev/shm") else "",
                    help="clamd's TemporaryDirectory (where it writes each scanned stream; '' for clamd's "
                         "default): a tmpfs, as the operator's guide recommends")
    ap.add_argument("--log-on-only", action="store_true", help="skip the run without the legal log")
    ap.add_argument("--in-flow-backlog", type=int, help="provider A's [limits] in_flow_backlog (0 = in-flow "
                    "control off; default: pecd's default)")
    ap.add_argument("--rate", type=float, action="append", default=[],
                    help="also run at this offered rate (submissions/s, paced over the sessions) and report "
                         "the acceptance latency there; may be given more than once")
    ap.add_argument("--clamd-cpus", type=cpu_list, help="CPUs clamd runs on, e.g. 1 (default: all)")
    ap.add_argument("--file-sync", choices=["file", "file_system"],
                    help="both providers' [store] file_sync (default: pecd's default, file)")
    ap.add_argument("--compare-file-sync", type=int, metavar="ROUNDS",
                    help="also run ROUNDS pairs of log-on runs, file_sync \"file\" and \"file_system\" in "
                         "alternating order (ABBA...), paced at the first --rate if given, and report both "
                         "modes' means and their ratio")
    ap.add_argument("--queue-workers", type=int, help="both providers' [outbound] queue_workers "
                    "(default: pecd's default)")
    ap.add_argument("--compare-queue-workers", nargs=2, type=int, metavar=("N", "ROUNDS"),
                    help="also run ROUNDS pairs of log-on runs, pecd's default queue_workers and N, in "
                         "alternating order")
    ap.add_argument("--io-threads", type=int, help="both providers' top-level threads, the event loop's "
                    "(default: pecd's default)")
    ap.add_argument("--compare-io-threads", nargs=2, type=int, metavar=("N", "ROUNDS"),
                    help="also run ROUNDS pairs of log-on runs, pecd's default threads and N, in "
                         "alternating order")
    ap.add_argument("--compare-build", nargs=2, metavar=("OTHER_BUILD", "ROUNDS"),
                    help="also run ROUNDS pairs of log-on runs alternating (ABBA...) OTHER_BUILD's pecd and "
                         "this build's, with --file-sync, paced at the first --rate if given, and report both "
                         "builds' means and their ratio")
    ap.add_argument("--crl-entries", type=int, help="both providers check chains against a CRL of the "
                    "providers' CA listing this many revoked certificates (not theirs)")
    args = ap.parse_args()
    os.environ["PECD_BINARY_DIR"] = os.path.abspath(args.build)  # read when pecd_harness is imported
    submitter = submitter_binary(args.build)  # before the file system wait: a missing build fails at once
    keep = []
    probe_dir, create_before, create_after, waited = settle_file_system(tempfile.gettempdir())
    print("file creation: %.1f us, %.1f us after waiting %d s" % (create_before, create_after, waited),
          file=sys.stderr)
    settings = provider_settings(args)
    with_log = run_once(submitter, args.messages, args.sessions, True, args.probe_interval, args.clamd_tmp, keep,
                        **settings)
    without_log = with_log if args.log_on_only else run_once(submitter, args.messages, args.sessions, False,
                                                              args.probe_interval, args.clamd_tmp, keep, **settings)
    rsa = rsa_sign_rate()
    paced = [run_once(submitter, args.messages, args.sessions, True, args.probe_interval, args.clamd_tmp, keep, r,
                      **settings) for r in args.rate]
    modes = compare_file_sync(args, submitter, keep) if args.compare_file_sync else None
    builds = compare_builds(args, submitter, keep) if args.compare_build else None
    counts = {key: compare_count(args, submitter, keep, key, noun)
              for key, noun, _ in COMPARED_COUNTS if getattr(args, "compare_" + key)}
    clean_up(keep + [probe_dir])
    result = {"cores": os.cpu_count(), "file_sync": args.file_sync or "file", "clamd_tmp": args.clamd_tmp or "clamd default",
              "clamd_cpus": sorted(args.clamd_cpus) if args.clamd_cpus else "all",
              "file_create_us": {"at_start": create_before, "after_wait": create_after, "waited_s": waited},
              "with_log": with_log, "without_log": without_log, "paced": paced, "file_sync_modes": modes,
              "builds": builds, "queue_workers": args.queue_workers, "queue_workers_compared": counts.get("queue_workers", (None,))[0],
              "io_threads": args.io_threads, "io_threads_compared": counts.get("io_threads", (None,))[0],
              "openssl_rsa2048_sign_per_s": rsa,
              "rsa_bound_exchanges_per_s": round(rsa / 4, 1) if rsa else None,
              "log_on_over_off": round(with_log["exchanges_per_s"] / without_log["exchanges_per_s"], 3)}
    print(json.dumps(result, indent=2))
    print("pecd: %.1f complete exchanges/s with the legal log, %.1f without (ratio %.2f); acceptance receipt "
          "p50 %s ms, p99 %s ms (%d samples), from MAIL FROM p50 %s ms, p99 %s ms; RSA-2048 %.0f signatures/s = "
          "%.0f exchanges/s at 4 signatures each (bars: >= 300/s, p99 < 100 ms, logging >= 0.90)"
          % (with_log["exchanges_per_s"], without_log["exchanges_per_s"], result["log_on_over_off"],
             with_log["accept_p50_ms"], with_log["accept_p99_ms"], with_log["probes"],
             with_log["mail_to_accept_p50_ms"], with_log["mail_to_accept_p99_ms"], rsa or 0, (rsa or 0) / 4))
    print("CPU ms per exchange (with the log): " +
          ", ".join("%s %.2f" % kv for kv in with_log["cpu_ms_per_exchange"].items()) +
          "; at 300/s the two cores give 6.67 ms in all")
    if modes:
        print_comparison(modes, "file", "file_system", "file_sync")
    if builds:
        print_comparison(builds, "other build", "this build", "pecd")
    for key, _, setting in COMPARED_COUNTS:
        if key in counts:
            runs, label = counts[key]
            print_comparison(runs, "default", label, setting)
    for r in paced:
        print("offered %.0f/s: %.1f complete exchanges/s; acceptance receipt p50 %s ms, p99 %s ms (%d samples); "
              "from MAIL FROM p50 %s ms, p99 %s ms; 250 reply p50 %s ms, p99 %s ms"
              % (r["offered_per_s"], r["exchanges_per_s"], r["accept_p50_ms"], r["accept_p99_ms"], r["probes"],
                 r["mail_to_accept_p50_ms"], r["mail_to_accept_p99_ms"], r["reply_p50_ms"], r["reply_p99_ms"]))


if __name__ == "__main__":
    main()
