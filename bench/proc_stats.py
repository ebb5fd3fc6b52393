"""proc_stats - CPU time and context switches of running processes, from /proc."""
import glob
import os

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of `pid` so far (all its threads, live or ended)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_of(pids):
    """cpu_seconds() summed over `pids`; a process gone in the meantime counts nothing."""
    total = 0.0
    for p in pids:
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def context_switches(pid):
    """Voluntary and involuntary context switches of every live thread of `pid` (a thread
    that ended during the run takes its count with it; pecd's threads live as long as it)."""
    total = 0
    for status in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            with open(status) as f:
                total += sum(int(line.split()[1]) for line in f
                             if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")))
        except (OSError, ValueError):
            pass
    return total
