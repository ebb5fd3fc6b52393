// ldif.cpp - RFC 2849 LDIF reader and writer (see ldif.hpp)
#include "index/ldif.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::index {
namespace {

struct LogicalLine {
    std::size_t line;  // first physical line
    std::string text;
};

// A record is the run of logical lines between blank lines.
using RecordLines = std::vector<LogicalLine>;

// Unfolds continuation lines, drops comments and groups lines into records.
std::vector<RecordLines> split_records(std::string_view text) {
    std::vector<RecordLines> records;
    RecordLines current;
    bool in_comment = false;
    bool have_line = false;  // the previous physical line belongs to the current record
    std::size_t number = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        std::string_view raw = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
        pos = end == std::string_view::npos ? text.size() : end + 1;
        ++number;
        if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
        if (raw.find('\0') != std::string_view::npos) throw ParseError("NUL byte in LDIF", number);
        if (raw.empty()) {
            if (!current.empty()) records.push_back(std::move(current));
            current.clear();
            in_comment = have_line = false;
            continue;
        }
        if (raw.front() == ' ') {
            if (!have_line) throw ParseError("continuation line with no line before it to continue", number);
            if (!in_comment) current.back().text.append(raw.substr(1));
            continue;
        }
        have_line = true;
        if (raw.front() == '#') {
            in_comment = true;
            continue;
        }
        in_comment = false;
        current.push_back({number, std::string(raw)});
    }
    if (!current.empty()) records.push_back(std::move(current));
    return records;
}

bool valid_type_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

struct AttrLine {
    std::string type;
    std::vector<std::string> options;
    std::string value;
};

// "type[;option...]:[:] value" of one logical line.
AttrLine parse_attr_line(const LogicalLine& l) {
    auto colon = l.text.find(':');
    if (colon == std::string::npos)
        throw ParseError("expected 'attribute: value', found no ':' in \"" + l.text.substr(0, 40) + "\"",
                         l.line);
    AttrLine a;
    auto parts = split(std::string_view(l.text).substr(0, colon), ';');
    if (parts.empty() || parts[0].empty()) throw ParseError("missing attribute name before ':'", l.line);
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (parts[i].empty() || !std::all_of(parts[i].begin(), parts[i].end(), valid_type_char))
            throw ParseError("invalid attribute description \"" + l.text.substr(0, colon) + "\"", l.line);
        if (i == 0)
            a.type = std::string(parts[0]);
        else
            a.options.push_back(to_lower(parts[i]));
    }
    std::string_view rest = std::string_view(l.text).substr(colon + 1);
    if (!rest.empty() && rest.front() == ':') {
        rest.remove_prefix(1);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        a.value = base64_decode(rest, l.line);
    } else if (!rest.empty() && rest.front() == '<') {
        throw ParseError("URL values (\":<\") are not supported", l.line, a.type);
    } else {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (!rest.empty() && rest.front() == ':')
            throw ParseError("a value may not start with ':' unless base64-encoded", l.line, a.type);
        a.value = std::string(rest);
    }
    return a;
}

LdifValue to_value(AttrLine&& a, std::size_t line) {
    return LdifValue{std::move(a.type), std::move(a.options), std::move(a.value), line};
}

void parse_modify(const RecordLines& lines, std::size_t i, LdifRecord& r) {
    while (i < lines.size()) {
        auto spec = parse_attr_line(lines[i]);
        LdifModification m;
        m.line = lines[i].line;
        if (iequals(spec.type, "add"))
            m.op = LdifModification::Op::add;
        else if (iequals(spec.type, "delete"))
            m.op = LdifModification::Op::remove;
        else if (iequals(spec.type, "replace"))
            m.op = LdifModification::Op::replace;
        else
            throw ParseError("expected add:, delete: or replace: in a modify record", lines[i].line,
                             spec.type);
        m.type = spec.value;
        if (m.type.empty()) throw ParseError("modification names no attribute", lines[i].line, spec.type);
        ++i;
        for (; i < lines.size() && lines[i].text != "-"; ++i) {
            auto v = parse_attr_line(lines[i]);
            if (!iequals(v.type, m.type))
                throw ParseError("value of " + v.type + " inside a modification of " + m.type, lines[i].line);
            m.values.push_back(to_value(std::move(v), lines[i].line));
        }
        if (i < lines.size()) ++i;  // the "-"
        r.modifications.push_back(std::move(m));
    }
}

LdifRecord parse_record(const RecordLines& lines) {
    LdifRecord r;
    auto dn = parse_attr_line(lines[0]);
    if (!iequals(dn.type, "dn") || !dn.options.empty())
        throw ParseError("a record must start with dn:, found " + dn.type + ":", lines[0].line);
    if (dn.value.empty()) throw ParseError("empty DN", lines[0].line, "dn");
    r.dn = std::move(dn.value);
    r.line = lines[0].line;
    std::size_t i = 1;
    while (i < lines.size() && istarts_with(lines[i].text, "control:")) ++i;  // controls do not change data
    if (i < lines.size() && istarts_with(lines[i].text, "changetype:")) {
        auto ct = parse_attr_line(lines[i]);
        std::string kind = to_lower(trim(ct.value));
        if (kind == "add")
            r.change = ChangeType::add;
        else if (kind == "delete")
            r.change = ChangeType::remove;
        else if (kind == "modify")
            r.change = ChangeType::modify;
        else if (kind == "modrdn" || kind == "moddn")
            throw ParseError("changetype " + kind + " is not supported by the provider index", lines[i].line,
                             "changetype");
        else
            throw ParseError("unknown changetype \"" + ct.value + "\"", lines[i].line, "changetype");
        ++i;
    }
    if (r.change == ChangeType::remove) {
        if (i < lines.size()) throw ParseError("a delete record carries no attributes", lines[i].line);
        return r;
    }
    if (r.change == ChangeType::modify) {
        parse_modify(lines, i, r);
        return r;
    }
    for (; i < lines.size(); ++i) r.attributes.push_back(to_value(parse_attr_line(lines[i]), lines[i].line));
    if (r.attributes.empty()) throw ParseError("entry has no attributes", r.line, "dn");
    return r;
}

bool same_value(const LdifValue& a, const LdifValue& b) {
    return iequals(a.type, b.type) && a.value == b.value;
}

void apply_modification(LdifEntry& e, const LdifModification& m) {
    auto& attrs = e.attributes;
    auto of_type = [&](const LdifValue& v) { return iequals(v.type, m.type); };
    switch (m.op) {
        case LdifModification::Op::add:
            for (auto& v : m.values)
                if (std::none_of(attrs.begin(), attrs.end(), [&](auto& a) { return same_value(a, v); }))
                    attrs.push_back(v);
            break;
        case LdifModification::Op::remove:
            if (m.values.empty()) {
                std::erase_if(attrs, of_type);
            } else {
                for (auto& v : m.values) std::erase_if(attrs, [&](auto& a) { return same_value(a, v); });
            }
            break;
        case LdifModification::Op::replace:
            std::erase_if(attrs, of_type);
            attrs.insert(attrs.end(), m.values.begin(), m.values.end());
            break;
    }
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool safe_string(std::string_view v) {
    if (v.empty()) return true;
    if (v.front() == ' ' || v.front() == ':' || v.front() == '<' || v.back() == ' ') return false;
    return std::all_of(v.begin(), v.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u != 0 && u != '\n' && u != '\r' && u < 128;
    });
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(std::max(n, 0)));
    return out;
}

std::string base64_decode(std::string_view text, std::size_t line) {
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    if (text.size() % 4 != 0) throw ParseError("base64 value length is not a multiple of 4", line);
    std::size_t pad = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        bool alpha = std::string_view(kB64, 64).find(c) != std::string_view::npos;
        if (c == '=' && i + 2 >= text.size()) {
            ++pad;
        } else if (!alpha || pad) {
            throw ParseError("invalid base64 character at column " + std::to_string(i + 1), line);
        }
    }
    std::string out(text.size() / 4 * 3, '\0');
    int n =
        EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) throw ParseError("invalid base64 value", line);
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::vector<const LdifValue*> LdifEntry::values(std::string_view type) const {
    std::vector<const LdifValue*> r;
    for (auto& a : attributes)
        if (iequals(a.type, type)) r.push_back(&a);
    return r;
}

std::string LdifEntry::first(std::string_view type) const {
    for (auto& a : attributes)
        if (iequals(a.type, type)) return a.value;
    return {};
}

bool LdifEntry::has(std::string_view type) const {
    return std::any_of(attributes.begin(), attributes.end(), [&](auto& a) { return iequals(a.type, type); });
}

std::vector<LdifRecord> parse_ldif(std::string_view text) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 BOM some editors add
    auto groups = split_records(text);
    std::vector<LdifRecord> records;
    records.reserve(groups.size());
    bool first = true;
    for (auto& g : groups) {
        if (first && istarts_with(g.front().text, "version:")) {
            auto v = parse_attr_line(g.front());
            if (trim(v.value) != "1")
                throw ParseError("unsupported LDIF version \"" + v.value + "\"", g.front().line);
            g.erase(g.begin());
        }
        first = false;
        if (!g.empty()) records.push_back(parse_record(g));
    }
    return records;
}

std::vector<LdifEntry> apply_ldif(const std::vector<LdifRecord>& records) {
    std::vector<LdifEntry> entries;
    std::map<std::string, std::size_t> by_dn;  // normalised DN -> position in entries
    std::vector<bool> removed;
    for (auto& r : records) {
        auto key = normalize_dn(r.dn);
        auto it = by_dn.find(key);
        bool exists = it != by_dn.end() && !removed[it->second];
        switch (r.change) {
            case ChangeType::content:
            case ChangeType::add:
                if (exists) throw ParseError("entry " + r.dn + " appears twice", r.line, "dn");
                by_dn[key] = entries.size();
                entries.push_back({r.dn, r.line, r.attributes});
                removed.push_back(false);
                break;
            case ChangeType::remove:
                if (!exists) throw ParseError("delete of " + r.dn + ", which does not exist", r.line, "dn");
                removed[it->second] = true;
                break;
            case ChangeType::modify:
                if (!exists) throw ParseError("modify of " + r.dn + ", which does not exist", r.line, "dn");
                for (auto& m : r.modifications) apply_modification(entries[it->second], m);
                break;
        }
    }
    std::vector<LdifEntry> out;
    out.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i)
        if (!removed[i]) out.push_back(std::move(entries[i]));
    return out;
}

std::string normalize_dn(std::string_view dn) {
    std::string out;
    out.reserve(dn.size());
    bool escaped = false;
    for (std::size_t i = 0; i < dn.size(); ++i) {
        char c = dn[i];
        if (!escaped && (c == ',' || c == '=' || c == '+')) {
            while (!out.empty() && out.back() == ' ') out.pop_back();
            out.push_back(c);
            while (i + 1 < dn.size() && dn[i + 1] == ' ') ++i;
            continue;
        }
        escaped = !escaped && c == '\\';
        out.push_back(ascii_lower(c));
    }
    return std::string(trim(out));
}

std::string write_ldif_line(std::string_view type, std::string_view value) {
    std::string line(type);
    if (safe_string(value)) {
        line += ": ";
        line += value;
    } else {
        line += ":: ";
        line += base64_encode(value);
    }
    std::string out;
    constexpr std::size_t width = 76;
    out.append(line, 0, std::min(width, line.size()));
    out += '\n';
    for (std::size_t p = width; p < line.size(); p += width - 1) {
        out += ' ';
        out.append(line, p, width - 1);
        out += '\n';
    }
    return out;
}

}  // namespace pecd::index
