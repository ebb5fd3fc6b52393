// signed_message.cpp - extracting PEC headers and parts with GMime
//
// The content is parsed from a GMime memory stream that borrows the caller's buffer
// (owner = FALSE), so a 100 MB message is not copied; GMime's persistent-stream mode keeps
// part contents as references into it. Every GMime object made here is released before
// the borrowed buffer can go away.
#include "pec/signed_message.hpp"

#include <gmime/gmime.h>

#include <memory>
#include <mutex>

#include "core/strings.hpp"

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

// A GMime stream over borrowed bytes: GByteArray wrapper without ownership of the data.
class BorrowedStream {
public:
    explicit BorrowedStream(std::string_view data) {
        if (data.empty()) {
            stream_ = g_mime_stream_mem_new();
            return;
        }
        array_ =
            g_byte_array_new_take(reinterpret_cast<guint8*>(const_cast<char*>(data.data())), data.size());
        stream_ = g_mime_stream_mem_new_with_byte_array(array_);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream_), FALSE);
    }
    ~BorrowedStream() {
        g_object_unref(stream_);
        if (array_) g_byte_array_free(array_, FALSE);  // frees the wrapper, never the data
    }
    BorrowedStream(const BorrowedStream&) = delete;
    BorrowedStream& operator=(const BorrowedStream&) = delete;
    GMimeStream* get() const noexcept { return stream_; }

private:
    GByteArray* array_ = nullptr;
    GMimeStream* stream_ = nullptr;
};

std::string type_of(GMimeObject* o) {
    GMimeContentType* ct = g_mime_object_get_content_type(o);
    if (!ct) return "text/plain";
    std::unique_ptr<char, GFree> mt(g_mime_content_type_get_mime_type(ct));
    return to_lower(mt ? mt.get() : "text/plain");
}

std::string name_of(GMimeObject* o) {
    const char* n = g_mime_object_get_content_disposition_parameter(o, "filename");
    if (!n) n = g_mime_object_get_content_type_parameter(o, "name");
    return n ? to_lower(trim(n)) : std::string{};
}

std::string decoded_content(GMimePart* part) {
    GMimeDataWrapper* w = g_mime_part_get_content(part);
    if (!w) return {};
    GPtr<GMimeStream> out(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(w, out.get());
    GByteArray* a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
    return a ? std::string(reinterpret_cast<const char*>(a->data), a->len) : std::string{};
}

void find_text(GMimeObject* o, MessageContent& c, int depth) {
    if (!c.text.empty() || depth > 4) return;
    if (GMIME_IS_MULTIPART(o)) {
        auto* mp = GMIME_MULTIPART(o);
        for (int i = 0; i < g_mime_multipart_get_count(mp) && c.text.empty(); ++i)
            find_text(g_mime_multipart_get_part(mp, i), c, depth + 1);
    } else if (GMIME_IS_PART(o) && type_of(o) == "text/plain") {
        c.text = decoded_content(GMIME_PART(o));
    }
}

void inspect_child(GMimeObject* child, MessageContent& c) {
    auto name = name_of(child);
    if (GMIME_IS_MESSAGE_PART(child)) {
        // The original is named postacert.eml; the anomaly envelope's name is not fixed
        // (pec.md 3.5), so any message/rfc822 part counts, postacert.eml preferred.
        if (c.has_postacert && name != "postacert.eml") return;
        c.has_postacert = true;
        c.postacert_message_id.clear();
        if (GMimeMessage* m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(child)))
            if (const char* id = g_mime_message_get_message_id(m)) c.postacert_message_id = id;
        return;
    }
    if (GMIME_IS_PART(child) && name == "daticert.xml" && !c.has_daticert) {
        c.has_daticert = true;
        c.daticert_xml = decoded_content(GMIME_PART(child));
        return;
    }
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
    BorrowedStream stream(entity);
    {
        GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
        g_mime_parser_set_persist_stream(parser.get(), TRUE);
        GPtr<GMimeObject> root(
            g_mime_parser_construct_part(parser.get(), g_mime_parser_options_get_default()));
        if (!root) return c;
        c.root_type = type_of(root.get());
        if (GMIME_IS_MULTIPART(root.get())) {
            c.found_multipart = true;
            auto* mp = GMIME_MULTIPART(root.get());
            int n = g_mime_multipart_get_count(mp);
            c.parts = static_cast<std::size_t>(n < 0 ? 0 : n);
            for (int i = 0; i < n; ++i) inspect_child(g_mime_multipart_get_part(mp, i), c);
        } else {
            find_text(root.get(), c, 0);
        }
    }  // root and parser released before the borrowed stream
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

}  // namespace pecd::pec
