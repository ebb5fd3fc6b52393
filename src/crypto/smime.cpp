// smime.cpp - locating and verifying the multipart/signed structure of a raw message
//
// The signed bytes are cut out of the raw message by hand (boundary scanning per RFC 2046
// 5.1.1) instead of being taken from a GMime object tree: GMime re-serialises parts it
// parsed (header folding, line ends, the blank line before a boundary), and a single
// changed byte breaks the signature. Content-Type parameters are parsed by GMime.
#include "crypto/smime.hpp"

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <optional>

#include "core/strings.hpp"

namespace pecd::crypto {
namespace {

void ensure_gmime() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

struct ContentType {
    std::string type;  // "type/subtype", lower case
    std::string boundary;
    std::string protocol;
    std::string micalg;
};

// Parses a Content-Type value with GMime (quoting, comments, RFC 2231 parameters).
ContentType parse_content_type(const std::string& value) {
    ContentType ct;
    if (trim(value).empty()) {
        ct.type = "text/plain";  // RFC 2045 5.2 default
        return ct;
    }
    ensure_gmime();
    GMimeContentType* g = g_mime_content_type_parse(g_mime_parser_options_get_default(), value.c_str());
    if (!g) {
        ct.type = "application/octet-stream";
        return ct;
    }
    std::unique_ptr<GMimeContentType, void (*)(GMimeContentType*)> guard(
        g, [](GMimeContentType* p) { g_object_unref(p); });
    const char* type = g_mime_content_type_get_media_type(g);
    const char* sub = g_mime_content_type_get_media_subtype(g);
    ct.type = to_lower(std::string(type ? type : "") + "/" + (sub ? sub : ""));
    auto param = [&](const char* name) {
        const char* v = g_mime_content_type_get_parameter(g, name);
        return std::string(v ? v : "");
    };
    ct.boundary = param("boundary");
    ct.protocol = to_lower(trim(param("protocol")));
    ct.micalg = to_lower(trim(param("micalg")));
    return ct;
}

bool is_pkcs7_signature(std::string_view type) {
    return type == "application/pkcs7-signature" || type == "application/x-pkcs7-signature";
}

// A boundary delimiter line found in a multipart body.
struct Delimiter {
    std::size_t break_before;  // where the line break that belongs to the delimiter starts
    std::size_t next_line;     // first byte after the delimiter line (npos: none follows)
    bool close;                // "--boundary--"
};

bool is_transport_padding(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// RFC 2046 5.1.1: a delimiter is "--" boundary at the start of a line, optionally "--"
// (close delimiter), then only linear white space up to the line end. The CRLF before it
// is part of the delimiter, not of the preceding body part. A line that merely starts
// with the delimiter ("--boundaryX") is body content.
std::optional<Delimiter> find_delimiter(std::string_view body, std::string_view delim, std::size_t from) {
    while (from <= body.size()) {
        auto p = body.find(delim, from);
        if (p == std::string_view::npos) return std::nullopt;
        from = p + 1;
        if (p != 0 && body[p - 1] != '\n') continue;
        auto after = p + delim.size();
        auto eol = body.find('\n', after);
        auto tail = body.substr(after, eol == std::string_view::npos ? std::string_view::npos : eol - after);
        bool close = tail.substr(0, 2) == "--";
        if (close) tail.remove_prefix(2);
        if (!is_transport_padding(tail)) continue;
        Delimiter d;
        d.break_before = p;
        if (p > 0) d.break_before = (p >= 2 && body[p - 2] == '\r') ? p - 2 : p - 1;
        d.next_line = eol == std::string_view::npos ? std::string_view::npos : eol + 1;
        d.close = close;
        return d;
    }
    return std::nullopt;
}

std::size_t line_of(std::string_view text, std::size_t offset) {
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
}

// Base64 decoding with OpenSSL's strict decoder: an invalid character is an error, not
// silently skipped (GMime's decoder skips), so a corrupt p7s is reported as such.
std::optional<std::string> decode_base64(std::string_view in, std::string& error) {
    std::unique_ptr<EVP_ENCODE_CTX, void (*)(EVP_ENCODE_CTX*)> ctx(EVP_ENCODE_CTX_new(), EVP_ENCODE_CTX_free);
    EVP_DecodeInit(ctx.get());
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    constexpr std::size_t chunk = 64 * 1024;
    unsigned char buf[chunk / 4 * 3 + 80];
    for (std::size_t off = 0; off < in.size(); off += chunk) {
        auto piece = in.substr(off, chunk);
        int n = 0;
        if (EVP_DecodeUpdate(ctx.get(), buf, &n, reinterpret_cast<const unsigned char*>(piece.data()),
                             static_cast<int>(piece.size())) < 0) {
            auto bad = std::find_if(in.begin(), in.end(), [](char c) {
                return !(isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=' ||
                         c == ' ' || c == '\t' || c == '\r' || c == '\n');
            });
            if (bad != in.end())
                error = "invalid base64 character '" + std::string(1, *bad) + "' on line " +
                        std::to_string(line_of(in, static_cast<std::size_t>(bad - in.begin()))) +
                        " of its body";
            else
                error = "invalid base64 (misplaced padding)";
            return std::nullopt;
        }
        out.append(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    }
    int n = 0;
    if (EVP_DecodeFinal(ctx.get(), buf, &n) < 0) {
        error = "base64 ends in the middle of a quantum (truncated)";
        return std::nullopt;
    }
    out.append(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    return out;
}

std::string normalize_digest_name(std::string_view name) {
    std::string s = to_lower(name);
    s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
    return s;
}

SmimeParts fail(SmimeParts p, SmimeStatus status, std::string finding) {
    p.status = status;
    p.finding = std::move(finding);
    return p;
}

}  // namespace

std::string_view to_string(SmimeStatus s) noexcept {
    switch (s) {
        case SmimeStatus::ok:
            return "ok";
        case SmimeStatus::not_multipart_signed:
            return "not-multipart-signed";
        case SmimeStatus::malformed_multipart:
            return "malformed-multipart";
        case SmimeStatus::missing_signature_part:
            return "missing-signature-part";
        case SmimeStatus::unsupported_protocol:
            return "unsupported-protocol";
        case SmimeStatus::unparsable_signature:
            return "unparsable-signature";
    }
    return "unknown";
}

RawEntity split_entity(std::string_view raw) noexcept {
    std::size_t pos = 0;
    while (pos < raw.size()) {
        auto eol = raw.find('\n', pos);
        auto line = raw.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        if (line == "" || line == "\r") {
            return {raw.substr(0, pos),
                    eol == std::string_view::npos ? std::string_view{} : raw.substr(eol + 1)};
        }
        if (eol == std::string_view::npos) break;
        pos = eol + 1;
    }
    return {raw, {}};
}

std::vector<RawHeader> parse_raw_headers(std::string_view block) {
    std::vector<RawHeader> out;
    bool last_valid = false;
    for (auto line : split(block, '\n')) {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        if (line.front() == ' ' || line.front() == '\t') {
            if (last_valid) out.back().value.append(line);
            continue;
        }
        auto colon = line.find(':');
        last_valid = colon != std::string_view::npos && colon > 0;
        if (!last_valid) continue;
        out.push_back({trim(line.substr(0, colon)), std::string(line.substr(colon + 1))});
    }
    for (auto& h : out) h.value = std::string(trim(h.value));
    return out;
}

std::string raw_header(std::string_view block, std::string_view name) {
    for (auto& h : parse_raw_headers(block))
        if (iequals(h.name, name)) return h.value;
    return {};
}

std::string_view canonicalize_crlf(std::string_view data, std::string& storage) {
    std::size_t bare = 0;
    for (std::size_t i = data.find('\n'); i != std::string_view::npos; i = data.find('\n', i + 1))
        if (i == 0 || data[i - 1] != '\r') ++bare;
    if (bare == 0) return data;
    storage.clear();
    storage.reserve(data.size() + bare);
    std::size_t start = 0;
    for (std::size_t i = data.find('\n'); i != std::string_view::npos; i = data.find('\n', i + 1)) {
        if (i != 0 && data[i - 1] == '\r') continue;
        storage.append(data.substr(start, i - start));
        storage.append("\r\n");
        start = i + 1;
    }
    storage.append(data.substr(start));
    return storage;
}

SmimeParts smime_locate(std::string_view raw) {
    SmimeParts p;
    auto top = split_entity(raw);
    auto ct = parse_content_type(raw_header(top.headers, "Content-Type"));
    p.content_type = ct.type;
    p.protocol = ct.protocol;
    p.micalg = ct.micalg;
    p.boundary = ct.boundary;
    if (ct.type != "multipart/signed")
        return fail(std::move(p), SmimeStatus::not_multipart_signed,
                    "the message is not S/MIME signed: top-level Content-Type is " + ct.type +
                        ", not multipart/signed");
    if (!ct.protocol.empty() && !is_pkcs7_signature(ct.protocol))
        return fail(std::move(p), SmimeStatus::unsupported_protocol,
                    "multipart/signed protocol is \"" + ct.protocol +
                        "\", not application/pkcs7-signature or application/x-pkcs7-signature");
    if (ct.protocol.empty()) p.warnings.push_back("multipart/signed has no protocol parameter");
    if (ct.boundary.empty())
        return fail(std::move(p), SmimeStatus::malformed_multipart,
                    "multipart/signed has no boundary parameter");
    if (ct.boundary.size() > 70) p.warnings.push_back("boundary longer than 70 characters (RFC 2046)");

    const std::string delim = "--" + ct.boundary;
    auto body = top.body;
    auto first = find_delimiter(body, delim, 0);
    if (!first || first->close || first->next_line == std::string_view::npos)
        return fail(std::move(p), SmimeStatus::malformed_multipart,
                    "multipart/signed body has no opening boundary line \"" + delim + "\"");
    auto second = find_delimiter(body, delim, first->next_line);
    if (!second) {
        p.signed_part = body.substr(first->next_line);
        p.body_parts = 1;
        return fail(std::move(p), SmimeStatus::missing_signature_part,
                    "multipart/signed has only the signed body part: no further boundary line, so "
                    "the signature part (smime.p7s) is missing");
    }
    p.signed_part = body.substr(first->next_line, second->break_before - first->next_line);
    p.body_parts = 1;
    if (second->close || second->next_line == std::string_view::npos)
        return fail(std::move(p), SmimeStatus::missing_signature_part,
                    "multipart/signed closes after its first body part: the signature part "
                    "(smime.p7s) is missing");
    auto third = find_delimiter(body, delim, second->next_line);
    p.body_parts = 2;
    if (!third) {
        p.signature_part = body.substr(second->next_line);
        p.warnings.push_back("multipart/signed has no close delimiter \"" + delim + "--\"");
    } else {
        p.signature_part = body.substr(second->next_line, third->break_before - second->next_line);
        for (auto d = third; d && !d->close && d->next_line != std::string_view::npos;
             d = find_delimiter(body, delim, d->next_line))
            ++p.body_parts;
        if (p.body_parts > 2)
            p.warnings.push_back("multipart/signed has " + std::to_string(p.body_parts) +
                                 " body parts; only the first two are used (RFC 1847 allows two)");
    }

    auto sig = split_entity(p.signature_part);
    auto sig_ct = parse_content_type(raw_header(sig.headers, "Content-Type"));
    p.signature_type = sig_ct.type;
    if (!is_pkcs7_signature(sig_ct.type))
        return fail(std::move(p), SmimeStatus::unsupported_protocol,
                    "the second body part of multipart/signed is " + sig_ct.type +
                        ", not application/pkcs7-signature");
    if (!ct.protocol.empty() && ct.protocol != sig_ct.type)
        p.warnings.push_back("protocol parameter " + ct.protocol + " differs from the signature part type " +
                             sig_ct.type);
    p.status = SmimeStatus::ok;
    return p;
}

SmimeVerification smime_verify(std::string_view raw, const TrustStore* trust) {
    SmimeVerification v;
    v.parts = smime_locate(raw);
    auto& p = v.parts;
    if (p.status != SmimeStatus::ok) return v;

    auto sig = split_entity(p.signature_part);
    auto cte = to_lower(trim(raw_header(sig.headers, "Content-Transfer-Encoding")));
    if (cte == "base64") {
        std::string error;
        auto der = decode_base64(sig.body, error);
        if (!der) {
            p.status = SmimeStatus::unparsable_signature;
            p.finding = "the signature part (smime.p7s) does not parse: " + error;
            return v;
        }
        p.signature_der = std::move(*der);
    } else if (cte.empty() || cte == "binary" || cte == "7bit" || cte == "8bit") {
        p.signature_der = std::string(sig.body);
    } else {
        p.status = SmimeStatus::unparsable_signature;
        p.finding = "the signature part (smime.p7s) has unsupported Content-Transfer-Encoding " + cte;
        return v;
    }
    if (p.signature_der.empty()) {
        p.status = SmimeStatus::unparsable_signature;
        p.finding = "the signature part (smime.p7s) is empty";
        return v;
    }

    std::string storage;
    auto canonical = canonicalize_crlf(p.signed_part, storage);
    v.cms = cms_verify_detached(p.signature_der, canonical, trust);
    if (!v.cms.parsed) {
        p.status = SmimeStatus::unparsable_signature;
        p.finding = "the signature part (smime.p7s) does not parse: " + v.cms.error;
        return v;
    }
    if (!p.micalg.empty() && !v.cms.digest_name.empty() &&
        normalize_digest_name(p.micalg) != normalize_digest_name(v.cms.digest_name))
        p.warnings.push_back("micalg=" + p.micalg + " but the signature digest is " + v.cms.digest_name);
    return v;
}

}  // namespace pecd::crypto
