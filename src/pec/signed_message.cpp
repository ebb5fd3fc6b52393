// signed_message.cpp - extracting PEC headers and parts
//
// The content is read as views into the caller's bytes: the parts of a multipart are cut
// at their delimiter lines (mime::find_delimiters) and only the parts PEC names are looked
// into. GMime parses the header values (Content-Type, Content-Disposition, Message-ID, RFC
// 2047 words, addresses) and undoes transfer encodings, but builds no object tree: a tree
// of the whole envelope (the original message inside it included, every header an object)
// cost half of a transport envelope's verification, and a reception point verifies every
// envelope and every receipt it receives.
#include "pec/signed_message.hpp"

#include <gmime/gmime.h>

#include <memory>
#include <mutex>

#include "core/strings.hpp"
#include "mime/mime.hpp"

namespace pecd::pec {
namespace {

void ensure_gmime() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

struct GFree {
    void operator()(void* p) const noexcept { g_free(p); }
};
struct Unref {
    void operator()(void* p) const noexcept {
        if (p) g_object_unref(p);
    }
};
template <class T>
using GPtr = std::unique_ptr<T, Unref>;

constexpr int kMaxTextDepth = 4;

struct Entity {
    mime::SplitMessage split;
    mime::ContentType type;
};

// The last field of that name: a repeated MIME field replaces the earlier one in GMime's
// reading, and the facts here are the ones GMime's object tree gave.
std::optional<std::string> last_value(const mime::SplitMessage& s, std::string_view name) {
    for (auto it = s.fields.rbegin(); it != s.fields.rend(); ++it)
        if (iequals(it->name, name)) return it->value();
    return std::nullopt;
}

Entity entity_of(std::string_view raw) {
    Entity e{mime::split_message(raw), {}};
    e.type = mime::content_type(last_value(e.split, "Content-Type").value_or(""));
    return e;
}

std::string type_name(const mime::ContentType& ct) {
    return ct.type + "/" + ct.subtype;
}

// How PEC names a part: the Content-Disposition filename, else the Content-Type name.
std::string name_of(const Entity& e) {
    std::string n;
    if (auto d = last_value(e.split, "Content-Disposition")) n = mime::disposition_filename(*d);
    if (n.empty()) n = e.type.name;
    return to_lower(trim(n));
}

std::string decoded_content(const Entity& e) {
    return mime::decode_transfer(e.split.body, last_value(e.split, "Content-Transfer-Encoding").value_or(""));
}

std::vector<std::string_view> children_of(const Entity& e) {
    return mime::body_parts(e.split.body, mime::find_delimiters(e.split.body, e.type.boundary));
}

// The entity types GMime reads as an embedded message.
bool is_message_part(const mime::ContentType& ct) {
    return ct.type == "message" && (ct.subtype == "rfc822" || ct.subtype == "news" || ct.subtype == "global");
}

void find_text(const Entity& e, MessageContent& c, int depth) {
    if (!c.text.empty() || depth > kMaxTextDepth) return;
    if (e.type.type == "multipart") {
        for (auto child : children_of(e)) {
            find_text(entity_of(child), c, depth + 1);
            if (!c.text.empty()) return;
        }
    } else if (e.type.is("text", "plain")) {
        c.text = decoded_content(e);
    }
}

std::string message_id_of(std::string_view message) {
    auto value = last_value(mime::split_message(message), "Message-ID");
    if (!value) return {};
    std::unique_ptr<char, GFree> id(g_mime_utils_decode_message_id(value->c_str()));
    return id ? id.get() : std::string{};
}

bool only_text(const Entity& e, int depth) {
    if (e.type.is("text", "plain") || e.type.is("text", "html")) return true;
    if (!e.type.is("multipart", "alternative") || depth >= kMaxTextDepth) return false;
    for (auto child : children_of(e))
        if (!only_text(entity_of(child), depth + 1)) return false;
    return true;
}

void inspect_child(std::string_view raw, MessageContent& c) {
    auto child = entity_of(raw);
    auto name = name_of(child);
    if (is_message_part(child.type)) {
        // The original is named postacert.eml; the anomaly envelope's name is not fixed
        // (pec.md 3.5), so any message/rfc822 part counts, postacert.eml preferred.
        // Either way a second message is something besides the original.
        if (c.has_postacert) c.others_only_text = false;
        if (c.has_postacert && name != "postacert.eml") return;
        c.has_postacert = true;
        c.postacert_message_id = message_id_of(child.split.body);
        // Only a message sent as it is: an encoded one (which RFC 2046 does not allow) is
        // left to the scanner whole, which decodes what it finds.
        auto encoding = to_lower(trim(last_value(child.split, "Content-Transfer-Encoding").value_or("")));
        bool as_is = encoding.empty() || encoding == "7bit" || encoding == "8bit" || encoding == "binary";
        c.postacert = as_is ? child.split.body : std::string_view{};
        return;
    }
    if (child.type.type != "multipart" && name == "daticert.xml" && !c.has_daticert) {
        c.has_daticert = true;
        c.daticert_xml = decoded_content(child);
        return;
    }
    if (!only_text(child, 0)) c.others_only_text = false;
    find_text(child, c, 0);
}

std::optional<std::string> header_once(const std::vector<crypto::RawHeader>& hs, std::string_view name,
                                       std::vector<std::string>& duplicated) {
    std::optional<std::string> v;
    for (auto& h : hs) {
        if (!iequals(h.name, name)) continue;
        if (v) {
            if (*v != h.value) duplicated.emplace_back(name);
            continue;
        }
        v = h.value;
    }
    return v;
}

}  // namespace

PecHeaders read_pec_headers(std::string_view header_block) {
    ensure_gmime();
    PecHeaders p;
    auto hs = crypto::parse_raw_headers(header_block);
    p.x_trasporto = header_once(hs, "X-Trasporto", p.duplicated);
    p.x_ricevuta = header_once(hs, "X-Ricevuta", p.duplicated);
    p.x_verifica_sicurezza = header_once(hs, "X-VerificaSicurezza", p.duplicated);
    p.x_riferimento_message_id = header_once(hs, "X-Riferimento-Message-ID", p.duplicated);
    p.x_tipo_ricevuta = header_once(hs, "X-TipoRicevuta", p.duplicated);
    p.x_mittente = header_once(hs, "X-Mittente", p.duplicated);
    std::vector<std::string> ignored;
    p.from = header_once(hs, "From", ignored).value_or("");
    p.message_id = header_once(hs, "Message-ID", ignored).value_or("");
    p.date = header_once(hs, "Date", ignored).value_or("");
    auto subject = header_once(hs, "Subject", ignored).value_or("");
    auto* options = g_mime_parser_options_get_default();
    std::unique_ptr<char, GFree> decoded(g_mime_utils_header_decode_text(options, subject.c_str()));
    p.subject = decoded ? decoded.get() : subject;
    if (!p.from.empty()) {
        GPtr<InternetAddressList> list(internet_address_list_parse(options, p.from.c_str()));
        if (list && internet_address_list_length(list.get()) > 0) {
            InternetAddress* a = internet_address_list_get_address(list.get(), 0);
            if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
                const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
                if (addr) p.from_address = addr;
            }
        }
    }
    return p;
}

MessageContent read_content(std::string_view entity) {
    ensure_gmime();
    MessageContent c;
    auto root = entity_of(entity);
    c.root_type = type_name(root.type);
    if (root.type.type == "multipart") {
        c.found_multipart = true;
        auto children = children_of(root);
        c.parts = children.size();
        for (auto child : children) inspect_child(child, c);
    } else {
        find_text(root, c, 0);
    }
    return c;
}

MessageFacts read_message(std::string_view raw) {
    MessageFacts f;
    auto top = crypto::split_entity(raw);
    f.headers = read_pec_headers(top.headers);
    f.smime = crypto::smime_locate(raw);
    // Not multipart/signed (ordinary mail, or a PEC message stripped of its signature):
    // the PEC parts are looked for in the message itself.
    std::string_view entity = f.smime.signed_part.empty() ? raw : f.smime.signed_part;
    f.content = read_content(entity);
    return f;
}

std::string_view antivirus_content(const MessageFacts& facts, std::string_view raw) {
    const auto& c = facts.content;
    // postacert is only set for a message part of a multipart, so it implies both.
    if (c.has_daticert && c.others_only_text && !c.postacert.empty()) return c.postacert;
    return raw;
}

}  // namespace pecd::pec
