// output.hpp - what pecctl prints: JSON and terminal text that stay printable whatever
// bytes the stored data holds
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace pecd::cli {

// pecctl's JSON output. Stored data that came from outside (a sender's address, a remote
// server's reply, a header) may hold bytes that are not UTF-8: they are printed as U+FFFD
// instead of failing the whole listing (nlohmann's default is to throw).
inline std::string json_text(const nlohmann::json& j, int indent = 2) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// What pecctl prints as text on a terminal. Stored data that came from outside may hold
// bytes a terminal acts on: C0 and C1 control characters (ESC, CSI start sequences) become
// '?', and bytes that are not UTF-8 become U+FFFD, so a listing shows what is there
// without letting a sender drive the operator's terminal.
inline std::string terminal_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += (c < 0x20 && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c);
            ++i;
            continue;
        }
        const std::size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                                : c >= 0xe0 && c <= 0xef ? 3
                                : c >= 0xf0 && c <= 0xf4 ? 4
                                                         : 0;
        char32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        bool valid = len != 0 && i + len <= s.size();
        for (std::size_t k = 1; valid && k < len; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            valid = (b & 0xc0) == 0x80;
            cp = (cp << 6) | (b & 0x3f);
        }
        valid = valid && !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
                !(len == 4 && (cp < 0x10000 || cp > 0x10ffff));
        if (!valid) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            if (cp < 0xa0)
                out += '?';  // C1 controls, U+0080 to U+009F
            else
                out.append(s.substr(i, len));
            i += len;
        }
    }
    return out;
}

}  // namespace pecd::cli
