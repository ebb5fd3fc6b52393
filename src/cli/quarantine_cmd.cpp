// quarantine_cmd.cpp - `pecctl quarantine list|show|purge`: the special storage of
// infected messages (av/quarantine.hpp) for operators
//
//   pecctl quarantine list  [WHERE]              one JSON object per entry and line, oldest first
//   pecctl quarantine show  ID [WHERE] [--message]  the entry's metadata (JSON), or with
//                                                   --message the stored bytes
//   pecctl quarantine purge [WHERE] [--retention-months N]
//       removes entries older than the retention (default: the configuration's, else 30)
//       and prints {"removed": n}
// WHERE is --dir DIR (the quarantine itself), --config FILE (its [antivirus]
// quarantine_dir, else <data_dir>/quarantine) or --data-dir DIR (DIR/quarantine).
// Reading never creates anything. Exit status: 0 ok, 2 error (message on stderr).
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "av/quarantine.hpp"
#include "cli/output.hpp"
#include "cli/registry.hpp"
#include "config/config.hpp"
#include "core/calendar.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"

namespace {

namespace fsys = std::filesystem;
using nlohmann::json;
using pecd::cli::json_text;

struct QuarantineArgs {
    std::string dir, config, data_dir, id;
    bool message = false;
    int retention_months = 0;  // 0: from the configuration, else 30
};

struct Location {
    fsys::path dir;
    int retention_months = 30;
};

Location locate(const QuarantineArgs& a) {
    Location l;
    if (!a.dir.empty()) {
        l.dir = a.dir;
    } else if (!a.config.empty()) {
        auto c = pecd::config::load_config(a.config);
        l.dir = pecd::config::quarantine_dir(c);
        l.retention_months = static_cast<int>(c.antivirus.retention_months);
    } else if (!a.data_dir.empty()) {
        l.dir = fsys::path(a.data_dir) / "quarantine";
    } else {
        throw pecd::Error("give the quarantine with --dir DIR, --config FILE or --data-dir DIR");
    }
    if (a.retention_months > 0) l.retention_months = a.retention_months;
    if (!fsys::is_directory(l.dir)) throw pecd::Error("no quarantine at " + l.dir.string());
    return l;
}

json entry_json(const pecd::av::QuarantineEntry& e) {
    return json{{"id", e.id},
                {"detected_at", pecd::rfc3339_utc(e.detected_at)},
                {"point", e.point},
                {"host", e.host},
                {"scanner", e.scanner},
                {"virus", e.virus},
                {"pec_msgid", e.pec_msgid},
                {"client_msgid", e.client_msgid},
                {"mail_from", e.mail_from},
                {"recipients", e.recipients},
                {"client_ip", e.client_ip},
                {"helo", e.helo},
                {"auth_user", e.auth_user},
                {"listener", e.listener},
                {"received_at", pecd::rfc3339_utc(e.received_at)},
                {"size", e.size},
                {"sha256", e.sha256}};
}

template <class Fn>
void guarded(Fn&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        std::cerr << "pecctl quarantine: " << e.what() << "\n";
        std::exit(2);
    }
}

void add_where(CLI::App* cmd, QuarantineArgs& a) {
    cmd->add_option("--dir", a.dir, "the quarantine directory");
    cmd->add_option("--config", a.config, "pecd's configuration file (its [antivirus] quarantine_dir)");
    cmd->add_option("--data-dir", a.data_dir, "pecd's data directory (DIR/quarantine)");
}

void register_quarantine_commands(CLI::App& app) {
    auto args = std::make_shared<QuarantineArgs>();
    auto* group =
        app.add_subcommand("quarantine", "infected messages kept in the special storage (30 months)");
    group->require_subcommand(1);

    auto* list = group->add_subcommand("list", "every entry, oldest first, one JSON object per line");
    add_where(list, *args);
    list->callback([args] {
        guarded([&] {
            auto l = locate(*args);
            pecd::av::Quarantine q(l.dir, pecd::SystemClock::instance(), l.retention_months);
            for (const auto& e : q.list()) std::cout << json_text(entry_json(e), -1) << "\n";
        });
    });

    auto* show = group->add_subcommand("show", "one entry's metadata, or its stored message");
    show->add_option("id", args->id, "the entry id (from list)")->required();
    show->add_flag("--message", args->message, "print the stored message bytes instead");
    add_where(show, *args);
    show->callback([args] {
        guarded([&] {
            auto l = locate(*args);
            pecd::av::Quarantine q(l.dir, pecd::SystemClock::instance(), l.retention_months);
            auto e = q.find(args->id);
            if (!e) throw pecd::Error("no entry \"" + args->id + "\" in " + l.dir.string());
            if (args->message)
                std::cout << q.read_message(args->id);
            else
                std::cout << json_text(entry_json(*e)) << "\n";
        });
    });

    auto* purge = group->add_subcommand("purge", "remove entries older than the retention period");
    purge->add_option("--retention-months", args->retention_months, "months to keep (at least 30)")
        ->check(CLI::Range(30, 1200));
    add_where(purge, *args);
    purge->callback([args] {
        guarded([&] {
            auto l = locate(*args);
            pecd::av::Quarantine q(l.dir, pecd::SystemClock::instance(), l.retention_months);
            std::cout << json_text(json{{"removed", q.purge()}}, -1) << "\n";
        });
    });
}

const bool registered = pecd::cli::add_group(&register_quarantine_commands);

}  // namespace
