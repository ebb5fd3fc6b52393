// test_pki.hpp - a throw-away PKI made with the real openssl binary, for CMS/S/MIME tests
//
// TestPki creates, in a fresh temporary directory: a root CA (EC P-256, fast to make), a PEC provider signing
// certificate (RSA-2048 like real providers') issued by it (emailProtection, e-mail
// posta-certificata@pec.test.example), a second unrelated CA, and an openssl `ca` database so tests can
// revoke the signer and issue a CRL. run() executes a shell command with a time limit and returns its status
// and output. The directory is removed when the object goes away.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pecd::test {

struct CommandResult {
    int status = -1;
    std::string output;
};

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs `sh -c command` under `timeout` (bounded), stdout+stderr captured.
inline CommandResult run_command(const std::string& command, int timeout_seconds = 120) {
    std::string full =
        "timeout " + std::to_string(timeout_seconds) + " sh -c " + shell_quote(command) + " 2>&1";
    CommandResult r;
    FILE* p = popen(full.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

inline std::string read_all(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

inline void write_all(const std::filesystem::path& p, std::string_view data) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class TestPki {
public:
    std::filesystem::path dir;

    TestPki() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "pecd-pki-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        make();
    }
    ~TestPki() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    TestPki(const TestPki&) = delete;
    TestPki& operator=(const TestPki&) = delete;

    std::filesystem::path path(const std::string& name) const { return dir / name; }
    std::string q(const std::string& name) const { return shell_quote(path(name).string()); }

    // Runs a command inside the PKI directory; fails the test when it fails.
    std::string run(const std::string& command) const {
        auto r = run_command("cd " + shell_quote(dir.string()) + " && " + command);
        if (r.status != 0)
            ADD_FAILURE() << "command failed (" << r.status << "): " << command << "\n" << r.output;
        return r.output;
    }

    // Revokes the signer and writes crl.pem (and crl.der).
    void revoke_signer() const {
        run("openssl ca -config ca.cnf -batch -revoke signer.pem -crl_reason keyCompromise");
        run("openssl ca -config ca.cnf -batch -gencrl -crldays 30 -out crl.pem");
        run("openssl crl -in crl.pem -outform DER -out crl.der");
    }
    // An empty CRL (nothing revoked) in crl.pem.
    void empty_crl() const { run("openssl ca -config ca.cnf -batch -gencrl -crldays 30 -out crl.pem"); }

private:
    void make() const {
        write_all(path("ca.cnf"),
                  "[ca]\ndefault_ca = test\n"
                  "[test]\ndir = .\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                  "crlnumber = crlnumber\ncertificate = ca.pem\nprivate_key = ca.key\n"
                  "default_md = sha256\ndefault_crl_days = 30\npolicy = any\n"
                  "[any]\ncommonName = supplied\n");
        write_all(path("index.txt"), "");
        write_all(path("crlnumber"), "01\n");
        write_all(path("signer.ext"),
                  "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature, nonRepudiation\n"
                  "extendedKeyUsage = emailProtection\nsubjectAltName = "
                  "email:posta-certificata@pec.test.example\n");
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out "
            "ca.pem -days 3650 -sha256 "
            "-subj '/O=Test Root/CN=Test PEC Root CA' -addext 'basicConstraints=critical,CA:TRUE' "
            "-addext 'keyUsage=critical,keyCertSign,cRLSign'");
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other-ca.key "
            "-out other-ca.pem -days 3650 "
            "-subj '/O=Elsewhere/CN=Unrelated CA' -addext 'basicConstraints=critical,CA:TRUE'");
        run("openssl req -newkey rsa:2048 -nodes -keyout signer.key -out signer.csr "
            "-subj '/C=IT/O=Test Provider S.p.A./CN=Posta Certificata Test Provider'");
        run("openssl x509 -req -in signer.csr -CA ca.pem -CAkey ca.key -set_serial 4096 -days 365 -sha256 "
            "-extfile signer.ext -out signer.pem");
        // The openssl ca database must know the signer to revoke it.
        run("printf '1001\\n' > serial && openssl x509 -in signer.pem -noout -enddate >/dev/null && "
            "printf 'V\\t%sZ\\t\\t1000\\tunknown\\t/C=IT/O=Test Provider S.p.A./CN=Posta Certificata Test "
            "Provider\\n' \"$(date -u -d \"$(openssl x509 -in signer.pem -noout -enddate | cut -d= -f2)\" "
            "+%y%m%d%H%M%S)\" > index.txt");
    }
};

}  // namespace pecd::test
