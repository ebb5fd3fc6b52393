// log_cmd.cpp - registers the `pecctl log` command group (search, verify, export)
//
// The commands themselves live with the legal log (src/log/log_commands.cpp).
#include "cli/registry.hpp"
#include "log/log_commands.hpp"

namespace {
const bool registered = pecd::cli::add_group(&pecd::log::register_log_commands);
}  // namespace
