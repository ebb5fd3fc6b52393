// registry.hpp - how pecctl command groups register themselves
//
// Each module adds its pecctl commands in its own file (src/cli/<group>_cmd.cpp) with
//   static const bool registered = pecd::cli::add_group(&register_my_commands);
// pecctl's main() builds the CLI11 application from every registered group. The cli
// module is an object library, so every group's object file is linked.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pecd::cli {

using GroupRegistrar = void (*)(CLI::App& app);

std::vector<GroupRegistrar>& groups();
inline bool add_group(GroupRegistrar r) {
    groups().push_back(r);
    return true;
}

// pecctl's JSON output. Stored data that came from outside (a sender's address, a remote
// server's reply, a header) may hold bytes that are not UTF-8: they are printed as U+FFFD
// instead of failing the whole listing (nlohmann's default is to throw).
inline std::string json_text(const nlohmann::json& j, int indent = 2) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pecd::cli
