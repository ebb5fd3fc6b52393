"""fs_settle - benchmarks start only once creating a file is cheap again."""
import os
import tempfile
import time


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
    """
    probe_dir = tempfile.mkdtemp(prefix="pecd-bench-fsprobe-", dir=parent)
    first = cost = create_cost_us(probe_dir)
    start = time.time()
    while cost > limit_us and time.time() - start < wait_s:
        time.sleep(5)
        cost = create_cost_us(probe_dir, 100)
    return probe_dir, round(first, 1), round(cost, 1), round(time.time() - start)
