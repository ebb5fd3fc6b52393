// registry.hpp - how pecctl command groups register themselves
//
// Each module adds its pecctl commands in its own file (src/cli/<group>_cmd.cpp) with
//   static const bool registered = pecd::cli::add_group(&register_my_commands);
// pecctl's main() builds the CLI11 application from every registered group. The cli
// module is an object library, so every group's object file is linked.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace pecd::cli {

using GroupRegistrar = void (*)(CLI::App& app);

std::vector<GroupRegistrar>& groups();
inline bool add_group(GroupRegistrar r) {
    groups().push_back(r);
    return true;
}

}  // namespace pecd::cli
