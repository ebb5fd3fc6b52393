"""fs_settle - benchmarks start only once creating a file is cheap again."""
import os
import shutil
import tempfile
import time

# How long ext4 without a journal avoids an inode after freeing it: 60 s, plus 300 s while
# the inode table block is dirty, as it is during any run (fs/ext4/ialloc.c,
# RECENTCY_MIN + RECENTCY_DIRTY), plus a margin.
RECENT_S = 370
DELETED_AT = os.path.join(tempfile.gettempdir(), "pecd-bench-deleted-at")


def clean_up(paths):
    """Deletes a benchmark's directories (TemporaryDirectory objects or paths) and notes
    when, so that the next benchmark waits until the inodes freed are usable again."""
    for p in paths:
        if p is None:
            continue
        if hasattr(p, "cleanup"):
            p.cleanup()
        else:
            shutil.rmtree(p, ignore_errors=True)
    with open(DELETED_AT, "w") as f:
        f.write("%.0f\n" % time.time())


def seconds_since_cleanup():
    try:
        with open(DELETED_AT) as f:
            return time.time() - float(f.read().strip() or 0)
    except (OSError, ValueError):
        return float("inf")


def create_cost_us(directory, count=300):
    """Microseconds per file creation in `directory` (the files are left for the caller)."""
    t = time.perf_counter()
    for i in range(count):
        os.close(os.open(os.path.join(directory, "probe-%d-%d" % (time.time_ns(), i)),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return 1e6 * (time.perf_counter() - t) / count


def settle_file_system(parent, limit_us=30.0, wait_s=300):
    """Waits until creating a file is cheap again; returns (probe directory, microseconds
    per create before, after, seconds waited); the caller deletes the probe directory last.

    ext4 without a journal skips every inode freed in the last minutes when it allocates
    one (fs/ext4/ialloc.c, recently_deleted()), so right after a large deletion (the
    previous run's clean-up) each create costs up to ~1 ms of CPU for a couple of minutes.
    A run started then measures that deletion, not pecd. The probe files are never
    deleted during the wait, so the probe does not prolong what it waits out.

    A probe directory's creates can be cheap again while pecd's directories, in other
    block groups, still skip freed inodes (4 % of pecd's CPU in ialloc's recently_deleted
    after a probe of 26 us), so a deletion noted by clean_up() is first waited out in
    full (RECENT_S).
    """
    start = time.time()
    since = seconds_since_cleanup()
    if since < RECENT_S:
        time.sleep(RECENT_S - since)
    probe_dir = tempfile.mkdtemp(prefix="pecd-bench-fsprobe-", dir=parent)
    first = cost = create_cost_us(probe_dir)
    probe_start = time.time()
    while cost > limit_us and time.time() - probe_start < wait_s:
        time.sleep(5)
        cost = create_cost_us(probe_dir, 100)
    return probe_dir, round(first, 1), round(cost, 1), round(time.time() - start)
