// support.hpp - helpers of the PEC building tests: temp dirs, the openssl binary as the
// verifying peer, a test CA, and an independent (GMime) view of built messages.
//
// Verification deliberately does not use pecd's own reader: the first part of the
// multipart/signed is cut out verbatim by boundary search, the p7s is decoded by the
// openssl binary, and `openssl cms -verify -binary` decides.
#pragma once

#include <gmime/gmime.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace pectest {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

inline void write_file(const fs::path& p, std::string_view data) {
    std::ofstream f(p, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/pecd-pecbuild-XXXXXX";
        char* p = mkdtemp(tmpl);
        if (!p) throw std::runtime_error("mkdtemp failed");
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

struct RunResult {
    int status = -1;
    std::string output;  // stdout + stderr
};

// Runs a shell command (bounded by `timeout`), capturing its output.
inline RunResult run(const std::string& cmd, int timeout_seconds = 60) {
    RunResult r;
    std::string full = "timeout " + std::to_string(timeout_seconds) + " sh -c '" + cmd + "' 2>&1";
    FILE* p = popen(full.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// A CA and a provider signing certificate (RSA-2048), made with the openssl binary.
struct TestPki {
    fs::path dir, ca_cert, ca_key, cert, key;

    // Extensions of the CA and of an S/MIME signing leaf.
    static std::string extensions(const std::string& email) {
        return "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
               "subjectKeyIdentifier=hash\n"
               "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
               "extendedKeyUsage=emailProtection\nsubjectAltName=email:" +
               email + "\nauthorityKeyIdentifier=keyid\n";
    }

    void make_ca(const fs::path& d) {
        dir = d;
        ca_cert = d / "ca.pem";
        ca_key = d / "ca.key";
        write_file(d / "ext.cnf", extensions("posta-certificata@pec.test.it"));
        write_file(d / "ca.cnf", "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=pecd test CA\n" +
                                     extensions("posta-certificata@pec.test.it"));
        auto r =
            run("openssl req -x509 -newkey rsa:2048 -nodes -config " + (d / "ca.cnf").string() +
                " -extensions ca -keyout " + ca_key.string() + " -out " + ca_cert.string() + " -days 30");
        ASSERT_TRUE(fs::exists(ca_cert)) << r.output;
    }

    // Issues the leaf for an existing public key (PEM), e.g. one held by a token.
    void issue_for_pubkey(const fs::path& pubkey_pem, const fs::path& out_cert) {
        auto r =
            run("openssl x509 -new -force_pubkey " + pubkey_pem.string() +
                " -subj \"/O=pecd test/CN=Posta Certificata pecd test\" -CA " + ca_cert.string() +
                " -CAkey " + ca_key.string() + " -days 30 -set_serial 0x" + std::to_string(100 + getpid()) +
                " -extfile " + (dir / "ext.cnf").string() + " -extensions leaf -out " + out_cert.string());
        ASSERT_EQ(r.status, 0) << r.output;
    }

    void make_leaf() {
        cert = dir / "signer.pem";
        key = dir / "signer.key";
        auto r =
            run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + key.string() +
                " && openssl pkey -in " + key.string() + " -pubout -out " + (dir / "signer.pub").string());
        ASSERT_EQ(r.status, 0) << r.output;
        issue_for_pubkey(dir / "signer.pub", cert);
    }
};

// The first part of the top-level multipart/signed, verbatim, and the decoded p7s.
struct SignedParts {
    std::string content;
    std::string p7s_base64;
};

inline std::string header_block(const std::string& msg) {
    auto end = msg.find("\r\n\r\n");
    return end == std::string::npos ? msg : msg.substr(0, end + 2);
}

inline SignedParts cut_signed_parts(const std::string& msg) {
    SignedParts sp;
    auto head = header_block(msg);
    auto b = head.find("boundary=\"");
    if (b == std::string::npos) return sp;
    b += 10;
    std::string boundary = head.substr(b, head.find('"', b) - b);
    std::string delim = "\r\n--" + boundary;
    auto first = msg.find("\r\n--" + boundary + "\r\n", head.size() - 2);
    if (first == std::string::npos) return sp;
    auto start = first + delim.size() + 2;
    auto second = msg.find(delim + "\r\n", start);
    if (second == std::string::npos) return sp;
    sp.content = msg.substr(start, second - start);
    auto sig_head_end = msg.find("\r\n\r\n", second + delim.size());
    auto close = msg.find(delim + "--", sig_head_end);
    if (sig_head_end == std::string::npos || close == std::string::npos) return sp;
    sp.p7s_base64 = msg.substr(sig_head_end + 4, close - sig_head_end - 4);
    return sp;
}

// `openssl cms -verify -binary` of a built message against the CA. Returns the status
// and openssl's output.
inline RunResult openssl_verify(const std::string& msg, const fs::path& ca_file, const fs::path& work) {
    auto parts = cut_signed_parts(msg);
    if (parts.content.empty()) return {-2, "no multipart/signed parts found"};
    write_file(work / "content.bin", parts.content);
    write_file(work / "sig.b64", parts.p7s_base64);
    auto dec =
        run("openssl base64 -d -in " + (work / "sig.b64").string() + " -out " + (work / "sig.der").string());
    if (dec.status != 0) return dec;
    return run("openssl cms -verify -binary -inform DER -in " + (work / "sig.der").string() + " -content " +
               (work / "content.bin").string() + " -CAfile " + ca_file.string() + " -out /dev/null");
}

// An independent view of a message through GMime: top-level headers and the leaf parts.
struct PartInfo {
    std::string content_type;  // "type/subtype"
    std::string filename;
    std::string decoded;  // transfer-decoded content (message/rfc822: the message bytes)
    std::string charset;
    int depth = 0;
};

struct MessageView {
    std::map<std::string, std::vector<std::string>> headers;  // lower-case name -> raw values
    std::string top_type;
    std::vector<std::string> structure;  // "depth:type/subtype[:filename]" in order
    std::vector<PartInfo> parts;

    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() || it->second.empty() ? std::string() : it->second.front();
    }
    bool has(const std::string& lower_name) const { return headers.count(lower_name) > 0; }
    const PartInfo* part(const std::string& filename) const {
        for (const auto& p : parts)
            if (p.filename == filename) return &p;
        return nullptr;
    }
};

inline std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

inline std::string stream_bytes(GMimeStream* s) {
    GByteArray* a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
    return std::string(reinterpret_cast<const char*>(a->data), a->len);
}

inline void walk(GMimeObject* o, int depth, MessageView& v) {
    GMimeContentType* ct = g_mime_object_get_content_type(o);
    std::string type = lower(std::string(g_mime_content_type_get_media_type(ct)) + "/" +
                             g_mime_content_type_get_media_subtype(ct));
    std::string entry = std::to_string(depth) + ":" + type;
    PartInfo info;
    info.content_type = type;
    info.depth = depth;
    if (const char* cs = g_mime_content_type_get_parameter(ct, "charset")) info.charset = lower(cs);
    if (GMIME_IS_MULTIPART(o)) {
        v.structure.push_back(entry);
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
        for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(GMIME_MULTIPART(o), i), depth + 1, v);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(o)) {
        const char* fn = g_mime_content_type_get_parameter(ct, "name");
        GMimeContentDisposition* d = g_mime_object_get_content_disposition(o);
        if (d && g_mime_content_disposition_get_parameter(d, "filename"))
            fn = g_mime_content_disposition_get_parameter(d, "filename");
        info.filename = fn ? fn : "";
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        if (inner) {
            GMimeStream* s = g_mime_stream_mem_new();
            g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, s);
            info.decoded = stream_bytes(s);
            g_object_unref(s);
        }
    } else if (GMIME_IS_PART(o)) {
        const char* fn = g_mime_part_get_filename(GMIME_PART(o));
        info.filename = fn ? fn : "";
        GMimeDataWrapper* w = g_mime_part_get_content(GMIME_PART(o));
        if (w) {
            GMimeStream* s = g_mime_stream_mem_new();
            g_mime_data_wrapper_write_to_stream(w, s);
            info.decoded = stream_bytes(s);
            g_object_unref(s);
        }
    }
    if (!info.filename.empty()) entry += ":" + info.filename;
    v.structure.push_back(entry);
    v.parts.push_back(std::move(info));
}

inline MessageView view_message(const std::string& bytes) {
    g_mime_init();
    MessageView v;
    GMimeStream* stream = g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size());
    GMimeParser* parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage* msg = g_mime_parser_construct_message(parser, nullptr);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!msg) return v;
    GMimeHeaderList* hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    int n = g_mime_header_list_get_count(hl);
    for (int i = 0; i < n; ++i) {
        GMimeHeader* h = g_mime_header_list_get_header_at(hl, i);
        const char* raw = g_mime_header_get_raw_value(h);
        std::string value = raw ? raw : "";
        // unfold and trim
        std::string un;
        for (char c : value)
            if (c != '\r' && c != '\n') un += c;
        auto b = un.find_first_not_of(" \t");
        auto e = un.find_last_not_of(" \t");
        un = b == std::string::npos ? "" : un.substr(b, e - b + 1);
        v.headers[lower(g_mime_header_get_name(h))].push_back(un);
    }
    GMimeObject* body = g_mime_message_get_mime_part(msg);
    if (body) {
        GMimeContentType* ct = g_mime_object_get_content_type(body);
        v.top_type = lower(std::string(g_mime_content_type_get_media_type(ct)) + "/" +
                           g_mime_content_type_get_media_subtype(ct));
        walk(body, 0, v);
    }
    g_object_unref(msg);
    return v;
}

}  // namespace pectest
