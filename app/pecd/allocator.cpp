// allocator.cpp - which allocator serves malloc in pecd, and glibc's tuning when it does
//
// pecd is linked with mimalloc (PECD_MIMALLOC, the default outside sanitizer builds): as
// a library the executable depends on before libc, its malloc/free take the place of
// glibc's for the whole process, OpenSSL, GMime, GLib and SQLite included. Every message
// goes through many short-lived allocations made on one worker thread and freed on
// another (SMTP session, spool, queue runner, group committer); mimalloc's per-thread
// pages with delayed cross-thread frees cost less there than glibc's arenas, whose
// consolidation and chunk unlinking took about a tenth of the daemon's CPU in a profile
// of the PEC flow benchmark (bench/pec, docs/development.md).
#include "allocator.hpp"

#include <malloc.h>

#include <cstdlib>

#ifdef PECD_WITH_MIMALLOC
#include <mimalloc.h>
#endif

namespace pecd::app {
namespace {

bool mimalloc_serves_malloc() {
#ifdef PECD_WITH_MIMALLOC
    // A block from calloc() (malloc's family) lies in mimalloc's heap only if its malloc is the one bound.
    void* probe = std::calloc(1, 64);  // calloc: its bytes need not be read, but GCC asks
    const bool ours = probe && mi_is_in_heap_region(probe);
    std::free(probe);
    return ours;
#else
    return false;
#endif
}

}  // namespace

std::string allocator_in_use() {
#ifdef PECD_WITH_MIMALLOC
    if (mimalloc_serves_malloc()) {
        const int v = mi_version();  // e.g. 209 for 2.0.9
        return "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
               std::to_string(v % 10);
    }
    return "other (mimalloc is linked, but malloc is bound to another library)";
#else
    return "system (glibc)";
#endif
}

// With glibc's allocator: every message passes through a few short-lived buffers of a
// few KB to a few hundred KB, freed by whichever of many worker threads finishes it. With
// glibc's defaults a thread's arena gives its free top back to the kernel (madvise) as
// soon as it exceeds 128 KiB and takes it again on the next message: a system call, a TLB
// shootdown on every core that runs one of our threads and a page fault per page, at
// every message. Fixed thresholds keep up to 8 MiB free per arena instead; buffers from
// 4 MiB up (large messages) are still mapped on their own and returned at once. The
// operator's MALLOC_*_ variables win.
void tune_allocator() {
    if (mimalloc_serves_malloc()) return;
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("MALLOC_MMAP_THRESHOLD_")) return;
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

}  // namespace pecd::app
