// brief_receipt.cpp - replacing named parts by their hashes (see brief_receipt.hpp)
//
// Hash input. RFC 6109 says the hash is computed "on the entire content of the part" and
// "SHOULD be calculated on base64 encoded parts"; pec.md 3.8 records that providers'
// practice is unconfirmed. pecd hashes the part body exactly as it travels (still
// transfer-encoded, i.e. the base64 text for a base64 part) in CRLF canonical form,
// headers excluded: that follows the RFC's SHOULD literally, and it is a byte string the
// sender can recompute from the message it sent without re-encoding anything (decoded
// content could not be tied back to the sent bytes when encoders differ). SHA-1, 40 hex
// digits, because the format is fixed by the RFC ("40-character hex string").
#include "pec/brief_receipt.hpp"

#include <openssl/evp.h>

#include <vector>

#include "core/strings.hpp"
#include "mime/mime.hpp"

namespace pecd::pec {
namespace {

constexpr int max_depth = 32;

std::string part_name(const mime::SplitMessage& s, const mime::ContentType& ct) {
    if (!ct.name.empty()) return ct.name;
    if (auto d = s.value("Content-Disposition")) return mime::disposition_filename(*d);
    return {};
}

void append_hash_part(std::string& out, const mime::SplitMessage& s, std::string_view body,
                      const std::string& name, bool top_level) {
    if (top_level) {
        // The message's own header fields stay; only its content description changes.
        for (const auto& f : s.fields) {
            if (istarts_with(f.name, "Content-")) continue;
            mime::append_crlf(out, f.raw);
            out += "\r\n";
        }
    }
    std::string hashed_name = name + ".hash";
    out += "Content-Type: text/plain; charset=US-ASCII" + mime::parameter("name", hashed_name) + "\r\n";
    out += "Content-Disposition: attachment" + mime::parameter("filename", hashed_name) + "\r\n";
    out += "Content-Transfer-Encoding: 7bit\r\n\r\n";
    out += brief_hash(body);
    if (top_level) out += "\r\n";
}

void brief_entity(std::string& out, std::string_view entity, int depth);

void brief_multipart(std::string& out, std::string_view body, const mime::ContentType& ct, int depth) {
    auto delimiters = mime::find_delimiters(body, ct.boundary);
    if (delimiters.empty()) {
        mime::append_crlf(out, body);
        return;
    }
    bool keep_rest = ct.is("multipart", "signed");  // only the signed part is rewritten
    // Preamble up to the first delimiter line (its preceding line end included).
    mime::append_crlf(out, body.substr(0, delimiters[0].start));
    for (std::size_t i = 0; i < delimiters.size(); ++i) {
        const auto& d = delimiters[i];
        mime::append_crlf(out, body.substr(d.start, d.content_end - d.start));
        if (d.close) {
            // Close delimiter: the epilogue follows unchanged.
            if (d.next > d.content_end) out += "\r\n";
            mime::append_crlf(out, body.substr(d.next));
            return;
        }
        out += "\r\n";
        std::size_t part_start = d.next;
        std::size_t part_end = body.size();
        std::size_t gap_end = body.size();
        if (i + 1 < delimiters.size()) {
            gap_end = delimiters[i + 1].start;
            // The line end before the next delimiter belongs to the delimiter.
            part_end = gap_end;
            if (part_end > part_start && body[part_end - 1] == '\n') --part_end;
            if (part_end > part_start && body[part_end - 1] == '\r') --part_end;
        }
        auto part = body.substr(part_start, part_end - part_start);
        if (keep_rest && i > 0)
            mime::append_crlf(out, part);
        else
            brief_entity(out, part, depth + 1);
        if (gap_end > part_end) out += "\r\n";
    }
}

void brief_entity(std::string& out, std::string_view entity, int depth) {
    if (depth > max_depth) {
        mime::append_crlf(out, entity);
        return;
    }
    auto s = mime::split_message(entity);
    auto ct = mime::content_type(s.value("Content-Type").value_or(""));
    auto name = part_name(s, ct);
    bool multipart = ct.type == "multipart" && !ct.boundary.empty();
    if (!name.empty() && !multipart) {
        append_hash_part(out, s, s.body, name, depth == 0);
        return;
    }
    mime::append_crlf(out, entity.substr(0, s.body_offset));
    if (multipart)
        brief_multipart(out, s.body, ct, depth);
    else if (ct.is("message", "rfc822"))
        brief_entity(out, s.body, depth + 1);
    else
        mime::append_crlf(out, s.body);
}

}  // namespace

std::string brief_hash(std::string_view part_body) {
    auto canonical = mime::to_crlf(part_body);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(canonical.data(), canonical.size(), md, &len, EVP_sha1(), nullptr);
    return to_hex(std::string_view(reinterpret_cast<char*>(md), len));
}

bool is_pkcs7_mime(std::string_view original) {
    auto s = mime::split_message(original);
    auto ct = mime::content_type(s.value("Content-Type").value_or(""));
    return ct.is("application", "pkcs7-mime") || ct.is("application", "x-pkcs7-mime");
}

std::string brief_original(std::string_view original) {
    std::string out;
    out.reserve(original.size() / 4 + 4096);
    if (is_pkcs7_mime(original)) {
        mime::append_crlf(out, original);
        return out;
    }
    brief_entity(out, original, 0);
    return out;
}

}  // namespace pecd::pec
