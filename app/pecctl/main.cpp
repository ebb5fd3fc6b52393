// pecctl - administration and diagnostics for pecd
//
// Every subcommand group lives in src/cli/<group>_cmd.cpp and registers itself; this
// file only assembles them and maps errors to exit status 2.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/registry.hpp"
#include "core/error.hpp"

int main(int argc, char** argv) {
    CLI::App app{"pecctl: administration and diagnostics for the pecd certified mail server"};
    app.require_subcommand(1);
    for (auto reg : pecd::cli::groups()) reg(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const pecd::Error& e) {
        std::cerr << "pecctl: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "pecctl: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
