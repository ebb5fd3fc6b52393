// canonical_json_reference.hpp - the legal log's canonical record as nlohmann::json writes it
//
// Every record stored before canonical_record() wrote the form directly was written this
// way, and verification compares bytes: record_test.cpp checks that the two agree, and
// bench/log measures both.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "log/event.hpp"

namespace pecd::log::test {

inline std::string canonical_record_via_json(const Event& e, std::int64_t seq) {
    using nlohmann::json;
    json recipients = json::array();
    for (const auto& r : e.recipients)
        recipients.push_back({{"address", r.address}, {"type", r.certified ? "certified" : "external"}});
    json details = json::object();
    for (const auto& [k, v] : e.details) details[k] = v;
    json record = {
        {"v", 1},
        {"seq", seq},
        {"kind", std::string(to_string(e.kind))},
        {"time", format_utc(e.time)},
        {"utc_offset", format_offset(e.utc_offset_minutes)},
        {"pec_msgid", e.pec_msgid},
        {"client_msgid", e.client_msgid},
        {"sender", e.sender},
        {"recipients", recipients},
        {"subject", e.subject},
        {"generated_ids", e.generated_ids},
        {"peer_provider", e.peer_provider},
        {"peer_host", e.peer_host},
        {"tls", {{"protocol", e.tls.protocol}, {"cipher", e.tls.cipher}, {"peer", e.tls.peer}}},
        {"outcome", e.outcome},
        {"actor", e.actor},
        {"details", details},
    };
    return record.dump(-1, ' ', true, json::error_handler_t::replace);
}

}  // namespace pecd::log::test
