// listeners_file.hpp - DATA_DIR/listeners.json: where a running pecd can be reached
//
// Written durably once every listener is bound and the server is ready to serve, so
// scripts and tests wait for this file instead of guessing ports:
//   {"pid": 1234, "hostname": "localhost",
//    "listeners": [{"name": "mx", "address": "127.0.0.1", "port": 2525, "tls": "starttls"}, ...]}
// tls is one of none, starttls, starttls-required, implicit.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "server/smtp_server.hpp"

namespace pecd::server {

std::string tls_mode_name(smtp::TlsMode mode);
smtp::TlsMode parse_tls_mode(const std::string& name);
void write_listeners_file(const std::filesystem::path& path, const std::string& hostname,
                          const std::vector<BoundListener>& listeners);

}  // namespace pecd::server
