// log_commands.cpp - `pecctl log search|verify|export`: the legal log for operators
//
//   pecctl log search  --db PATH [--message-id ID] [--address A] [--from T] [--to T]
//       prints the matching records (JSON) with the proof that they are intact: for
//       each segment holding one, its chain recomputed against its manifest and its
//       seal (signature + time stamp) checked. Records not yet sealed say so.
//   pecctl log verify  --db PATH [--signer-ca PEM] [--tsa-ca PEM]
//       checks the chain, every segment and every seal; exit 1 naming the first spot
//       that was altered, removed or inserted.
//   pecctl log export  --db PATH --out DIR [same filters as search]
//       writes a bundle a third party checks with stock OpenSSL (log/bundle.hpp).
// The database is --db PATH, or <--data-dir>/pecd.db. Times (T): YYYY-MM-DD or
// YYYY-MM-DDThh:mm:ssZ, UTC. Exit status: 0 ok, 1 verification failed, 2 error.
#include "log/log_commands.hpp"

#include <openssl/pem.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "core/error.hpp"
#include "crypto/timestamp.hpp"
#include "log/bundle.hpp"
#include "log/legal_log.hpp"
#include "log/verify.hpp"
#include "store/database.hpp"

namespace pecd::log {

std::unique_ptr<store::Database> open_log_database(const std::string& db, const std::string& data_dir,
                                                   const std::string& config_file) {
    if (!config_file.empty()) {
        // The database of pecd's [store] (SQLite or the PostgreSQL of several nodes).
        auto c = config::load_config(config_file);
        if (c.store.backend == "postgresql")
            return store::open_database(
                {c.store.backend, {}, c.store.conninfo, c.store.password_file.string(), 2});
        auto path = c.store.path.empty() ? c.data_dir / "pecd.db" : c.store.path;
        if (!std::filesystem::exists(path)) throw Error("no database at " + path.string());
        return store::open_sqlite(path.string());
    }
    std::string path = !db.empty()         ? db
                       : !data_dir.empty() ? (std::filesystem::path(data_dir) / "pecd.db").string()
                                           : "";
    if (path.empty()) throw Error("give the database with --db PATH, --data-dir DIR or --config FILE");
    // Never create an empty database while looking for a log.
    if (!std::filesystem::exists(path)) throw Error("no database at " + path);
    return store::open_sqlite(path);
}

namespace {

struct LogArgs {
    std::string db;
    std::string data_dir;
    std::string config;
    std::string message_id, address, from, to;
    std::string out;
    std::string signer_ca, tsa_ca;
};

TimePoint parse_cli_time(const std::string& text, const char* option) {
    std::string t = text;
    if (t.size() == 10) t += "T00:00:00Z";
    if (t.size() == 20 && t.back() == 'Z') t = t.substr(0, 19) + ".000000Z";
    try {
        return parse_utc_bound(t);
    } catch (const ParseError&) {
        throw ParseError("expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, got '" + text + "'", 0, option);
    }
}

SearchQuery query_of(const LogArgs& a) {
    SearchQuery q;
    q.message_id = a.message_id;
    q.address = a.address;
    if (!a.from.empty()) q.from = parse_cli_time(a.from, "--from");
    if (!a.to.empty()) q.to = parse_cli_time(a.to, "--to");
    return q;
}

std::vector<crypto::X509Ptr> load_certificates(const std::string& path) {
    std::vector<crypto::X509Ptr> out;
    if (path.empty()) return out;
    FILE* f = fopen(path.c_str(), "r");
    if (!f) throw Error("cannot open " + path);
    while (X509* c = PEM_read_X509(f, nullptr, nullptr, nullptr)) out.emplace_back(c, crypto::X509Free{});
    fclose(f);
    if (out.empty()) throw Error(path + ": no PEM certificate");
    return out;
}

VerifyOptions verify_options(const LogArgs& a) {
    return {load_certificates(a.signer_ca), load_certificates(a.tsa_ca)};
}

void run_search(const LogArgs& a) {
    auto db = open_log_database(a.db, a.data_dir, a.config);
    LegalLog legal(*db);
    auto records = legal.search(query_of(a));
    auto segments = legal.segments();
    const VerifyOptions options = verify_options(a);
    nlohmann::json out;
    out["records"] = nlohmann::json::array();
    std::set<std::int64_t> used;
    for (const auto& r : records) {
        nlohmann::json item = {{"seq", r.seq},
                               {"digest", r.digest},
                               {"chain", r.chain},
                               {"record", nlohmann::json::parse(r.record)}};
        item["segment"] = nullptr;
        for (const auto& s : segments)
            if (r.seq >= s.first_seq && r.seq <= s.last_seq) {
                item["segment"] = s.id;
                item["sealed"] = s.sealed();
                used.insert(s.id);
            }
        if (item["segment"].is_null()) item["sealed"] = false;
        out["records"].push_back(item);
    }
    nlohmann::json seals = nlohmann::json::array();
    bool intact = true;
    for (const auto& s : segments) {
        if (!used.count(s.id)) continue;
        nlohmann::json seal = {{"segment", s.id},        {"first_seq", s.first_seq},
                               {"last_seq", s.last_seq}, {"head_chain", s.head_chain},
                               {"manifest", s.manifest}, {"sealed", s.sealed()}};
        if (s.sealed()) {
            auto ts = crypto::parse_timestamp_response(s.timestamp);
            seal["time_stamp"] = ts.gen_time ? format_utc(*ts.gen_time) : "";
            seal["tsa"] = ts.tsa_subject;
        } else {
            seal["pending"] = s.last_error;
        }
        auto problems = verify_segment(legal, s, options);
        if (s.sealed()) intact = intact && problems.empty();
        nlohmann::json found = nlohmann::json::array();
        for (const auto& p : problems) found.push_back(p.what);
        seal["verdict"] = problems.empty() ? "records match the sealed head; signature and time stamp verify"
                                           : problems.front().what;
        seal["problems"] = found;
        seals.push_back(seal);
    }
    out["proof"] = {{"intact", intact},
                    {"anchored", !options.signer_anchors.empty() && !options.tsa_anchors.empty()},
                    {"seals", seals},
                    {"note",
                     "pecctl log export writes these records with their seals as a "
                     "bundle anyone can "
                     "check with openssl; pecctl log verify checks the whole log"}};
    std::cout << out.dump(2) << "\n";
}

int run_verify(const LogArgs& a) {
    auto db = open_log_database(a.db, a.data_dir, a.config);
    LegalLog legal(*db);
    auto report = verify_log(legal, verify_options(a));
    std::cout << "records checked: " << report.records << "\n"
              << "segments sealed: " << report.segments_sealed << ", unsealed: " << report.segments_unsealed
              << ", purged: " << report.segments_purged << "\n"
              << "trust: " << (report.anchored ? "given anchors" : "certificates carried in the seals")
              << "\n";
    if (report.ok()) {
        std::cout << "legal log OK\n";
        return 0;
    }
    const auto& first = report.problems.front();
    std::cout << "legal log NOT intact\nFIRST PROBLEM: " << first.what << "\n";
    for (std::size_t i = 1; i < report.problems.size() && i < 50; ++i)
        std::cout << "also: " << report.problems[i].what << "\n";
    return 1;
}

void run_export(const LogArgs& a) {
    auto db = open_log_database(a.db, a.data_dir, a.config);
    LegalLog legal(*db);
    bool filtered = !a.message_id.empty() || !a.address.empty() || !a.from.empty() || !a.to.empty();
    SearchQuery q = query_of(a);
    auto summary = export_bundle(legal, a.out, filtered ? &q : nullptr);
    std::cout << "exported " << summary.records << " records, " << summary.segments << " sealed segments";
    if (summary.unsealed) std::cout << " (" << summary.unsealed << " records not yet sealed)";
    std::cout << " to " << a.out << "\ncheck with: sh "
              << (std::filesystem::path(a.out) / "verify.sh").string() << " [provider-ca.pem [tsa-ca.pem]]\n";
}

void add_common(CLI::App* cmd, LogArgs& a) {
    cmd->add_option("--db", a.db, "SQLite database file of pecd");
    cmd->add_option("--data-dir", a.data_dir, "pecd data directory (database <dir>/pecd.db)");
    cmd->add_option("--config", a.config, "pecd's configuration file: the database of its [store]");
}

void add_filters(CLI::App* cmd, LogArgs& a) {
    cmd->add_option("--message-id", a.message_id, "PEC or client message id");
    cmd->add_option("--address", a.address, "sender or recipient address");
    cmd->add_option("--from", a.from, "from this time (UTC, inclusive)");
    cmd->add_option("--to", a.to, "until this time (UTC, exclusive)");
}

void add_trust(CLI::App* cmd, LogArgs& a) {
    cmd->add_option("--signer-ca", a.signer_ca, "PEM trust anchors for the seal signer");
    cmd->add_option("--tsa-ca", a.tsa_ca, "PEM trust anchors for the time-stamping authority");
}

}  // namespace

void register_log_commands(CLI::App& app) {
    auto args = std::make_shared<LogArgs>();
    CLI::App* group = app.add_subcommand("log", "legal log: search, verify, export");
    group->require_subcommand(1);

    CLI::App* search =
        group->add_subcommand("search", "records of a message, address or time range, with proof");
    add_common(search, *args);
    add_filters(search, *args);
    add_trust(search, *args);
    search->callback([args] { run_search(*args); });

    CLI::App* verify = group->add_subcommand("verify", "check the chain, the segments and every seal");
    add_common(verify, *args);
    add_trust(verify, *args);
    verify->callback([args] {
        if (int rc = run_verify(*args); rc != 0) {
            std::cout.flush();
            std::exit(rc);  // 1 = not intact, distinct from errors (2)
        }
    });

    CLI::App* exp = group->add_subcommand("export", "write a bundle checkable with stock OpenSSL");
    add_common(exp, *args);
    add_filters(exp, *args);
    exp->add_option("--out", args->out, "directory to create (must be new or empty)")->required();
    exp->callback([args] { run_export(*args); });
}

}  // namespace pecd::log
