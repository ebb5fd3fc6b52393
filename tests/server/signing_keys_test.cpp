// signing_keys_test.cpp - the provider's signing identity renewed on disk: taken for the
// next message when valid, refused when its key is not the certificate's or its
// certificate has expired, taken at its start when deployed ahead of it.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "server/signing_key.hpp"
#include "tls_test_support.hpp"

namespace pecd::server {
namespace {

using namespace tls;
using namespace tls::test;

class SigningKeysTest : public ::testing::Test {
protected:
    TempDir dir_;
    Issued ca_ = make_ca("Test PEC CA");
    config::Pec pec_ = [this] {
        config::Pec p;
        p.signing_certificate = dir_ / "signing.pem";
        p.signing_key = dir_ / "signing.key";
        return p;
    }();
    Issued identity(const std::string& cn, TimePoint now = std::chrono::system_clock::now(),
                    std::chrono::days validity = std::chrono::days(365)) {
        return make_leaf(cn, {}, ca_, Usage::email_signing, now, validity, KeyType::rsa2048);
    }
    void install(const Issued& id) { write_pair(pec_.signing_certificate, pec_.signing_key, id); }
    static std::string signer_of(const SigningKeys& keys) {
        return describe(keys.current()->certificate.get()).common_name;
    }
};

TEST_F(SigningKeysTest, ARenewalOnDiskSignsTheNextMessage) {
    install(identity("Posta Certificata A 2026"));
    SigningKeys keys(pec_);
    auto in_use = keys.current();
    EXPECT_FALSE(keys.reload_if_changed()) << "nothing changed";

    install(identity("Posta Certificata A 2027"));
    EXPECT_TRUE(keys.reload_if_changed());
    EXPECT_EQ(signer_of(keys), "Posta Certificata A 2027");
    EXPECT_EQ(describe(in_use->certificate.get()).common_name, "Posta Certificata A 2026")
        << "a snapshot in use changed under its message";
}

TEST_F(SigningKeysTest, BrokenOrExpiredRenewalsAreRefusedOnce) {
    install(identity("current"));
    SigningKeys keys(pec_);
    auto stray = identity("stray");
    fs::write_file_durable(pec_.signing_certificate, to_pem(stray.cert.get()));  // its key is not there
    EXPECT_FALSE(keys.reload_if_changed());
    EXPECT_FALSE(keys.reload_if_changed()) << "the same files were read again";
    EXPECT_EQ(signer_of(keys), "current");
    install(
        identity("lapsed", std::chrono::system_clock::now() - std::chrono::days(30), std::chrono::days(2)));
    EXPECT_FALSE(keys.reload_if_changed());
    EXPECT_EQ(signer_of(keys), "current");
}

TEST_F(SigningKeysTest, ARenewalAheadOfItsStartIsTakenAtItsStart) {
    install(identity("current"));
    SigningKeys keys(pec_);
    const auto starts = std::chrono::system_clock::now() + std::chrono::seconds(2);
    install(identity("next", starts + std::chrono::hours(1)));  // make_leaf backdates by an hour
    EXPECT_FALSE(keys.reload_if_changed());
    EXPECT_FALSE(keys.reload_if_changed()) << "tried again before its start";
    EXPECT_EQ(signer_of(keys), "current");
    std::this_thread::sleep_until(starts + std::chrono::seconds(1));
    EXPECT_TRUE(keys.reload_if_changed());
    EXPECT_EQ(signer_of(keys), "next");
}

}  // namespace
}  // namespace pecd::server
