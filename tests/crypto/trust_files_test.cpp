// trust_files_test.cpp - provider trust re-read while running: a CRL refreshed on disk
// revokes from the next verification on, snapshots in use keep theirs, broken files are
// refused once, and a CRL past its next update is reported.
#include "crypto/trust_files.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "core/error.hpp"
#include "crypto/identity.hpp"
#include "test_pki.hpp"

namespace pecd::crypto {
namespace {

using test::TestPki;
using test::write_all;

const std::string kContent = "Content-Type: text/plain\r\n\r\nMessaggio.\r\n";

// The default logger's lines while it lives.
class LogCapture {
public:
    LogCapture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
        sink->set_pattern("%l %v");
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
    }
    ~LogCapture() { spdlog::set_default_logger(previous_); }
    std::string text() const { return out_.str(); }
    std::size_t count(const std::string& needle) const {
        std::size_t n = 0;
        for (auto at = text().find(needle); at != std::string::npos; at = text().find(needle, at + 1)) ++n;
        return n;
    }

private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::logger> previous_;
};

class TrustFilesTest : public ::testing::Test {
protected:
    TestPki pki;
    std::string signature() const {
        KeySource s;
        s.certificate = pki.path("signer.pem");
        s.key = pki.path("signer.key");
        return cms_sign_detached(load_identity(s), kContent);
    }
    static CmsVerification check(const std::string& sig, const std::shared_ptr<const TrustStore>& trust) {
        return cms_verify_detached(sig, kContent, trust.get());
    }
};

TEST_F(TrustFilesTest, ARefreshedCrlRevokesFromTheNextVerification) {
    const auto sig = signature();
    pki.empty_crl();
    TrustFiles trust("pec", pki.path("ca.pem"), pki.path("crl.pem"));
    auto before = trust.current();
    ASSERT_TRUE(before->check_crl);
    EXPECT_TRUE(check(sig, before).chain_ok) << check(sig, before).error;
    EXPECT_FALSE(trust.reload_if_changed()) << "nothing changed";

    LogCapture log;
    pki.revoke_signer();  // the scheduled job writes the new CRL
    EXPECT_TRUE(trust.reload_if_changed());
    auto revoked = check(sig, trust.current());
    EXPECT_FALSE(revoked.chain_ok);
    EXPECT_NE(revoked.error.find("revoked"), std::string::npos) << revoked.error;
    EXPECT_TRUE(check(sig, before).chain_ok) << "a snapshot in use changed under its verification";
    EXPECT_NE(log.text().find("info pec: trust re-read from"), std::string::npos) << log.text();
    EXPECT_NE(log.text().find("info pec: CRL of CN=Test PEC Root CA,O=Test Root valid until 20"),
              std::string::npos)
        << log.text();
    EXPECT_FALSE(trust.reload_if_changed());

    // A broken replacement is refused, once; the CRL in use still revokes.
    write_all(pki.path("crl.pem"), "-----BEGIN X509 CRL-----\nbroken\n-----END X509 CRL-----\n");
    EXPECT_FALSE(trust.reload_if_changed());
    EXPECT_FALSE(trust.reload_if_changed());
    EXPECT_EQ(
        log.count("error pec: trust files not re-read, keeping the ones in use: no CRL (PEM or DER) in"), 1u)
        << log.text();
    EXPECT_FALSE(check(sig, trust.current()).chain_ok);

    // Anchors are re-read too: the unrelated CA alone trusts nothing of this signer.
    pki.empty_crl();
    std::filesystem::copy_file(pki.path("other-ca.pem"), pki.path("ca.pem"),
                               std::filesystem::copy_options::overwrite_existing);
    EXPECT_TRUE(trust.reload_if_changed());
    EXPECT_FALSE(check(sig, trust.current()).chain_ok);
}

TEST_F(TrustFilesTest, ACrlPastItsNextUpdateIsReportedOnce) {
    pki.run("openssl ca -config ca.cnf -batch -gencrl -crlhours 1 -out crl.pem");
    auto now = std::chrono::system_clock::now();
    ManualClock clock(now);
    TrustFiles trust("pec", pki.path("ca.pem"), pki.path("crl.pem"), clock);
    auto crls = describe_crls(*trust.current());
    ASSERT_EQ(crls.size(), 1u);
    ASSERT_TRUE(crls[0].next_update);
    EXPECT_NEAR(std::chrono::duration<double>(*crls[0].next_update - now).count(), 3600, 5);

    LogCapture log;
    EXPECT_FALSE(trust.reload_if_changed());
    EXPECT_EQ(log.text().find("error"), std::string::npos) << log.text();
    clock.set(now + std::chrono::minutes(61));
    trust.reload_if_changed();
    trust.reload_if_changed();
    EXPECT_EQ(log.count("error pec: a CRL in " + pki.path("crl.pem").string() + " is out of date since 20"),
              1u)
        << log.text();
    trust.log_status();
    EXPECT_NE(log.text().find("error pec: CRL of CN=Test PEC Root CA,O=Test Root is out of date since"),
              std::string::npos)
        << log.text();

    // A fresh CRL ends it; its own lapse is reported again.
    pki.run("openssl ca -config ca.cnf -batch -gencrl -crlhours 2 -out crl.pem");
    EXPECT_TRUE(trust.reload_if_changed());
    clock.set(now + std::chrono::minutes(125));
    trust.reload_if_changed();
    EXPECT_EQ(log.count("is out of date since"), 3u) << log.text();
}

TEST(TrustFiles, NamesTheFileThatCannotBeUsed) {
    TestPki pki;
    write_all(pki.path("crl.pem"), "no CRL here");
    try {
        TrustFiles trust("pec", pki.path("ca.pem"), pki.path("crl.pem"));
        FAIL() << "took a CRL file without a CRL";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("crl.pem"), std::string::npos) << e.what();
    }
    TrustFiles without("index", pki.path("ca.pem"), {});
    EXPECT_FALSE(without.current()->check_crl);
    EXPECT_FALSE(without.reload_if_changed());
}

}  // namespace
}  // namespace pecd::crypto
