#!/usr/bin/env python3
"""compare_builds - two pecd builds on the PEC flow, in alternating runs of one session.

    python3 bench/cluster/compare_builds.py BUILD_A BUILD_B [--rounds 3] [--messages 4000]

Runs run_cluster_bench.py's one-SQLite-node topology (two providers, a real clamd on CPU 1,
the load generator) with BUILD_A and BUILD_B in the order A B B A A B ... (`--rounds`
pairs), and reports for each build the providers' CPU milliseconds per exchange, clamd's,
and the exchanges per second, then the ratio B / A.

Why alternating, and why clamd's figure: on a shared virtual machine the same build's CPU
per exchange drifts by 10 % and more within half an hour (clamd's, which no pecd change
touches, drifts with it), so two builds measured one after the other compare the machine
as much as the builds. In ABBA order a steady drift cancels out, and the providers' CPU
divided by clamd's (pecd per clamd) takes out what is left of the machine's speed.

The runs keep their files until the end (each a fresh directory, so no run allocates
inodes freed by the previous one: see fs_settle.py), and each starts after a `sync` and a
pause, so that the previous run's write-back does not land in it. The file system is
settled once, before the first run; everything is deleted after the last. A warm-up run
of build A comes first and is not counted: the first run of a series was up to 20 % slower
than the ones after it, whichever build it ran.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from fs_settle import clean_up, settle_file_system  # noqa: E402


def run_once(build, messages, clamd_cpus, pause_s):
    subprocess.run(["sync"], check=True)
    time.sleep(pause_s)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        p = subprocess.run([sys.executable, os.path.join(HERE, "run_cluster_bench.py"), "--build", build,
                            "--only", "sqlite-1", "--messages", str(messages), "--clamd-cpus", clamd_cpus,
                            "--no-settle", "--json-out", out.name],
                           env=dict(os.environ, PECD_BENCH_KEEP="1"), capture_output=True, text=True)
        kept = re.findall(r"^kept (\S+)$", p.stderr, re.M)
        if p.returncode != 0:
            raise RuntimeError("run with %s failed:\n%s" % (build, p.stderr[-3000:]))
        with open(out.name) as f:
            r = json.load(f)["results"][0]
    ms = r["cpu_ms_per_exchange"]
    return {"build": build, "exchanges_per_s": r["exchanges_per_s"], "complete": r["complete"],
            "providers_ms": round(sum(v for k, v in ms.items() if k != "clamd"), 2), "clamd_ms": ms["clamd"],
            "kept": kept}


def summary(runs):
    providers = statistics.mean(r["providers_ms"] for r in runs)
    clamd = statistics.mean(r["clamd_ms"] for r in runs)
    return {"runs": len(runs), "providers_ms": round(providers, 2), "clamd_ms": round(clamd, 2),
            "providers_per_clamd": round(providers / clamd, 3),
            "exchanges_per_s": round(statistics.mean(r["exchanges_per_s"] for r in runs), 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_a")
    ap.add_argument("build_b")
    ap.add_argument("--rounds", type=int, default=3, help="pairs of runs (A B, then B A, ...)")
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--clamd-cpus", default="1")
    ap.add_argument("--pause", type=float, default=20.0, help="seconds between runs, after a sync")
    ap.add_argument("--warmup", type=int, default=1,
                    help="runs of build A first, not counted (the first run after a pause is slow: caches)")
    args = ap.parse_args()
    builds = {"A": os.path.abspath(args.build_a), "B": os.path.abspath(args.build_b)}
    order = []
    for i in range(args.rounds):
        order += ["A", "B"] if i % 2 == 0 else ["B", "A"]
    probe_dir, _, _, _ = settle_file_system(tempfile.gettempdir())
    kept = [probe_dir]
    runs = {"A": [], "B": []}
    try:
        for _ in range(args.warmup):
            r = run_once(builds["A"], args.messages, args.clamd_cpus, args.pause)
            kept += r["kept"]
            print("warm-up (A) %6.1f exchanges/s  providers %.2f ms/exchange  clamd %.2f, not counted"
                  % (r["exchanges_per_s"], r["providers_ms"], r["clamd_ms"]), flush=True)
        for label in order:
            r = run_once(builds[label], args.messages, args.clamd_cpus, args.pause)
            kept += r["kept"]
            runs[label].append(r)
            print("%s %6.1f exchanges/s  providers %.2f ms/exchange  clamd %.2f  complete=%s"
                  % (label, r["exchanges_per_s"], r["providers_ms"], r["clamd_ms"], r["complete"]), flush=True)
    finally:
        clean_up(kept)
    a, b = summary(runs["A"]), summary(runs["B"])
    result = {"A": dict(a, build=builds["A"]), "B": dict(b, build=builds["B"]),
              "b_over_a": {"providers_ms": round(b["providers_ms"] / a["providers_ms"], 3),
                           "providers_per_clamd": round(b["providers_per_clamd"] / a["providers_per_clamd"], 3),
                           "exchanges_per_s": round(b["exchanges_per_s"] / a["exchanges_per_s"], 3)},
              "runs": runs}
    print(json.dumps(result, indent=2))
    print("B/A: providers' CPU per exchange x%.3f (x%.3f per clamd), exchanges/s x%.3f"
          % (result["b_over_a"]["providers_ms"], result["b_over_a"]["providers_per_clamd"],
             result["b_over_a"]["exchanges_per_s"]))


if __name__ == "__main__":
    main()
