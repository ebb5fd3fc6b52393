// config.hpp - pecd's configuration: the TOML file, its validation, the embedded default
//
// load_config() reads a TOML file and returns a complete Config or throws ParseError
// naming the exact key (e.g. "listener[2].tls") and the reason; unknown keys are errors,
// so a typo never silently falls back to a default. embedded_default() is what pecd runs
// with no file: everything on loopback under one data directory.
//
// Every limit has its default here and is documented in docs/operators-guide.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pecd::config {

struct Listener {
    std::string name;
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
    std::string tls = "starttls";  // none | starttls | starttls-required | implicit
    bool auth = false;
    bool require_auth = false;
    bool sender_must_match_auth = false;
    bool lmtp = false;
    std::filesystem::path certificate;  // empty: the [tls] pair
    std::filesystem::path key;
};

struct Limits {
    std::uint64_t message_size = 100ull << 20;
    std::size_t recipients = 1000;
    std::size_t header_size = 256 * 1024;
    std::size_t line_length = 10000;
    unsigned errors = 20;
    std::chrono::seconds idle_timeout{300};
    std::size_t connections = 10000;
    std::size_t connections_per_client = 50;
    unsigned auth_failures_per_address = 5;
    unsigned auth_failures_per_account = 10;
    std::chrono::seconds auth_failure_window{300};
};

struct Tls {
    std::string min_version = "1.2";
    std::filesystem::path certificate;  // empty: self-signed under data_dir/tls
    std::filesystem::path key;
    std::chrono::seconds reload_interval{2};
};

struct Mailbox {
    std::string address;
    std::string password;  // only for the embedded demo; never logged
};

struct Config {
    std::filesystem::path source;  // the file it came from, empty for the default
    std::string hostname = "localhost";
    std::filesystem::path data_dir;
    std::string log_level = "info";
    unsigned threads = 2;
    Limits limits;
    Tls tls;
    std::vector<Listener> listeners;
    std::vector<std::string> domains;  // local domains created at start if missing
};

Config load_config(const std::filesystem::path& path);
Config parse_config(std::string_view toml_text, const std::string& source_name = "config");
Config embedded_default(const std::filesystem::path& data_dir);

}  // namespace pecd::config
