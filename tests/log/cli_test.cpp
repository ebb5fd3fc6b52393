// cli_test.cpp - `pecctl log search|verify|export` run as the real binary
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "log/verify.hpp"
#include "log_fixture.hpp"

namespace pecd::log::test {
namespace {

const std::string kPecctl = std::string(PECD_BINARY_DIR) + "/app/pecctl/pecctl";

class LogCliTest : public LogFixture {
protected:
    void SetUp() override {
        LogFixture::SetUp();
        LocalTimestampSource source(
            std::make_shared<crypto::TimestampAuthority>(crypto::create_tsa_identity("cli TSA"), clock));
        for (int i = 1; i <= 12; ++i)
            change_and_log(i, pec_event(i % 2 ? EventKind::acceptance : EventKind::delivery,
                                        "msg-" + std::to_string(i % 4), clock.now(), i));
        Sealer sealer(*log, provider, source, clock, {});
        ASSERT_EQ(sealer.run_once(true), 1);
        change_and_log(13, pec_event(EventKind::delivery, "msg-1", clock.now(), 13));  // unsealed tail
        log.reset();
        db.reset();  // pecctl opens the file itself
    }
    CommandResult pecctl(const std::string& args) { return run_command(quote(kPecctl) + " log " + args); }
    std::string db_arg() const { return " --db " + quote(db_path()); }
    // Changes the database behind pecd's back with the sqlite3 tool.
    void tamper(const std::string& statements) {
        write_file(dir / "tamper.sql", statements + ";\n");
        auto r = run_command("sqlite3 " + quote(db_path()) + " < " + quote(dir / "tamper.sql"));
        ASSERT_EQ(r.status, 0) << r.output;
    }
};

TEST_F(LogCliTest, VerifyPassesOnAnIntactLog) {
    auto r = pecctl("verify" + db_arg());
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("records checked: 13"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("legal log OK"), std::string::npos) << r.output;
    auto anchored = pecctl("verify" + db_arg() + " --signer-ca " + quote(dir / "provider.pem"));
    EXPECT_EQ(anchored.status, 0) << anchored.output;
}

TEST_F(LogCliTest, VerifyNamesAFlippedByte) {
    tamper("UPDATE log_records SET record = replace(record, 'Prova 6', 'Prova 7') WHERE seq = 6");
    auto r = pecctl("verify" + db_arg());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("FIRST PROBLEM: record 6 was altered"), std::string::npos) << r.output;
}

TEST_F(LogCliTest, VerifyNamesADeletedRecord) {
    tamper("DELETE FROM log_records WHERE seq = 3");
    auto r = pecctl("verify" + db_arg());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("FIRST PROBLEM: record 3 is missing"), std::string::npos) << r.output;
}

TEST_F(LogCliTest, VerifyNamesAnInsertedRecord) {
    std::string forged = canonical_record(pec_event(EventKind::delivery, "forged", clock.now()), 9);
    tamper(
        "UPDATE log_records SET seq = seq + 1000 WHERE seq >= 9; UPDATE log_records SET seq = seq - 999 "
        "WHERE "
        "seq >= 1000; INSERT INTO log_records (seq, at_us, record, digest, chain) VALUES (9, 0, '" +
        forged + "', '" + record_digest(forged) + "', 'x')");
    auto r = pecctl("verify" + db_arg());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("FIRST PROBLEM: record 9"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("inserted"), std::string::npos) << r.output;
}

TEST_F(LogCliTest, SearchPrintsRecordsWithTheirProof) {
    auto r = pecctl("search" + db_arg() + " --message-id msg-1");
    ASSERT_EQ(r.status, 0) << r.output;
    auto j = nlohmann::json::parse(r.output);
    ASSERT_EQ(j["records"].size(), 4u);  // 1, 5, 9 sealed; 13 not yet
    EXPECT_EQ(j["records"][0]["record"]["pec_msgid"], "msg-1");
    EXPECT_EQ(j["records"][0]["sealed"], true);
    EXPECT_EQ(j["records"][3]["sealed"], false);
    EXPECT_EQ(j["proof"]["intact"], true);
    ASSERT_EQ(j["proof"]["seals"].size(), 1u);
    EXPECT_EQ(j["proof"]["seals"][0]["verdict"],
              "records match the sealed head; signature and time stamp verify");
    // A record altered in the segment shows in the proof of the others.
    tamper("UPDATE log_records SET record = replace(record, 'Prova 2', 'Prova 3') WHERE seq = 2");
    auto altered = nlohmann::json::parse(pecctl("search" + db_arg() + " --message-id msg-1").output);
    EXPECT_EQ(altered["proof"]["intact"], false);
    EXPECT_EQ(altered["proof"]["seals"][0]["verdict"],
              "record 2 was altered: its content does not match its digest");
    auto by_address =
        nlohmann::json::parse(pecctl("search" + db_arg() + " --address ESTERNO@mail.example").output);
    EXPECT_EQ(by_address["records"].size(), 13u);
    auto none = nlohmann::json::parse(pecctl("search" + db_arg() + " --to 2000-01-01").output);
    EXPECT_EQ(none["records"].size(), 0u);
    // Bounds past the clock's range (1677-2262) are open ends, not wrapped-around days.
    auto all = nlohmann::json::parse(pecctl("search" + db_arg() + " --to 9999-12-31").output);
    EXPECT_EQ(all["records"].size(), 13u);
    all = nlohmann::json::parse(
        pecctl("search" + db_arg() + " --from 0001-01-01 --to 9999-12-31T23:59:59Z").output);
    EXPECT_EQ(all["records"].size(), 13u);
    none = nlohmann::json::parse(pecctl("search" + db_arg() + " --from 9999-01-01").output);
    EXPECT_EQ(none["records"].size(), 0u);
}

TEST_F(LogCliTest, ExportWritesABundleOpensslChecks) {
    auto r = pecctl("export" + db_arg() + " --message-id msg-2 --out " + quote(dir / "bundle"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("exported 3 records, 1 sealed segments"), std::string::npos) << r.output;
    auto v = run_command("sh " + quote(dir / "bundle" / "verify.sh") + " " + quote(dir / "provider.pem"));
    EXPECT_EQ(v.status, 0) << v.output;
    EXPECT_NE(v.output.find("bundle OK: 3 records intact"), std::string::npos) << v.output;
}

TEST_F(LogCliTest, BadArgumentsGetPreciseErrors) {
    auto r = pecctl("search" + db_arg() + " --from yesterday");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("--from"), std::string::npos) << r.output;
    r = pecctl("verify --db " + quote(dir / "nope.db"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("no database at"), std::string::npos) << r.output;
    r = pecctl("verify");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.output.find("--db"), std::string::npos) << r.output;
    r = pecctl("verify --data-dir " + quote(dir.path));
    EXPECT_EQ(r.status, 0) << r.output;  // <data-dir>/pecd.db
}

}  // namespace
}  // namespace pecd::log::test
