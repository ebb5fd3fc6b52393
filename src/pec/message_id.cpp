// message_id.cpp - PEC message identifier generator (see message_id.hpp)
#include "pec/message_id.hpp"

#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::pec {
namespace {

std::string sanitize(std::string_view s) {
    std::string out;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        out += ok ? c : '-';
    }
    return out.empty() ? std::string("0") : out;
}

std::string utc_stamp(TimePoint t) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    auto d = floor<days>(secs);
    year_month_day ymd(d);
    hh_mm_ss hms(secs - d);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d%02u%02u%02ld%02ld%02ld", int(ymd.year()), unsigned(ymd.month()),
                  unsigned(ymd.day()), long(hms.hours().count()), long(hms.minutes().count()),
                  long(hms.seconds().count()));
    return buf;
}

}  // namespace

MessageIdGenerator::MessageIdGenerator(std::string domain, std::string node_id)
    : domain_(to_lower(domain)), node_(sanitize(node_id)) {
    if (domain_.empty()) throw Error("message ids need a provider mail domain");
}

std::string MessageIdGenerator::next(TimePoint now) {
    unsigned char r[4];
    if (RAND_bytes(r, sizeof r) != 1) throw Error("message id: no random bytes available");
    auto n = counter_.fetch_add(1, std::memory_order_relaxed) + 1;
    return "pecd." + utc_stamp(now) + "." + node_ + "." + std::to_string(::getpid()) + "." +
           std::to_string(n) + "." + to_hex(std::string_view(reinterpret_cast<char*>(r), sizeof r)) + "@" +
           domain_;
}

}  // namespace pecd::pec
