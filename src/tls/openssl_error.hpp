// openssl_error.hpp - OpenSSL's error queue as text
//
// openssl_error(what) drains the calling thread's OpenSSL error queue and returns
// "what: reason; reason..." so an exception names the operation and OpenSSL's reasons.
// The queue is left empty, so a later failure never reports a stale reason.
#pragma once

#include <openssl/err.h>

#include <string>

namespace pecd::tls {

inline std::string openssl_error(const std::string& what) {
    std::string out = what;
    bool first = true;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        const char* reason = ERR_reason_error_string(e);
        out += first ? ": " : "; ";
        out += reason ? reason : buf;
        first = false;
    }
    if (first) out += ": failed";
    return out;
}

}  // namespace pecd::tls
