// timestamp_entries.cpp - the time-stamp reader's promises (see timestamp_entries.hpp)
#include "timestamp_entries.hpp"

#include <openssl/pem.h>

#include <exception>

#include "core/error.hpp"
#include "crypto/timestamp.hpp"

namespace pecd::fuzz {
namespace {

// The TSA certificate of fuzz/timestamp/corpus (self-signed, EC P-256, timeStamping EKU,
// valid 2026-12-05 to 2036-12-03).
constexpr std::string_view kTsaPem = R"pem(-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIQHRUjsfjIvWC7OFqrbKq6tjAKBggqhkjOPQQDAjAYMRYw
FAYDVQQDDA1wZWNkIGZ1enogVFNBMB4XDTI2MTIwNTIxMTA0MVoXDTM2MTIwMzIx
MTA0MVowGDEWMBQGA1UEAwwNcGVjZCBmdXp6IFRTQTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABAB64uwK5BmX75o5Ap+eCCi9ZjHC5ePDBkA9doGqyMUYD4nGOV6M
jTDlUEwGLR64rRUfjjUhob3HBM2S36c7ySejVzBVMAwGA1UdEwEB/wQCMAAwDgYD
VR0PAQH/BAQDAgbAMBYGA1UdJQEB/wQMMAoGCCsGAQUFBwMIMB0GA1UdDgQWBBRw
uWjoYKYCxr/uhR7Mcy1pI+07vDAKBggqhkjOPQQDAgNIADBFAiEA7El5bCKLvq/e
iiJWdSQtw2do6pmBuV96nmIJQzUJkioCIEwn1F5FqYmDMZDrcr4ZLe4cDDnbIudK
DQIfbZUHY+BH
-----END CERTIFICATE-----
)pem";

// The serial numbers of the seeds' tokens: granted.tsr (pecd's TSA) and openssl.tsr.
constexpr std::string_view kSeedSerials[] = {"49752901dcbff92d5d37ee7aa7e2f4bf", "0b"};

const std::vector<crypto::X509Ptr>& anchors() {
    static const std::vector<crypto::X509Ptr> a = [] {
        BIO* bio = BIO_new_mem_buf(kTsaPem.data(), static_cast<int>(kTsaPem.size()));
        X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        BIO_free(bio);
        return std::vector<crypto::X509Ptr>{crypto::X509Ptr(cert, crypto::X509Free{})};
    }();
    return a;
}

bool seed_serial(const std::string& hex) {
    for (auto s : kSeedSerials)
        if (hex == s) return true;
    return false;
}

}  // namespace

TimestampOutcome timestamp_entry(std::string_view reply) {
    TimestampOutcome out;
    static const std::string digest = crypto::sha256("pecd fuzz seal");
    crypto::TimestampResponse parsed;
    try {
        parsed = crypto::parse_timestamp_response(reply);
        out.parsed = true;
        crypto::timestamp_certificates(reply);
    } catch (const ParseError&) {
    } catch (const std::exception& e) {
        out.violation = std::string("escaped the reader: ") + e.what();
        return out;
    }
    try {
        if (crypto::verify_timestamp_response(reply, digest, {}).ok) {
            out.violation = "verified without a trust anchor";
            return out;
        }
        auto v = crypto::verify_timestamp_response(reply, digest, anchors());
        out.verified = v.ok;
    } catch (const std::exception& e) {
        out.violation = std::string("escaped the verifier: ") + e.what();
        return out;
    }
    if (!out.verified) return out;
    if (!out.parsed || !parsed.granted() || !parsed.gen_time)
        out.violation = "verified a reply that has no granted token with a time";
    else if (parsed.imprint != digest)
        out.violation = "verified a token for another digest";
    else if (!seed_serial(parsed.serial_hex))
        out.violation = "verified a token nobody signed (serial " + parsed.serial_hex + ")";
    return out;
}

}  // namespace pecd::fuzz
