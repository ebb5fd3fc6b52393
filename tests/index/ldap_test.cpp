// ldap_test.cpp - the LDAP index source against a real slapd on 127.0.0.1 (random port),
// mdb backend, loaded with the shipped schema (share/ldap/pec.schema through slapd.conf,
// and share/ldap/pec.ldif through cn=config) and entries modelled on RFC 6109's example
// LDIF plus this provider's own published record. Lookups through LDAP must equal lookups
// through the same LDIF read from a file. slapd missing is a failure, not a skip.
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "core/error.hpp"
#include "index/index_service.hpp"
#include "index/ldap_source.hpp"
#include "index/provider_index.hpp"
#include "index/publish.hpp"
#include "index_test_support.hpp"

namespace pecd::index {
namespace {

using namespace test;

const char* kSlapd = "/usr/sbin/slapd";
const char* kSlapadd = "/usr/sbin/slapadd";
const std::string kSchemaDir = PECD_SOURCE_DIR "/share/ldap";

enum class ConfigStyle { slapd_conf, cn_config };

class LdapTest : public ::testing::TestWithParam<ConfigStyle> {
protected:
    TempDir dir;
    TestCa agid{dir.path, "AgID Test"};
    TestCert anon_old =
        agid.issue("anon-old", "Anonymous Certified Mail", "posta-certificata@postalser.example.com");
    TestCert anon_new =
        agid.issue("anon-new", "Anonymous Certified Mail", "posta-certificata@postalser.example.com");
    TestCert acme = agid.issue("acme", "Acme PEC", "posta-certificata@pec.acme.example");
    TestCert ours = agid.issue("ours", "pecd Test PEC", "posta-certificata@pec.pecd.example");
    std::unique_ptr<Process> slapd;
    int port = 0;
    std::string ldif;

    std::string directory_ldif() {
        // Our own record as `pecctl index publish` writes it (the library call behind it).
        PublishSpec spec;
        spec.provider_name = "pecd Test PEC";
        spec.mail_receipt = "ricevute@pec.pecd.example";
        spec.domains = {"pec.pecd.example", "Legal.Pecd.Example"};
        const unsigned char* p = reinterpret_cast<const unsigned char*>(ours.der.data());
        spec.certificates.emplace_back(d2i_X509(nullptr, &p, static_cast<long>(ours.der.size())), X509_free);
        spec.ldif_url = "https://pec.pecd.example/index/pecd.ldif.p7m";
        spec.units.push_back({"Disaster Recovery", "dr-ricevute@pec.pecd.example", {"dr.pec.pecd.example"}});
        std::string own = provider_ldif(spec);
        return root_ldif() +
               test::provider_ldif({"Anonymous Certified Mail S.p.A.",
                                    "",
                                    "ssacceptance@postalser.example.com",
                                    {"postalser.example.com", "pec.anonymous.example"},
                                    {&anon_old, &anon_new},
                                    "https://postalser.example.com/igpec.ldif.p7m"}) +
               test::provider_ldif({"Anonymous Certified Mail S.p.A.",
                                    "Backup",
                                    "backup@postalser.example.com",
                                    {"backup.postalser.example.com"},
                                    {&anon_new},
                                    ""}) +
               test::provider_ldif({"Acme PEC",
                                    "",
                                    "ricevute@pec.acme.example",
                                    {"pec.acme.example", "mail.acme.example"},
                                    {&acme},
                                    ""}) +
               own + "\n";
    }

    void write_slapd_conf() {
        write_file(dir / "slapd.conf", "include /etc/ldap/schema/core.schema\ninclude " + kSchemaDir +
                                           "/pec.schema\npidfile " + (dir / "slapd.pid").string() +
                                           "\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n"
                                           "sizelimit unlimited\ndatabase mdb\nsuffix \"o=postacert\"\n"
                                           "rootdn \"cn=admin,o=postacert\"\nrootpw secret\ndirectory " +
                                           (dir / "db").string() +
                                           "\nmaxsize 67108864\naccess to * by * read\n");
    }

    void write_cn_config() {
        write_file(
            dir / "config.ldif",
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: " + (dir / "slapd.pid").string() +
                "\nolcSizeLimit: unlimited\n\n"
                "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
                "olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n"
                "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
                "include: file:///etc/ldap/schema/core.ldif\n\n"
                "include: file://" +
                kSchemaDir + "/pec.ldif\n\n" +
                "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: "
                "olcMdbConfig\n"
                "olcDatabase: {1}mdb\nolcSuffix: o=postacert\nolcDbDirectory: " +
                (dir / "db").string() +
                "\nolcRootDN: cn=admin,o=postacert\nolcRootPW: secret\nolcDbMaxSize: 67108864\n"
                "olcAccess: to * by * read\n");
        fs::create_directories(dir / "slapd.d");
        must(std::string(kSlapadd) + " -n0 -F " + quote(dir / "slapd.d") + " -l " +
             quote(dir / "config.ldif"));
    }

    std::vector<std::string> config_args() {
        if (GetParam() == ConfigStyle::slapd_conf) return {"-f", (dir / "slapd.conf").string()};
        return {"-F", (dir / "slapd.d").string()};
    }

    void SetUp() override {
        ASSERT_TRUE(fs::exists(kSlapd)) << "slapd is required (Debian package slapd)";
        ASSERT_TRUE(fs::exists(kSlapadd)) << "slapadd is required (Debian package slapd)";
        fs::create_directories(dir / "db");
        if (GetParam() == ConfigStyle::slapd_conf)
            write_slapd_conf();
        else
            write_cn_config();
        ldif = directory_ldif();
        write_file(dir / "data.ldif", ldif);
        std::string add = std::string(kSlapadd) + " -b o=postacert -l " + quote(dir / "data.ldif");
        for (auto& a : config_args()) add += " " + quote(a);
        must(add);
        port = free_port();
        std::vector<std::string> argv{kSlapd, "-d", "0", "-h",
                                      "ldap://127.0.0.1:" + std::to_string(port) + "/"};
        for (auto& a : config_args()) argv.push_back(a);
        slapd = std::make_unique<Process>(argv, dir / "slapd.out");
        bool up = wait_until(
            [&] {
                if (!slapd->running()) return true;
                return run_command("ldapsearch -x -LLL -H ldap://127.0.0.1:" + std::to_string(port) +
                                   " -b o=postacert -s base dn")
                           .status == 0;
            },
            std::chrono::seconds(20));
        ASSERT_TRUE(up && slapd->running()) << "slapd did not start: " << read_file(dir / "slapd.out");
    }

    LdapQuery query() {
        LdapQuery q;
        q.uri = "ldap://127.0.0.1:" + std::to_string(port);
        q.timeout = std::chrono::seconds(10);
        return q;
    }

    static std::string describe(const ProviderPtr& p) {
        if (!p) return "(none)";
        std::string s = p->dn + "|" + p->name + "|" + p->unit + "|" + p->mail_receipt + "|" + p->ldif_url;
        for (auto& d : p->domains) s += "|" + d;
        for (auto& h : p->certificate_hashes) s += "|" + h;
        s += "|certs=" + std::to_string(p->certificates_der.size());
        return s;
    }
};

TEST_P(LdapTest, LookupsThroughLdapMatchLookupsThroughTheFile) {
    std::vector<Problem> file_problems, ldap_problems;
    auto from_file = index_from_ldif(ldif, &file_problems);
    auto from_ldap = build_index(ldap_fetch_entries(query()), &ldap_problems);
    for (auto& p : file_problems) ADD_FAILURE() << "file: " << p.describe();
    for (auto& p : ldap_problems) ADD_FAILURE() << "ldap: " << p.describe();
    EXPECT_EQ(from_ldap->counts().providers, 3u);
    EXPECT_EQ(from_ldap->counts().units, 2u);
    EXPECT_EQ(from_ldap->counts().domains, from_file->counts().domains);
    EXPECT_EQ(from_ldap->directory_url(), "https://igpec.rupa.example.com/igpec.ldif.p7m");
    for (auto d : {"postalser.example.com", "PEC.Anonymous.Example", "backup.postalser.example.com",
                   "pec.acme.example", "pec.pecd.example", "legal.pecd.example", "DR.pec.pecd.example",
                   "unknown.example"})
        EXPECT_EQ(describe(from_ldap->by_domain(d)), describe(from_file->by_domain(d))) << d;
    EXPECT_FALSE(from_ldap->by_domain("unknown.example"));
    EXPECT_EQ(from_ldap->by_domain("dr.pec.pecd.example")->unit, "Disaster Recovery");
    for (auto* c : {&anon_old, &anon_new, &acme, &ours}) {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(c->der.data());
        std::unique_ptr<X509, void (*)(X509*)> x(d2i_X509(nullptr, &p, static_cast<long>(c->der.size())),
                                                 X509_free);
        auto a = from_ldap->by_certificate(x.get());
        ASSERT_TRUE(a) << c->pem;
        EXPECT_EQ(describe(a), describe(from_file->by_certificate(x.get())));
        EXPECT_EQ(describe(from_ldap->by_hash(c->sha1)), describe(from_file->by_hash(c->sha1)));
    }
}

TEST_P(LdapTest, ServiceRefreshesFromTheDirectory) {
    IndexSettings s;
    s.source = SourceKind::ldap;
    s.ldap_uri = query().uri;
    s.timeout = std::chrono::seconds(10);
    IndexService svc(s);
    auto r = svc.refresh();
    ASSERT_EQ(r.kind, RefreshOutcome::Kind::replaced) << r.message;
    EXPECT_EQ(svc.lookup().by_domain("pec.acme.example")->name, "Acme PEC");
    // The directory changes: the domain moves to another provider.
    write_file(dir / "move.ldif",
               "dn: providerName=Acme PEC,o=postacert\nchangetype: modify\ndelete: managedDomains\n"
               "managedDomains: pec.acme.example\n-\n\n"
               "dn: providerName=pecd Test PEC,o=postacert\nchangetype: modify\nadd: managedDomains\n"
               "managedDomains: pec.acme.example\n-\n");
    must("ldapmodify -x -H " + query().uri + " -D cn=admin,o=postacert -w secret -f " +
         quote(dir / "move.ldif"));
    ASSERT_EQ(svc.refresh().kind, RefreshOutcome::Kind::replaced);
    EXPECT_EQ(svc.lookup().by_domain("pec.acme.example")->name, "pecd Test PEC");
    // The server goes away: the index stays.
    slapd->stop();
    auto down = svc.refresh();
    EXPECT_EQ(down.kind, RefreshOutcome::Kind::failed);
    EXPECT_NE(down.message.find("LDAP ldap://127.0.0.1:"), std::string::npos) << down.message;
    EXPECT_EQ(svc.lookup().by_domain("pec.acme.example")->name, "pecd Test PEC");
}

TEST_P(LdapTest, WrongBaseIsAnError) {
    auto q = query();
    q.base = "o=nowhere";
    try {
        ldap_fetch_entries(q);
        ADD_FAILURE() << "search under a missing base succeeded";
    } catch (const TemporaryError& e) {
        EXPECT_NE(std::string(e.what()).find("No such object"), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(Schema, LdapTest, ::testing::Values(ConfigStyle::slapd_conf, ConfigStyle::cn_config),
                         [](const auto& param_info) {
                             return param_info.param == ConfigStyle::slapd_conf ? std::string("SlapdConf")
                                                                                : std::string("CnConfig");
                         });

}  // namespace
}  // namespace pecd::index
