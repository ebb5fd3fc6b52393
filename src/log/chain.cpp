// chain.cpp - record digests, chain links and segment manifests (see chain.hpp)
#include "log/chain.hpp"

#include <charconv>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "crypto/timestamp.hpp"
#include "log/event.hpp"

namespace pecd::log {
namespace {

constexpr std::string_view kManifestTitle = "pecd legal log segment";

std::int64_t parse_int(std::string_view v, std::size_t line, const std::string& field) {
    std::int64_t out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || p != v.data() + v.size() || out < 0)
        throw ParseError("not a number", line, field);
    return out;
}

void check_chain_text(std::string_view v, std::size_t line, const std::string& field) {
    bool hex = v.size() == 64;
    for (char c : v) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex) throw ParseError("not 64 lower-case hex digits", line, field);
}

}  // namespace

std::string record_digest(std::string_view record) {
    return to_hex(crypto::sha256(record));
}

std::string chain_link(std::string_view previous_chain, std::string_view digest) {
    std::string input;
    input.reserve(previous_chain.size() + 1 + digest.size());
    input.append(previous_chain).append("\n").append(digest);
    return to_hex(crypto::sha256(input));
}

std::string format_manifest(const SegmentManifest& m) {
    std::string out;
    auto line = [&](std::string_view key, const std::string& value) {
        out.append(key).append(": ").append(value).append("\r\n");
    };
    out.append(kManifestTitle).append("\r\n");
    line("version", "1");
    line("segment", std::to_string(m.segment));
    line("first-seq", std::to_string(m.first_seq));
    line("last-seq", std::to_string(m.last_seq));
    line("records", std::to_string(m.last_seq - m.first_seq + 1));
    line("previous-chain", m.previous_chain);
    line("head-chain", m.head_chain);
    line("opened", format_utc(m.opened));
    line("closed", format_utc(m.closed));
    return out;
}

SegmentManifest parse_manifest(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto end = text.find("\r\n");
        if (end == std::string_view::npos) throw ParseError("line does not end in CRLF", lines.size() + 1);
        lines.push_back(text.substr(0, end));
        text.remove_prefix(end + 2);
    }
    const char* keys[] = {"version",        "segment",    "first-seq", "last-seq", "records",
                          "previous-chain", "head-chain", "opened",    "closed"};
    if (lines.size() != 10 || lines[0] != kManifestTitle) throw ParseError("not a segment manifest", 1);
    std::vector<std::string_view> values;
    for (std::size_t i = 0; i < 9; ++i) {
        std::string prefix = std::string(keys[i]) + ": ";
        if (!lines[i + 1].starts_with(prefix)) throw ParseError("expected " + prefix, i + 2, keys[i]);
        values.push_back(lines[i + 1].substr(prefix.size()));
    }
    if (values[0] != "1") throw ParseError("unknown version", 2, "version");
    SegmentManifest m;
    m.segment = parse_int(values[1], 3, "segment");
    m.first_seq = parse_int(values[2], 4, "first-seq");
    m.last_seq = parse_int(values[3], 5, "last-seq");
    if (m.last_seq < m.first_seq || parse_int(values[4], 6, "records") != m.last_seq - m.first_seq + 1)
        throw ParseError("record count does not match the range", 6, "records");
    check_chain_text(values[5], 7, "previous-chain");
    check_chain_text(values[6], 8, "head-chain");
    m.previous_chain = values[5];
    m.head_chain = values[6];
    try {
        m.opened = parse_utc(values[7]);
        m.closed = parse_utc(values[8]);
    } catch (const ParseError& e) {
        throw ParseError(e.what(), m.opened == TimePoint{} ? 9 : 10,
                         m.opened == TimePoint{} ? "opened" : "closed");
    }
    return m;
}

}  // namespace pecd::log
