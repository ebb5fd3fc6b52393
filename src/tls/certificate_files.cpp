// certificate_files.cpp - pairs read and checked, validity lines (see the header)
#include "tls/certificate_files.hpp"

#include <spdlog/spdlog.h>

#include "core/calendar.hpp"

namespace pecd::tls {

CheckedPair read_pair(const CertificatePair& pair, TimePoint now) {
    CheckedPair p{load_chain_file(pair.certificate.string()), load_key_file(pair.key.string())};
    if (!key_matches(p.leaf(), p.key.get()))
        throw Error(pair.key.string() + ": private key does not match certificate " +
                    pair.certificate.string());
    if (days_until_expiry(p.leaf(), now) < 0)
        throw Error(pair.certificate.string() + ": certificate expired");
    if (auto from = not_valid_until(p.leaf(), now))
        throw NotYetValid(pair.certificate.string() + ": certificate not valid until " + rfc3339_utc(*from),
                          *from);
    return p;
}

void log_validity(const std::string& what, const std::string& path, X509* cert, const std::string& harm,
                  TimePoint now, std::chrono::days warning) {
    const int days = days_until_expiry(cert, now);
    if (auto from = not_valid_until(cert, now))
        spdlog::error("{} {} is not valid until {}: {} before then", what, path, rfc3339_utc(*from), harm);
    else if (days < 0)
        spdlog::error("{} {} EXPIRED {} days ago: {}", what, path, -days, harm);
    else if (days < warning.count())
        spdlog::warn("{} {} expires in {} days", what, path, days);
    else
        spdlog::info("{} {} valid for {} more days", what, path, days);
}

}  // namespace pecd::tls
