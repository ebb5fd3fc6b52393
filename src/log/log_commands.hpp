// log_commands.hpp - the `pecctl log` command group
//
// register_log_commands() adds `log search|verify|export` to pecctl's CLI11 app; it is
// called from src/cli/log_cmd.cpp (the registry). See log_commands.cpp for the commands,
// their options and exit statuses (0 ok, 1 the log is not intact, 2 error).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "store/database.hpp"

namespace pecd::log {

void register_log_commands(CLI::App& app);

// The database holding the legal log, for pecctl: with config_file the one of its
// [store] (SQLite or PostgreSQL), else the SQLite file db, else <data_dir>/pecd.db. Never
// creates a database: a missing SQLite file is an Error.
std::unique_ptr<store::Database> open_log_database(const std::string& db, const std::string& data_dir,
                                                   const std::string& config_file);

}  // namespace pecd::log
