// cli_test.cpp - `pecctl quarantine list|show|purge` run as the real binary
//
// Covers: the listing (one JSON object per entry, oldest first, every metadata field),
// show (metadata, and the stored bytes with --message), purge after 30 months (an entry
// from 2020 goes, a fresh one stays), locating the quarantine through --dir, --data-dir
// and a configuration file's [antivirus] quarantine_dir, and the errors (no quarantine,
// unknown id, retention below 30 months) with exit status 2.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "av/quarantine.hpp"
#include "temp_dir.hpp"

namespace pecd::av {
namespace {

const std::string kPecctl = std::string(PECD_BINARY_DIR) + "/app/pecctl/pecctl";

struct Run {
    int status = -1;
    std::string out;
};

Run pecctl(const std::string& args) {
    Run r;
    FILE* p = ::popen((kPecctl + " quarantine " + args + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
    int raw = ::pclose(p);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return r;
}

std::vector<nlohmann::json> lines_of(const std::string& out) {
    std::vector<nlohmann::json> v;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) v.push_back(nlohmann::json::parse(line));
    return v;
}

class QuarantineCliTest : public ::testing::Test {
protected:
    void SetUp() override {
        ManualClock old_clock(TimePoint(std::chrono::sys_days(std::chrono::year{2020} / 1 / 10)));
        Quarantine old_q(qdir(), old_clock);
        Envelope env;
        env.mail_from = "mario.rossi@pec.example.it";
        env.recipients = {{"anna@pec.other.it", "", ""}};
        env.session.client_ip = "127.0.0.1";
        QuarantineEntry m;
        m.point = "reception-point";
        m.virus = "Pecd.Test.EICAR.UNOFFICIAL";
        m.pec_msgid = "<opec-old@pec.example.it>";
        old_ = old_q.store("old message\r\n", env, m).id;
        Quarantine now_q(qdir(), SystemClock::instance());
        m.point = "access-point";
        m.pec_msgid = "";
        fresh_ = now_q.store("fresh message\r\n", env, m).id;
    }
    std::filesystem::path qdir() const { return dir_.path() / "data" / "quarantine"; }
    std::string where() const { return "--dir '" + qdir().string() + "'"; }

    test::TempDir dir_{"pecd-quarantine-cli"};
    std::string old_, fresh_;
};

TEST_F(QuarantineCliTest, ListShowsEveryEntryOldestFirst) {
    auto r = pecctl("list " + where());
    ASSERT_EQ(r.status, 0) << r.out;
    auto entries = lines_of(r.out);
    ASSERT_EQ(entries.size(), 2u) << r.out;
    EXPECT_EQ(entries[0]["id"], old_);
    EXPECT_EQ(entries[0]["detected_at"], "2020-01-10T00:00:00Z");
    EXPECT_EQ(entries[0]["point"], "reception-point");
    EXPECT_EQ(entries[0]["virus"], "Pecd.Test.EICAR.UNOFFICIAL");
    EXPECT_EQ(entries[0]["pec_msgid"], "<opec-old@pec.example.it>");
    EXPECT_EQ(entries[0]["mail_from"], "mario.rossi@pec.example.it");
    EXPECT_EQ(entries[0]["recipients"], nlohmann::json::array({"anna@pec.other.it"}));
    EXPECT_EQ(entries[1]["id"], fresh_);
    EXPECT_EQ(entries[1]["point"], "access-point");
    // --data-dir finds DIR/quarantine.
    auto by_data_dir = pecctl("list --data-dir '" + (dir_.path() / "data").string() + "'");
    EXPECT_EQ(by_data_dir.status, 0);
    EXPECT_EQ(by_data_dir.out, r.out);
}

TEST_F(QuarantineCliTest, ShowPrintsMetadataOrTheMessage) {
    auto meta = pecctl("show " + old_ + " " + where());
    ASSERT_EQ(meta.status, 0) << meta.out;
    EXPECT_EQ(nlohmann::json::parse(meta.out)["sha256"].get<std::string>().size(), 64u);
    auto msg = pecctl("show " + old_ + " --message " + where());
    ASSERT_EQ(msg.status, 0);
    EXPECT_EQ(msg.out, "old message\r\n");
    auto missing = pecctl("show 20200101T000000Z-ffff " + where());
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.out.find("no entry"), std::string::npos);
}

TEST_F(QuarantineCliTest, PurgeRemovesEntriesOlderThanTheRetention) {
    // The configuration file names the quarantine directory.
    auto conf = dir_.path() / "pecd.toml";
    std::ofstream(conf) << "data_dir = \"" << (dir_.path() / "elsewhere").string() << "\"\n"
                        << "[[listener]]\nname = \"mx\"\nport = 2525\n"
                        << "[antivirus]\nquarantine_dir = \"" << qdir().string() << "\"\n";
    auto r = pecctl("purge --config '" + conf.string() + "'");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["removed"], 1);
    auto left = lines_of(pecctl("list " + where()).out);
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0]["id"], fresh_);
    EXPECT_EQ(nlohmann::json::parse(pecctl("purge " + where()).out)["removed"], 0);
}

TEST_F(QuarantineCliTest, ErrorsExitWithStatus2) {
    EXPECT_EQ(pecctl("list --dir '" + (dir_.path() / "none").string() + "'").status, 2);
    EXPECT_FALSE(std::filesystem::exists(dir_.path() / "none")) << "reading must not create the quarantine";
    EXPECT_EQ(pecctl("list").status, 2);
    EXPECT_NE(pecctl("purge --retention-months 12 " + where()).status, 0);
    EXPECT_EQ(lines_of(pecctl("list " + where()).out).size(), 2u);
}

}  // namespace
}  // namespace pecd::av
