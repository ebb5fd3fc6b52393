// tls_matrix_test.cpp - outbound TLS policies through the real delivery loop: every policy
// (none, may, encrypt, verify, secure) against every kind of peer
//
// Peers, each an MX host on its own 127.0.0.x address and the shared MX port: smtp-sink
// (no STARTTLS), and a Postfix instance with one smtpd per certificate: self-signed,
// wrong name, missing intermediate, valid chain (this one asks for a client certificate).
// unbound serves "<policy>.<peer>.test MX 10 mx.<policy>.<peer>.test". One message per
// domain goes through queue runner -> MX lookup -> SMTP client; each must be delivered or
// stay deferred exactly as the policy says. Also: `secure` refuses a valid host that a
// (forged) MX record points to, PEC domains are raised to `verify`, and the configured
// client certificate is presented.
#include <gtest/gtest.h>

#include <future>
#include <map>

#include "delivery/mail_system.hpp"
#include "peers.hpp"
#include "temp_dir.hpp"
#include "tls_test_support.hpp"
#include "unbound_server.hpp"

namespace pecd {
namespace {

using namespace std::chrono_literals;
namespace tt = pecd::tls::test;

const std::vector<std::string> kPolicies = {"none", "may", "encrypt", "verify", "secure"};
// peer -> its MX address
const std::map<std::string, std::string> kPeers = {{"plain", "127.0.0.20"},
                                                   {"selfsigned", "127.0.0.21"},
                                                   {"wrongname", "127.0.0.22"},
                                                   {"nointermediate", "127.0.0.23"},
                                                   {"valid", "127.0.0.24"}};

std::string zones() {
    std::string z = "  local-zone: \"test.\" static\n";
    for (const auto& [peer, address] : kPeers)
        for (const auto& p : kPolicies) {
            auto d = p + "." + peer + ".test";
            z += "  local-data: \"" + d + ". IN MX 10 mx." + d + ".\"\n";
            z += "  local-data: \"mx." + d + ". IN A " + address + "\"\n";
        }
    // A forged MX record pointing at a host with a valid certificate for another name.
    z += "  local-data: \"forged.test. IN MX 10 mx.verify.valid.test.\"\n";
    z += "  local-data: \"pec.wrongname.test. IN MX 10 mx.may.wrongname.test.\"\n";
    return z;
}

std::vector<std::string> names_for(const std::string& peer) {
    std::vector<std::string> out;
    for (const auto& p : kPolicies) out.push_back("mx." + p + "." + peer + ".test");
    return out;
}

// Deliver (true) or defer (false), per peer, in the order of kPolicies.
const std::map<std::string, std::vector<bool>> kExpected = {
    {"plain", {true, true, false, false, false}},    {"selfsigned", {true, true, true, false, false}},
    {"wrongname", {true, true, true, false, false}}, {"nointermediate", {true, true, true, false, false}},
    {"valid", {true, true, true, true, true}},
};

class OnePecDomain final : public index::ProviderLookup {
public:
    index::ProviderPtr by_domain(std::string_view d) const override {
        if (d != "pec.wrongname.test") return nullptr;
        auto p = std::make_shared<index::Provider>();
        p->name = "Test PEC provider";
        p->domains = {"pec.wrongname.test"};
        return p;
    }
    index::ProviderPtr by_certificate(X509*) const override { return nullptr; }
};

// One fixed Postfix configuration directory per test case (each must be listed in
// /etc/postfix/main.cf), so the cases may run in parallel.
std::filesystem::path postfix_dir() {
    return "/tmp/pecd-delivery-tls-" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
}

class TlsMatrixTest : public ::testing::Test {
protected:
    TlsMatrixTest() : clock(SystemClock::instance().now()) {
        std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
    }

    void SetUp() override {
        pf_dir = postfix_dir();
        port = test::free_port();
        dns = std::make_unique<test::UnboundServer>(zones());
        ASSERT_TRUE(dns->ready("mx.none.valid.test")) << dns->log();
        make_pki();
        plain = test::start_smtp_sink(port, dir.path() / "plain", {}, kPeers.at("plain"));
        start_postfix();
        ASSERT_TRUE(postfix_error.empty()) << postfix_error;
    }
    void TearDown() override {
        if (postfix_started) test::run("postfix -c " + pf_dir.string() + " stop");
    }

    void make_pki() {
        auto root = tt::make_ca("Matrix Root");
        auto inter = tt::make_ca("Matrix Intermediate", root.cert.get(), root.key.get());
        fs::write_file_durable(dir.path() / "root.pem", tls::to_pem(root.cert.get()));
        tls::CertificateSpec ss;
        ss.common_name = "mx.none.selfsigned.test";
        ss.dns_names = names_for("selfsigned");
        tt::Issued self;
        self.key = tls::generate_key(tls::KeyType::ec_p256);
        self.cert = tls::issue_certificate(ss, self.key.get(), nullptr, self.key.get(),
                                           std::chrono::system_clock::now());
        write("selfsigned", self, {});
        write("wrongname", tt::make_leaf("mail.elsewhere.test", {"mail.elsewhere.test"}, inter),
              {inter.cert.get()});
        write("nointermediate",
              tt::make_leaf("mx.none.nointermediate.test", names_for("nointermediate"), inter), {});
        write("valid", tt::make_leaf("mx.none.valid.test", names_for("valid"), inter), {inter.cert.get()});
        auto client = tt::make_leaf("mx.pecd.test", {"mx.pecd.test"}, inter, tls::Usage::client);
        tt::write_pair(dir.path() / "client.pem", dir.path() / "client.key", client, {inter.cert.get()});
        // Postfix checks client certificates against root + intermediate.
        fs::write_file_durable(dir.path() / "client-ca.pem",
                               tls::to_pem(root.cert.get()) + tls::to_pem(inter.cert.get()));
    }
    void write(const std::string& name, const tt::Issued& leaf, std::vector<X509*> chain) {
        tt::write_pair(dir.path() / (name + ".pem"), dir.path() / (name + ".key"), leaf, std::move(chain));
    }

    void start_postfix() {
        const auto d = pf_dir;
        test::run("postfix -c " + d.string() + " stop");
        std::filesystem::remove_all(d);
        std::filesystem::create_directories(d / "queue");
        std::filesystem::create_directories(d / "data");
        test::give_to_postfix(d / "data");
        std::ofstream(d / "main.cf") << "compatibility_level = 3.6\n"
                                     << "queue_directory = " << (d / "queue").string() << "\n"
                                     << "data_directory = " << (d / "data").string() << "\n"
                                     << "mail_owner = postfix\nmyhostname = mx.matrix.test\n"
                                     << "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
                                     << "mydestination =\nmynetworks = 127.0.0.0/8\n"
                                     << "default_transport = discard\nrelay_transport = discard\n"
                                     << "maillog_file_prefixes = /tmp\n"
                                     << "maillog_file = " << (d / "log").string() << "\n"
                                     << "smtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n";
        std::ofstream master(d / "master.cf");
        for (const auto& peer : {"selfsigned", "wrongname", "nointermediate", "valid"}) {
            master << kPeers.at(peer) << ":" << port << " inet n - n - - smtpd -o smtpd_tls_cert_file="
                   << (dir.path() / (std::string(peer) + ".pem")).string()
                   << " -o smtpd_tls_key_file=" << (dir.path() / (std::string(peer) + ".key")).string();
            if (std::string(peer) == "valid")
                master << " -o smtpd_tls_ask_ccert=yes -o smtpd_tls_CAfile="
                       << (dir.path() / "client-ca.pem").string();
            master << "\n";
        }
        master << "cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n"
               << "tlsmgr unix - - n 1000? 1 tlsmgr\nrewrite unix - - n - - trivial-rewrite\n"
               << "bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n"
               << "verify unix - - n - 1 verify\nproxymap unix - - n - - proxymap\n"
               << "smtp unix - - n - - smtp\nerror unix - - n - - error\nretry unix - - n - - error\n"
               << "discard unix - - n - - discard\nanvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\n"
               << "postlog unix-dgram n - n - 1 postlogd\n";
        master.close();
        test::allow_postfix_config_dir(d);
        int status = -1;
        auto out = test::run("postfix -c " + d.string() + " start", &status);
        if (status != 0) {
            postfix_error = "postfix start failed: " + out;
            return;
        }
        postfix_started = true;
        for (const auto& peer : {"selfsigned", "wrongname", "nointermediate", "valid"})
            if (!test::wait_for_port(port, 15s, kPeers.at(peer)))
                postfix_error = std::string("postfix not listening for ") + peer + "\n" + postfix_log();
    }
    std::string postfix_log() const {
        return std::filesystem::exists(pf_dir / "log") ? fs::read_file(pf_dir / "log") : "";
    }

    void open(bool client_certificate) {
        delivery::MailSystemOptions o;
        o.data_dir = dir.path() / "data";
        o.hostname = "mx.pecd.test";
        o.spool.min_free_bytes = 1 << 20;
        o.dns = dns->settings();
        o.mx_port = port;
        o.remote.connect_timeout = 5s;
        o.remote.reply_timeout = 10s;
        tls::ClientTlsSettings t;
        t.ca_file = dir.path() / "root.pem";
        if (client_certificate)
            t.client_certificate = tls::CertificatePair{dir.path() / "client.pem", dir.path() / "client.key"};
        o.remote.tls = std::make_shared<tls::ClientTls>(t);
        tls::PolicyMap map(tls::DestinationPolicy{tls::Policy::may, {}});
        for (const auto& [peer, address] : kPeers)
            for (const auto& p : kPolicies) map.set(p + "." + peer + ".test", {tls::parse_policy(p), {}});
        map.set("forged.test", {tls::Policy::secure, {}});
        o.remote.policies = map;
        o.remote.providers = &providers;
        ms = std::make_unique<delivery::MailSystem>(o, clock);
        ms->store().add_domain("local.test");
        ms->store().add_mailbox({"sender@local.test"});
    }

    std::string submit(const std::string& rcpt) {
        Envelope e;
        e.mail_from = "sender@local.test";
        e.recipients.push_back({rcpt, "", ""});
        e.received_at = clock.now();
        auto m = ms->sink().begin(e);
        m->write("Subject: tls to " + rcpt + "\r\n\r\nx\r\n");
        std::promise<queue::CommitResult> p;
        auto f = p.get_future();
        m->commit([&](queue::CommitResult r) { p.set_value(r); });
        auto r = f.get();
        EXPECT_TRUE(r.ok) << r.error;
        return r.queue_id;
    }
    void run_queue() {
        for (int i = 0; i < 10 && ms->runner().run_once() > 0; ++i) {
        }
    }
    // Delivered (gone from the queue) or still pending; the pending reason in `why`.
    bool delivered(const std::string& id, std::string* why = nullptr) {
        auto q = ms->spool().load(id);
        if (!q) return true;
        if (why) *why = q->recipients[0].last_error;
        return false;
    }

    test::TempDir dir{"pecd-tls-matrix"};
    std::filesystem::path pf_dir;
    ManualClock clock;
    unsigned short port = 0;
    std::unique_ptr<test::UnboundServer> dns;
    test::Process plain;
    bool postfix_started = false;
    std::string postfix_error;
    OnePecDomain providers;
    std::unique_ptr<delivery::MailSystem> ms;
};

TEST_F(TlsMatrixTest, EveryPolicyAgainstEveryPeer) {
    open(true);
    std::map<std::string, std::string> ids;
    for (const auto& [peer, address] : kPeers)
        for (const auto& p : kPolicies) ids[p + "." + peer] = submit("rcpt@" + p + "." + peer + ".test");
    run_queue();
    for (const auto& [peer, expected] : kExpected)
        for (std::size_t i = 0; i < kPolicies.size(); ++i) {
            std::string why;
            auto key = kPolicies[i] + "." + peer;
            bool got = delivered(ids[key], &why);
            EXPECT_EQ(got, expected[i]) << "policy " << kPolicies[i] << " against peer " << peer
                                        << (got ? ": delivered but must defer" : ": deferred: " + why);
            if (!got) {
                EXPECT_NE(why.find("TLS"), std::string::npos) << key << ": " << why;
                EXPECT_EQ(ms->spool().load(ids[key])->recipients[0].state, queue::RecipientState::pending)
                    << key << ": a TLS refusal must defer, never bounce";
            }
        }
    EXPECT_TRUE(ms->store().messages("sender@local.test").empty()) << "no bounce for a TLS deferral";
    // Nothing was sent in plain text to the peer without STARTTLS under a TLS policy.
    EXPECT_EQ(test::dumped_messages(dir.path() / "plain").size(), 2u);
    auto log = postfix_log();
    // The valid peer asked for a client certificate: pecd presented one that Postfix trusts.
    EXPECT_NE(log.find("Trusted TLS connection established from"), std::string::npos) << log;
}

TEST_F(TlsMatrixTest, SecureRefusesAForgedMxAndPecDomainsAreAtLeastVerify) {
    open(false);
    // forged.test (policy secure) points to mx.verify.valid.test: its certificate is valid,
    // but not for forged.test.
    auto forged = submit("x@forged.test");
    // pec.wrongname.test is named a PEC domain: `may` (the default) is raised to `verify`.
    auto pec = submit("x@pec.wrongname.test");
    auto control = submit("x@may.wrongname.test");  // same host, not PEC: delivered under `may`
    run_queue();
    std::string why;
    EXPECT_FALSE(delivered(forged, &why));
    EXPECT_NE(why.find("TLS"), std::string::npos) << why;
    EXPECT_FALSE(delivered(pec, &why)) << "a PEC domain must be at least verify";
    EXPECT_NE(why.find("TLS"), std::string::npos) << why;
    EXPECT_TRUE(delivered(control));
    auto log = postfix_log();
    EXPECT_EQ(log.find("Trusted TLS connection established from"), std::string::npos)
        << "a client certificate was presented although none is configured\n"
        << log;
    EXPECT_NE(log.find("Anonymous TLS connection established from"), std::string::npos) << log;
}

}  // namespace
}  // namespace pecd
