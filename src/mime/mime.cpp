// mime.cpp - MIME helpers over GMime 3 (see mime.hpp)
//
// Header splitting is done here on raw bytes rather than through GMime's parser so the
// fields stay views into the caller's buffer (a multi-megabyte message is not copied
// into a GMime object just to read its Subject); everything that interprets a field's
// contents (RFC 2047, RFC 2231, address syntax, encodings) is GMime's.
#include "mime/mime.hpp"

#include <gmime/gmime.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "core/strings.hpp"

namespace pecd::mime {
namespace {

void ensure_init() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

struct GFreeStr {
    void operator()(char* p) const noexcept { g_free(p); }
};
using GCharPtr = std::unique_ptr<char, GFreeStr>;

template <class T>
struct GUnref {
    void operator()(T* p) const noexcept {
        if (p) g_object_unref(p);
    }
};

std::string take(char* p) {
    GCharPtr h(p);
    return p ? std::string(p) : std::string();
}

bool is_field_name_char(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u < 127 && c != ':';
}

bool is_ascii_text(std::string_view s) noexcept {
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 127 || (u < 32 && c != '\t')) return false;
    }
    return true;
}

}  // namespace

std::string HeaderField::value() const {
    auto colon = raw.find(':');
    std::string_view v = colon == std::string_view::npos ? std::string_view() : raw.substr(colon + 1);
    std::string out;
    out.reserve(v.size());
    for (char c : v)
        if (c != '\r' && c != '\n') out += c;
    return std::string(trim(out));
}

const HeaderField* SplitMessage::find(std::string_view name) const noexcept {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return &f;
    return nullptr;
}

std::optional<std::string> SplitMessage::value(std::string_view name) const {
    if (const auto* f = find(name)) return f->value();
    return std::nullopt;
}

SplitMessage split_message(std::string_view m) {
    SplitMessage s;
    std::size_t pos = 0;
    std::size_t field_start = std::string_view::npos, field_end = 0, name_len = 0;
    auto close_field = [&] {
        if (field_start != std::string_view::npos)
            s.fields.push_back(
                {m.substr(field_start, name_len), m.substr(field_start, field_end - field_start)});
        field_start = std::string_view::npos;
    };
    while (pos < m.size()) {
        std::size_t nl = m.find('\n', pos);
        std::size_t line_end = nl == std::string_view::npos ? m.size() : nl;
        std::size_t content_end = line_end > pos && m[line_end - 1] == '\r' ? line_end - 1 : line_end;
        std::size_t next = nl == std::string_view::npos ? m.size() : nl + 1;
        if (content_end == pos) {  // empty line: end of the header
            close_field();
            s.header = m.substr(0, pos);
            s.body_offset = next;
            s.body = m.substr(next);
            return s;
        }
        char first = m[pos];
        if (first == ' ' || first == '\t') {
            if (field_start != std::string_view::npos) field_end = content_end;
        } else {
            close_field();
            std::size_t i = pos;
            while (i < content_end && is_field_name_char(m[i])) ++i;
            std::size_t colon = i;
            while (colon < content_end && (m[colon] == ' ' || m[colon] == '\t')) ++colon;  // "Name : value"
            if (i > pos && colon < content_end && m[colon] == ':') {
                field_start = pos;
                name_len = i - pos;
                field_end = content_end;
            }
        }
        pos = next;
    }
    close_field();
    s.header = m;
    s.body_offset = m.size();
    return s;
}

std::string decode_text(std::string_view raw) {
    ensure_init();
    std::string in(raw);
    return take(g_mime_utils_header_decode_text(nullptr, in.c_str()));
}

std::string encode_text(std::string_view utf8) {
    if (is_ascii_text(utf8) && utf8.find("=?") == std::string_view::npos) return std::string(utf8);
    ensure_init();
    std::string in(utf8);
    return take(g_mime_utils_header_encode_text(nullptr, in.c_str(), nullptr));
}

std::string encode_phrase(std::string_view utf8) {
    if (is_ascii_text(utf8) && utf8.find("=?") == std::string_view::npos) {
        std::string q = "\"";
        for (char c : utf8) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        return q + '"';
    }
    ensure_init();
    std::string in(utf8);
    return take(g_mime_utils_header_encode_phrase(nullptr, in.c_str(), nullptr));
}

std::vector<Mailbox> parse_addresses(std::string_view raw) {
    ensure_init();
    std::vector<Mailbox> out;
    std::string in(raw);
    std::unique_ptr<InternetAddressList, GUnref<InternetAddressList>> list(
        internet_address_list_parse(nullptr, in.c_str()));
    if (!list) return out;
    auto collect = [&](auto&& self, InternetAddressList* l) -> void {
        int n = internet_address_list_length(l);
        for (int i = 0; i < n; ++i) {
            InternetAddress* a = internet_address_list_get_address(l, i);
            if (INTERNET_ADDRESS_IS_GROUP(a)) {
                self(self, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)));
            } else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
                const char* name = internet_address_get_name(a);
                const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
                out.push_back({name ? name : "", addr ? addr : ""});
            }
        }
    };
    collect(collect, list.get());
    return out;
}

std::string header_line(std::string_view name, std::string_view value) {
    std::string out(name);
    out += ':';
    std::size_t line_len = out.size();
    bool first = true;
    for (auto word : split(value, ' ')) {
        if (word.empty() && !first) continue;
        if (!first && line_len + 1 + word.size() > 78) {
            out += "\r\n";
            line_len = 0;
        }
        out += ' ';
        out += word;
        line_len += 1 + word.size();
        first = false;
    }
    out += "\r\n";
    return out;
}

std::string base64(std::string_view data) {
    ensure_init();
    std::string enc(GMIME_BASE64_ENCODE_LEN(data.size()), '\0');
    int state = 0;
    guint32 save = 0;
    std::size_t n =
        g_mime_encoding_base64_encode_close(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                                            reinterpret_cast<unsigned char*>(enc.data()), &state, &save);
    enc.resize(n);
    return to_crlf(enc);
}

std::string quoted_printable(std::string_view data) {
    ensure_init();
    std::string lf;
    lf.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i)
        if (!(data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n')) lf += data[i];
    std::string enc(GMIME_QP_ENCODE_LEN(lf.size()) + 8, '\0');
    int state = -1;
    guint32 save = 0;
    std::size_t n =
        g_mime_encoding_quoted_encode_close(reinterpret_cast<const unsigned char*>(lf.data()), lf.size(),
                                            reinterpret_cast<unsigned char*>(enc.data()), &state, &save);
    enc.resize(n);
    return to_crlf(enc);
}

void append_crlf(std::string& out, std::string_view in) {
    // memchr-driven: std::string_view::find_first_of would call memchr once per byte.
    const char* p = in.data();
    std::size_t n = in.size(), pos = 0;
    while (pos < n) {
        const void* nl = std::memchr(p + pos, '\n', n - pos);
        std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) : n;
        std::size_t seg_end = nl && end > pos && p[end - 1] == '\r' ? end - 1 : end;
        // Bare CRs inside the line become line ends too.
        std::size_t q = pos;
        while (const void* cr = q < seg_end ? std::memchr(p + q, '\r', seg_end - q) : nullptr) {
            std::size_t c = static_cast<std::size_t>(static_cast<const char*>(cr) - p);
            out.append(p + q, c - q);
            out += "\r\n";
            q = c + 1;
        }
        out.append(p + q, seg_end - q);
        if (!nl) break;
        out += "\r\n";
        pos = end + 1;
    }
}

std::string to_crlf(std::string_view in) {
    std::string out;
    out.reserve(in.size() + in.size() / 32);
    append_crlf(out, in);
    return out;
}

bool is_7bit(std::string_view data) noexcept {
    std::size_t line = 0;
    for (char c : data) {
        auto u = static_cast<unsigned char>(c);
        if (u == 0 || u > 127) return false;
        if (c == '\n')
            line = 0;
        else if (++line > 999)
            return false;  // 998 octets + the CR
    }
    return true;
}

std::string make_boundary(std::initializer_list<std::string_view> must_not_contain) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        unsigned char r[12];
        if (RAND_bytes(r, sizeof r) != 1) continue;
        std::string b = "----=_pecd_" + to_hex(std::string_view(reinterpret_cast<char*>(r), sizeof r));
        bool clash = false;
        for (auto t : must_not_contain) clash = clash || t.find(b) != std::string_view::npos;
        if (!clash) return b;
    }
    throw std::runtime_error("cannot generate a MIME boundary");
}

bool ContentType::is(std::string_view t, std::string_view s) const noexcept {
    return type == t && (s == "*" || subtype == s);
}

ContentType content_type(std::string_view field_value) {
    ensure_init();
    ContentType ct{"text", "plain", {}, {}};
    // Absent or empty: RFC 2045's default (GMime would parse "" as application/octet-stream).
    if (trim(field_value).empty()) return ct;
    std::string in(field_value);
    std::unique_ptr<GMimeContentType, GUnref<GMimeContentType>> c(
        g_mime_content_type_parse(nullptr, in.c_str()));
    if (!c) return ct;
    const char* t = g_mime_content_type_get_media_type(c.get());
    const char* s = g_mime_content_type_get_media_subtype(c.get());
    if (t && *t) ct.type = to_lower(t);
    if (s && *s) ct.subtype = to_lower(s);
    if (const char* b = g_mime_content_type_get_parameter(c.get(), "boundary")) ct.boundary = b;
    if (const char* n = g_mime_content_type_get_parameter(c.get(), "name")) ct.name = n;
    return ct;
}

std::string disposition_filename(std::string_view field_value) {
    ensure_init();
    std::string in(field_value);
    std::unique_ptr<GMimeContentDisposition, GUnref<GMimeContentDisposition>> d(
        g_mime_content_disposition_parse(nullptr, in.c_str()));
    if (!d) return {};
    const char* f = g_mime_content_disposition_get_parameter(d.get(), "filename");
    return f ? f : "";
}

std::vector<Delimiter> find_delimiters(std::string_view body, std::string_view boundary) {
    std::vector<Delimiter> out;
    if (boundary.empty()) return out;
    std::string dash = "--" + std::string(boundary);
    std::size_t pos = 0;
    while (pos < body.size()) {
        const void* nl = std::memchr(body.data() + pos, '\n', body.size() - pos);
        std::size_t end =
            nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - body.data()) : body.size();
        std::size_t content_end = end > pos && body[end - 1] == '\r' ? end - 1 : end;
        std::size_t next = nl ? end + 1 : body.size();
        auto line = body.substr(pos, content_end - pos);
        if (line.size() >= dash.size() && line.substr(0, dash.size()) == dash) {
            auto rest = line.substr(dash.size());
            bool close = rest.size() >= 2 && rest.substr(0, 2) == "--";
            if (close || trim(rest).empty()) {
                out.push_back({pos, content_end, next, close});
                if (close) break;
            }
        }
        pos = next;
    }
    return out;
}

std::vector<std::string_view> body_parts(std::string_view body, const std::vector<Delimiter>& delimiters) {
    std::vector<std::string_view> parts;
    for (std::size_t i = 0; i < delimiters.size() && !delimiters[i].close; ++i) {
        std::size_t start = delimiters[i].next;
        std::size_t end = body.size();
        if (i + 1 < delimiters.size()) {
            end = delimiters[i + 1].start;
            if (end > start && body[end - 1] == '\n') --end;
            if (end > start && body[end - 1] == '\r') --end;
        }
        parts.push_back(body.substr(start, end - start));
    }
    return parts;
}

std::string decode_transfer(std::string_view body, std::string_view encoding) {
    ensure_init();
    std::string name(trim(encoding));
    auto kind =
        name.empty() ? GMIME_CONTENT_ENCODING_DEFAULT : g_mime_content_encoding_from_string(name.c_str());
    if (kind != GMIME_CONTENT_ENCODING_BASE64 && kind != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
        kind != GMIME_CONTENT_ENCODING_UUENCODE)
        return std::string(body);
    if (kind == GMIME_CONTENT_ENCODING_UUENCODE) {
        // The decoder starts after the "begin MODE NAME" line, which GMime's filter skips.
        std::size_t begin = body.rfind("begin ", 0) == 0 ? 0 : body.find("\nbegin ");
        if (begin == std::string_view::npos) return {};
        auto eol = body.find('\n', begin + 1);
        body = eol == std::string_view::npos ? std::string_view{} : body.substr(eol + 1);
    }
    GMimeEncoding state;
    g_mime_encoding_init_decode(&state, kind);
    std::string out(g_mime_encoding_outlen(&state, body.size()) + 16, '\0');
    std::size_t n = g_mime_encoding_flush(&state, body.data(), body.size(), out.data());
    out.resize(n);
    return out;
}

std::string utf8_to_latin1(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size());
    for (std::size_t i = 0; i < utf8.size();) {
        auto c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size() &&
                   (static_cast<unsigned char>(utf8[i + 1]) & 0xC0) == 0x80) {
            out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3F));
            i += 2;
        } else {
            out += '?';
            ++i;
            while (i < utf8.size() && (static_cast<unsigned char>(utf8[i]) & 0xC0) == 0x80) ++i;
        }
    }
    return out;
}

}  // namespace pecd::mime

namespace pecd::mime {

// Hand-written: GMime encodes parameters only through GMimeParamList objects and folds
// them itself; a single parameter is two lines of code.
std::string parameter(std::string_view attribute, std::string_view value) {
    std::string out = "; ";
    out += attribute;
    if (is_ascii_text(value)) {
        out += "=\"";
        for (char c : value) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        return out + '"';
    }
    static constexpr char hex[] = "0123456789ABCDEF";
    out += "*=UTF-8''";
    for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '.' ||
                     c == '-' || c == '_';
        if (plain) {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

}  // namespace pecd::mime
