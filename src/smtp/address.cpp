#include "smtp/address.hpp"

#include "core/strings.hpp"

namespace pecd::smtp {
namespace {

constexpr std::size_t kMaxPath = 256;   // RFC 5321 4.5.3.1.3 (path incl. brackets)
constexpr std::size_t kMaxLocal = 64;   // 4.5.3.1.1
constexpr std::size_t kMaxDomain = 255; // 4.5.3.1.2

bool atext(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool valid_local(std::string_view l) {
    if (l.empty() || l.size() > kMaxLocal) return false;
    if (l.front() == '"') {
        if (l.size() < 2 || l.back() != '"') return false;
        for (std::size_t i = 1; i + 1 < l.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(l[i]);
            if (c < 32 || c == 127) return false;
            if (c == '\\') ++i;
        }
        return true;
    }
    if (l.front() == '.' || l.back() == '.') return false;
    for (std::size_t i = 0; i < l.size(); ++i) {
        if (l[i] == '.') {
            if (l[i + 1] == '.') return false;
        } else if (!atext(l[i])) {
            return false;
        }
    }
    return true;
}

bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > kMaxDomain) return false;
    if (d.front() == '[') return d.back() == ']' && d.size() > 2 &&
                                 d.find_first_of(" \t\r\n", 0) == std::string_view::npos;
    for (auto label : split(d, '.')) {
        if (label.empty() || label.size() > 63) return false;
        if (label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
            if (!ok) return false;
        }
    }
    return true;
}

}  // namespace

bool valid_mailbox(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return false;
    return valid_local(address.substr(0, at)) && valid_domain(address.substr(at + 1));
}

std::optional<ParsedPath> parse_path(std::string_view text, bool allow_null, std::string* error) {
    auto fail = [&](const char* why) -> std::optional<ParsedPath> {
        if (error) *error = why;
        return std::nullopt;
    };
    // Some clients put a space after the colon; RFC 5321 does not, but it is harmless.
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (text.empty() || text.front() != '<') return fail("path must be enclosed in <>");
    auto close = text.find('>');
    if (close == std::string_view::npos) return fail("missing > in path");
    if (close + 1 > kMaxPath) return fail("path too long");
    std::string_view path = text.substr(1, close - 1);
    for (char c : path)
        if (static_cast<unsigned char>(c) < 33 || c == 127) return fail("invalid character in path");
    // Source route "@a,@b:user@domain": drop the route.
    if (!path.empty() && path.front() == '@') {
        auto colon = path.find(':');
        if (colon == std::string_view::npos) return fail("malformed source route");
        path.remove_prefix(colon + 1);
    }
    ParsedPath out;
    if (path.empty()) {
        if (!allow_null) return fail("null path not allowed here");
    } else {
        if (!valid_mailbox(path)) return fail("invalid mailbox syntax");
        out.address = std::string(path);
    }
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ' ') return fail("garbage after path");
    for (auto p : split(rest, ' ')) {
        if (p.empty()) continue;
        auto eq = p.find('=');
        std::string key = to_upper(p.substr(0, eq));
        if (key.empty()) return fail("empty parameter keyword");
        std::string value = eq == std::string_view::npos ? std::string() : std::string(p.substr(eq + 1));
        out.params.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

}  // namespace pecd::smtp
