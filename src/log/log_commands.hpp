// log_commands.hpp - the `pecctl log` command group
//
// register_log_commands() adds `log search|verify|export` to pecctl's CLI11 app; it is
// called from src/cli/log_cmd.cpp (the registry). See log_commands.cpp for the commands,
// their options and exit statuses (0 ok, 1 the log is not intact, 2 error).
#pragma once

#include <CLI/CLI.hpp>

namespace pecd::log {

void register_log_commands(CLI::App& app);

}  // namespace pecd::log
