// pecd - the certified mail server daemon
//
// pecd [--config FILE] [--data-dir DIR] [--any-port] [--smtp-only] [--check-config]
// Without --config it runs the embedded default: a PEC provider on loopback under DIR
// (default ./pecd-data); --smtp-only runs it as a plain SMTP server instead (no PEC
// processing). --check-config validates FILE and the files it names (certificates, keys,
// trust anchors, secrets, the data directory) and exits: 0 = valid, 2 = a problem, each
// named by its key on standard error.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "allocator.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "server/config_check.hpp"
#include "server/daemon.hpp"

int main(int argc, char** argv) {
    pecd::app::tune_allocator();
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
    app.add_flag("--version", version, "print the version and the memory allocator in use, and exit");
    CLI11_PARSE(app, argc, argv);
    if (version) {
        std::cout << "pecd " << PECD_VERSION << "\nallocator: " << pecd::app::allocator_in_use() << "\n";
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
        opts.allocator = pecd::app::allocator_in_use();
        return pecd::server::run_daemon(std::move(cfg), opts);
    } catch (const std::exception& e) {
        spdlog::critical("pecd: {}", e.what());
        return 1;
    }
}
