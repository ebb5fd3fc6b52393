// message_id.hpp - PEC message identifiers, unique across restarts and cluster nodes
//
// Form (pec.md 2.5: "<alphanumeric string>@<provider mail domain>"):
//   pecd.<yyyymmddHHMMSS UTC>.<node id>.<pid>.<counter>.<8 random hex>@<domain>
// Uniqueness does not rest on any single part: the node id separates nodes sharing a
// domain, pid + time separate restarts on one node, the per-generator counter separates
// ids of the same second, and 32 random bits cover a pid reused within the same second
// after a crash. Thread-safe. Returned ids have no angle brackets.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/clock.hpp"

namespace pecd::pec {

class MessageIdGenerator {
public:
    // node_id: a short name of this node (letters, digits, '-'; other characters are
    // replaced by '-'), e.g. the host name or a configured cluster node number.
    MessageIdGenerator(std::string domain, std::string node_id);

    std::string next(TimePoint now);
    const std::string& domain() const noexcept { return domain_; }

private:
    std::string domain_;
    std::string node_;
    std::atomic<std::uint64_t> counter_{0};
};

}  // namespace pecd::pec
