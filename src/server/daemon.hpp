// daemon.hpp - pecd's process: wiring of configuration, storage, TLS and listeners
//
// Daemon::run() prepares the data directory (self-signed certificates on first start,
// the database, the demo domain and mailboxes of the embedded default), binds every
// listener, writes DATA_DIR/listeners.json, prints how to reach the server, and serves
// until SIGTERM/SIGINT. SIGHUP re-reads certificate files at once (they are also polled).
#pragma once

#include <functional>
#include <string>

#include "config/config.hpp"

namespace pecd::server {

struct RunOptions {
    bool any_port = false;       // bind every listener to a free port (tests, parallel runs)
    bool embedded_demo = false;  // create the demo domain and mailboxes if missing
    std::string clock_offset_file;  // tests: run on OffsetFileClock (core/offset_clock.hpp)
};

int run_daemon(config::Config config, const RunOptions& options);

}  // namespace pecd::server
