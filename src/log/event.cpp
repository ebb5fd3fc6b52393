// event.cpp - canonical legal-log records (see event.hpp for the format)
//
// The canonical form is the one nlohmann::json's dump(-1, ' ', ensure_ascii = true,
// error_handler_t::replace) writes: keys sorted by byte value, no spaces, pure ASCII
// (a \u escape with four hex digits per UTF-16 unit, so a surrogate pair above U+FFFF),
// invalid UTF-8 replaced by U+FFFD. Every record of every log so far has that form, and
// verification compares bytes, so it can never change. canonical_record() writes it directly rather than
// through a json object: each PEC step appends a record on the group-commit thread, and building the object
// tree cost more than the rest of the append. Invalid UTF-8 in a field (a hostile subject) is replaced at
// write time: the stored bytes are what the chain covers, so the replacement is itself recorded, never
// recomputed.
#include "log/event.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/calendar.hpp"
#include "core/error.hpp"

namespace pecd::log {
namespace {

using nlohmann::json;
using namespace std::chrono;

constexpr std::array<std::pair<EventKind, std::string_view>, 15> kKindNames{{
    {EventKind::acceptance, "acceptance"},
    {EventKind::non_acceptance, "non-acceptance"},
    {EventKind::non_acceptance_virus, "non-acceptance-virus"},
    {EventKind::transport_envelope, "transport-envelope"},
    {EventKind::take_in_charge, "take-in-charge"},
    {EventKind::anomaly, "anomaly"},
    {EventKind::virus_detected, "virus-detected"},
    {EventKind::non_delivery_virus, "non-delivery-virus"},
    {EventKind::delivery, "delivery"},
    {EventKind::non_delivery, "non-delivery"},
    {EventKind::timeout_12h, "timeout-12h"},
    {EventKind::timeout_24h, "timeout-24h"},
    {EventKind::receipt_received, "receipt-received"},
    {EventKind::api_audit, "api-audit"},
    {EventKind::purge, "purge"},
}};

constexpr int kFormatVersion = 1;

const json& member(const json& obj, const char* key, json::value_t type) {
    auto it = obj.find(key);
    if (it == obj.end()) throw ParseError("missing", 0, key);
    if (it->type() != type) throw ParseError("wrong type", 0, key);
    return *it;
}

std::string text_member(const json& obj, const char* key) {
    return member(obj, key, json::value_t::string).get<std::string>();
}

int parse_offset(std::string_view s) {
    if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
        throw ParseError("bad offset", 0, "utc_offset");
    auto digit = [&](std::size_t i) {
        if (s[i] < '0' || s[i] > '9') throw ParseError("bad offset", 0, "utc_offset");
        return s[i] - '0';
    };
    int minutes = (digit(1) * 10 + digit(2)) * 60 + digit(4) * 10 + digit(5);
    return s[0] == '-' ? -minutes : minutes;
}

// Last Sunday of the month, at 01:00 UTC (EU summer-time switch).
sys_seconds eu_switch(int y, unsigned m) {
    year_month_weekday_last last_sunday{year{y} / month{m} / Sunday[last]};
    return sys_days{last_sunday} + hours{1};
}

}  // namespace

std::string_view to_string(EventKind kind) {
    for (const auto& [k, name] : kKindNames)
        if (k == kind) return name;
    return "unknown";
}

std::optional<EventKind> event_kind_from_string(std::string_view name) {
    for (const auto& [k, n] : kKindNames)
        if (n == name) return k;
    return std::nullopt;
}

std::string format_utc(TimePoint t) {
    auto us = time_point_cast<microseconds>(t);
    auto day = floor<days>(us);
    year_month_day ymd{day};
    hh_mm_ss<microseconds> tod{us - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", int(ymd.year()),
                  unsigned(ymd.month()), unsigned(ymd.day()), int(tod.hours().count()),
                  int(tod.minutes().count()), int(tod.seconds().count()), int(tod.subseconds().count()));
    return buf;
}

namespace {

sys_time<microseconds> parse_utc_calendar(std::string_view s) {
    // Exactly the form format_utc() writes.
    if (s.size() != 27 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[26] != 'Z')
        throw ParseError("not YYYY-MM-DDThh:mm:ss.ffffffZ", 0, "time");
    auto number = [&](std::size_t pos, std::size_t len) {
        long v = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (s[i] < '0' || s[i] > '9') throw ParseError("not YYYY-MM-DDThh:mm:ss.ffffffZ", 0, "time");
            v = v * 10 + (s[i] - '0');
        }
        return v;
    };
    year_month_day ymd{year{int(number(0, 4))}, month{unsigned(number(5, 2))}, day{unsigned(number(8, 2))}};
    if (!ymd.ok() || number(11, 2) > 23 || number(14, 2) > 59 || number(17, 2) > 60)
        throw ParseError("date out of range", 0, "time");
    return sys_days{ymd} + hours{number(11, 2)} + minutes{number(14, 2)} + seconds{number(17, 2)} +
           microseconds{number(20, 6)};
}

}  // namespace

TimePoint parse_utc(std::string_view s) {
    auto t = to_time_point(parse_utc_calendar(s));
    if (!t) throw ParseError("date out of range", 0, "time");
    return *t;
}

TimePoint parse_utc_bound(std::string_view s) {
    return clamp_to_time_point(parse_utc_calendar(s));
}

std::string format_offset(int m) {
    char buf[16];
    int a = m < 0 ? -m : m;
    std::snprintf(buf, sizeof buf, "%c%02d:%02d", m < 0 ? '-' : '+', (a / 60) % 100, a % 60);
    return buf;
}

int italy_utc_offset_minutes(TimePoint t) {
    auto s = floor<seconds>(t);
    int y = int(year_month_day{floor<days>(s)}.year());
    return (s >= eu_switch(y, 3) && s < eu_switch(y, 10)) ? 120 : 60;
}

namespace {

// Appends s as a JSON string literal in the canonical form (see the top of this file).
// An invalid byte sequence becomes one \ufffd: a lead byte that cannot start a sequence
// is dropped; a sequence cut short by an unexpected byte is dropped and that byte read
// again as the start of the next one; a sequence cut short by the end of s is dropped.
// These are nlohmann::json's replacement rules, which the stored records follow.
void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    auto escape_unit = [&](std::uint32_t u) {
        out += "\\u";
        for (int shift = 12; shift >= 0; shift -= 4) out += hex[(u >> shift) & 0xF];
    };
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        const auto lead = static_cast<unsigned char>(s[i]);
        if (lead < 0x80) {
            switch (lead) {
                case '\b':
                    out += "\\b";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\f':
                    out += "\\f";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                default:
                    if (lead <= 0x1F || lead == 0x7F)
                        escape_unit(lead);
                    else
                        out += static_cast<char>(lead);
            }
            ++i;
            continue;
        }
        // Well-formed sequences (Unicode 3.9, table 3-7): the lead byte fixes the length
        // and the range of the second byte; later bytes are 80..BF.
        std::size_t length = 0;
        unsigned char low = 0x80, high = 0xBF;
        std::uint32_t cp = 0;
        if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2, cp = lead & 0x1F;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3, cp = lead & 0x0F;
            if (lead == 0xE0) low = 0xA0;
            if (lead == 0xED) high = 0x9F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4, cp = lead & 0x07;
            if (lead == 0xF0) low = 0x90;
            if (lead == 0xF4) high = 0x8F;
        }
        if (length == 0) {  // not a lead byte: dropped
            escape_unit(0xFFFD);
            ++i;
            continue;
        }
        std::size_t n = 1;
        for (; n < length && i + n < s.size(); ++n) {
            const auto b = static_cast<unsigned char>(s[i + n]);
            const unsigned char lo = n == 1 ? low : 0x80, hi = n == 1 ? high : 0xBF;
            if (b < lo || b > hi) break;
            cp = (cp << 6) | (b & 0x3F);
        }
        if (n < length) {  // cut short: the bytes so far are dropped, the next is read again
            escape_unit(0xFFFD);
            i += n;
            continue;
        }
        if (cp <= 0xFFFF) {
            escape_unit(cp);
        } else {
            escape_unit(0xD7C0 + (cp >> 10));
            escape_unit(0xDC00 + (cp & 0x3FF));
        }
        i += length;
    }
    out += '"';
}

void append_key(std::string& out, std::string_view key) {
    append_json_string(out, key);
    out += ':';
}

void append_string_member(std::string& out, std::string_view key, std::string_view value) {
    append_key(out, key);
    append_json_string(out, value);
    out += ',';
}

}  // namespace

// Members in the byte order of their keys, as the canonical form sorts them.
std::string canonical_record(const Event& e, std::int64_t seq) {
    std::string out;
    out.reserve(512 + e.subject.size());
    out += '{';
    append_string_member(out, "actor", e.actor);
    append_string_member(out, "client_msgid", e.client_msgid);
    append_key(out, "details");
    out += '{';
    bool first = true;
    for (const auto& [k, v] : e.details) {  // a std::map: already in byte order
        if (!first) out += ',';
        first = false;
        append_key(out, k);
        append_json_string(out, v);
    }
    out += "},";
    append_key(out, "generated_ids");
    out += '[';
    for (std::size_t i = 0; i < e.generated_ids.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, e.generated_ids[i]);
    }
    out += "],";
    append_string_member(out, "kind", to_string(e.kind));
    append_string_member(out, "outcome", e.outcome);
    append_string_member(out, "pec_msgid", e.pec_msgid);
    append_string_member(out, "peer_host", e.peer_host);
    append_string_member(out, "peer_provider", e.peer_provider);
    append_key(out, "recipients");
    out += '[';
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        if (i) out += ',';
        out += '{';
        append_string_member(out, "address", e.recipients[i].address);
        append_key(out, "type");
        append_json_string(out, e.recipients[i].certified ? "certified" : "external");
        out += '}';
    }
    out += "],";
    append_string_member(out, "sender", e.sender);
    append_key(out, "seq");
    out += std::to_string(seq);
    out += ',';
    append_string_member(out, "subject", e.subject);
    append_string_member(out, "time", format_utc(e.time));
    append_key(out, "tls");
    out += '{';
    append_string_member(out, "cipher", e.tls.cipher);
    append_string_member(out, "peer", e.tls.peer);
    append_key(out, "protocol");
    append_json_string(out, e.tls.protocol);
    out += "},";
    append_string_member(out, "utc_offset", format_offset(e.utc_offset_minutes));
    append_key(out, "v");
    out += std::to_string(kFormatVersion);
    out += '}';
    return out;
}

ParsedRecord parse_record(std::string_view text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        throw ParseError(std::string("not JSON: ") + e.what(), 0, "record");
    }
    if (!j.is_object()) throw ParseError("not a JSON object", 0, "record");
    if (member(j, "v", json::value_t::number_unsigned).get<int>() != kFormatVersion)
        throw ParseError("unknown record format version", 0, "v");
    ParsedRecord out;
    const json& seq = j.at("seq");
    if (!seq.is_number_integer()) throw ParseError("wrong type", 0, "seq");
    out.seq = seq.get<std::int64_t>();
    Event& e = out.event;
    auto kind = event_kind_from_string(text_member(j, "kind"));
    if (!kind) throw ParseError("unknown event kind", 0, "kind");
    e.kind = *kind;
    e.time = parse_utc(text_member(j, "time"));
    e.utc_offset_minutes = parse_offset(text_member(j, "utc_offset"));
    e.pec_msgid = text_member(j, "pec_msgid");
    e.client_msgid = text_member(j, "client_msgid");
    e.sender = text_member(j, "sender");
    for (const auto& r : member(j, "recipients", json::value_t::array)) {
        if (!r.is_object()) throw ParseError("not an object", 0, "recipients");
        std::string type = text_member(r, "type");
        if (type != "certified" && type != "external") throw ParseError("unknown type", 0, "recipients.type");
        e.recipients.push_back({text_member(r, "address"), type == "certified"});
    }
    e.subject = text_member(j, "subject");
    for (const auto& id : member(j, "generated_ids", json::value_t::array)) {
        if (!id.is_string()) throw ParseError("not a string", 0, "generated_ids");
        e.generated_ids.push_back(id.get<std::string>());
    }
    e.peer_provider = text_member(j, "peer_provider");
    e.peer_host = text_member(j, "peer_host");
    const json& tls = member(j, "tls", json::value_t::object);
    e.tls = {text_member(tls, "protocol"), text_member(tls, "cipher"), text_member(tls, "peer")};
    e.outcome = text_member(j, "outcome");
    e.actor = text_member(j, "actor");
    for (const auto& [k, v] : member(j, "details", json::value_t::object).items()) {
        if (!v.is_string()) throw ParseError("not a string", 0, "details." + k);
        e.details[k] = v.get<std::string>();
    }
    if (j.size() != 17) throw ParseError("unexpected member", 0, "record");
    return out;
}

}  // namespace pecd::log
