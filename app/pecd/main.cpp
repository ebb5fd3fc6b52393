// pecd - the certified mail server daemon
//
// pecd [--config FILE] [--data-dir DIR] [--any-port] [--smtp-only] [--check-config] [--version]
// Without --config it runs the embedded default: a PEC provider on loopback under DIR
// (default ./pecd-data); --smtp-only runs it as a plain SMTP server instead (no PEC
// processing). --check-config validates FILE and the files it names (certificates, keys,
// trust anchors, secrets, the data directory) and exits: 0 = valid, 2 = a problem, each
// named by its key on standard error.
#include <malloc.h>
#include <spdlog/spdlog.h>
#if PECD_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include "config/config.hpp"
#include "core/error.hpp"
#include "server/config_check.hpp"
#include "server/daemon.hpp"

namespace {

#if PECD_JEMALLOC
// jemalloc (see PECD_JEMALLOC in CMakeLists.txt) keeps per-thread caches and gives freed
// pages back to the kernel after a decay time, not at every free: its defaults suit us.
void tune_allocator() {}

// Checked, not assumed: the version line says jemalloc only when malloc() itself is
// jemalloc's (its per-thread allocation counter grows by what malloc() hands out).
std::string allocator_name() {
    const char* version = nullptr;
    std::size_t size = sizeof version;
    std::uint64_t* allocated = nullptr;
    std::size_t psize = sizeof allocated;
    if (mallctl("version", &version, &size, nullptr, 0) != 0 ||
        mallctl("thread.allocatedp", &allocated, &psize, nullptr, 0) != 0 || !version || !allocated)
        return "unknown (jemalloc is linked but does not answer)";
    const std::uint64_t before = *allocated;
    void* probe = std::malloc(64 * 1024);
    asm volatile("" : : "r"(probe) : "memory");  // the allocation happens and is kept
    const std::uint64_t after = *allocated;
    std::free(probe);
    if (after - before < 64 * 1024) return "another malloc (jemalloc is linked but not used)";
    return std::string("jemalloc ") + version;
}
#else
// Every message passes through a few short-lived buffers of a few KB to a few hundred KB,
// freed by whichever of many worker threads finishes it. With glibc's defaults a thread's
// arena gives its free top back to the kernel (madvise) as soon as it exceeds 128 KiB and
// takes it again on the next message: a system call, a TLB shootdown on every core that
// runs one of our threads and a page fault per page, at every message. Fixed thresholds
// keep up to 8 MiB free per arena instead; buffers from 4 MiB up (large messages) are
// still mapped on their own and returned at once. The operator's MALLOC_*_ variables win.
void tune_allocator() {
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("MALLOC_MMAP_THRESHOLD_")) return;
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

std::string allocator_name() {
    return "the C library's malloc";
}
#endif

}  // namespace

int main(int argc, char** argv) {
    tune_allocator();
    CLI::App app{"pecd: certified e-mail (PEC) server"};
    std::string config_file, data_dir;
    bool any_port = false, check_only = false, smtp_only = false, version = false;
    std::string clock_offset_file;
    app.add_option("-c,--config", config_file, "TOML configuration file (default: the embedded default)");
    app.add_option("-d,--data-dir", data_dir, "data directory (overrides data_dir of the file)");
    app.add_flag("--any-port", any_port, "bind every listener to a free port; see DATA_DIR/listeners.json");
    app.add_flag("--check-config", check_only, "validate the configuration and exit");
    app.add_flag("--smtp-only", smtp_only, "embedded default without PEC processing (a plain SMTP server)");
    app.add_option("--clock-offset-file", clock_offset_file,
                   "tests only: add the seconds in this file to the system time");
    app.add_flag("--version", version, "print the version and exit");
    CLI11_PARSE(app, argc, argv);
    if (version) {
        std::cout << "pecd " << PECD_VERSION << "\n"
                  << "allocator: " << allocator_name() << "\n";
        return 0;
    }

    pecd::config::Config cfg;
    pecd::server::RunOptions opts;
    opts.any_port = any_port;
    opts.clock_offset_file = clock_offset_file;
    try {
        if (!config_file.empty()) {
            cfg = pecd::config::load_config(config_file);
            if (!data_dir.empty()) cfg.data_dir = data_dir;
        } else {
            cfg = pecd::config::embedded_default(data_dir.empty() ? "pecd-data" : data_dir);
            cfg.pec.enabled = !smtp_only;
            opts.embedded_demo = true;
        }
    } catch (const pecd::Error& e) {
        std::cerr << "pecd: configuration " << (config_file.empty() ? "" : config_file + ": ") << e.what() << "\n";
        return 2;
    }
    if (check_only) {
        // Beyond the TOML: the files it names, read as the daemon will read them.
        auto problems = pecd::server::check_files(cfg, std::chrono::system_clock::now());
        for (const auto& p : problems)
            std::cerr << "pecd: configuration " << (config_file.empty() ? "" : config_file + ": ") << p.key
                      << ": " << p.problem << "\n";
        if (!problems.empty()) return 2;
        std::cout << "pecd: configuration is valid\n";
        return 0;
    }
    try {
        return pecd::server::run_daemon(std::move(cfg), opts);
    } catch (const std::exception& e) {
        spdlog::critical("pecd: {}", e.what());
        return 1;
    }
}
