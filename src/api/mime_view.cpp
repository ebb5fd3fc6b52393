// mime_view.cpp - header summary and attachment extraction with GMime 3 (see mime_view.hpp)
#include "api/mime_view.hpp"

#include <gmime/gmime.h>

#include <functional>
#include <memory>
#include <mutex>

#include "core/strings.hpp"

namespace pecd::api {
namespace {

void init_gmime() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

struct GObjectDeleter {
    void operator()(void* p) const {
        if (p) g_object_unref(p);
    }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectDeleter>;

GPtr<GMimeMessage> parse(std::string_view raw) {
    init_gmime();
    GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
    GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    return GPtr<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

std::string header(GMimeObject* obj, const char* name) {
    const char* v = g_mime_object_get_header(obj, name);
    return v ? std::string(trim(v)) : std::string();
}

std::string take(char* s) {
    if (!s) return {};
    std::string out(s);
    g_free(s);
    return out;
}

// Text the API shows goes into JSON, which holds UTF-8 only: a hostile header or file
// name keeps its valid sequences, and each broken one becomes U+FFFD.
std::string utf8_text(const std::string& s) {
    if (g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) return s;
    return take(g_utf8_make_valid(s.data(), static_cast<gssize>(s.size())));
}

std::string bytes_of(GMimeStream* mem) {
    GByteArray* arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    return arr ? std::string(reinterpret_cast<const char*>(arr->data), arr->len) : std::string();
}

// Calls fn(object, info) for every attachment, in document order.
void walk(GMimeObject* obj, int& next, const std::function<bool(GMimeObject*, const AttachmentInfo&)>& fn) {
    if (!obj) return;
    if (GMIME_IS_MULTIPART(obj)) {
        auto* mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(mp, i), next, fn);
        return;
    }
    AttachmentInfo info;
    info.content_type = take(g_mime_content_type_get_mime_type(g_mime_object_get_content_type(obj)));
    if (GMIME_IS_MESSAGE_PART(obj)) {
        const char* fname = nullptr;
        if (auto* cd = g_mime_object_get_content_disposition(obj))
            fname = g_mime_content_disposition_get_parameter(cd, "filename");
        info.filename = fname ? fname : "message.eml";
    } else if (GMIME_IS_PART(obj)) {
        const char* fname = g_mime_part_get_filename(GMIME_PART(obj));
        const char* disp = g_mime_object_get_disposition(obj);
        bool is_attachment = disp && g_ascii_strcasecmp(disp, "attachment") == 0;
        if (!fname && !is_attachment) return;
        info.filename = fname ? fname : "";
    } else {
        return;
    }
    info.filename = utf8_text(info.filename);
    info.content_type = utf8_text(info.content_type);
    info.index = next++;
    fn(obj, info);
}

}  // namespace

MessageHeaders summarize(std::string_view raw) {
    MessageHeaders h;
    auto msg = parse(raw);
    if (!msg) return h;
    auto* obj = GMIME_OBJECT(msg.get());
    if (const char* id = g_mime_message_get_message_id(msg.get())) h.message_id = id;
    if (const char* s = g_mime_message_get_subject(msg.get())) h.subject = s;
    if (auto* from = g_mime_message_get_from(msg.get()))
        h.from = take(internet_address_list_to_string(from, nullptr, FALSE));
    h.date = header(obj, "Date");
    auto ricevuta = header(obj, "X-Ricevuta");
    auto trasporto = header(obj, "X-Trasporto");
    h.pec_type = to_lower(!ricevuta.empty() ? ricevuta : !trasporto.empty() ? trasporto : "ordinary");
    h.pec_ref = header(obj, "X-Riferimento-Message-ID");
    if (h.pec_ref.size() > 2 && h.pec_ref.front() == '<' && h.pec_ref.back() == '>')
        h.pec_ref = h.pec_ref.substr(1, h.pec_ref.size() - 2);
    for (auto* text : {&h.message_id, &h.subject, &h.from, &h.date, &h.pec_type, &h.pec_ref})
        *text = utf8_text(*text);
    return h;
}

std::vector<AttachmentInfo> attachments(std::string_view raw) {
    std::vector<AttachmentInfo> out;
    auto msg = parse(raw);
    if (!msg) return out;
    int next = 0;
    walk(g_mime_message_get_mime_part(msg.get()), next, [&](GMimeObject*, const AttachmentInfo& info) {
        out.push_back(info);
        return true;
    });
    return out;
}

std::optional<AttachmentData> attachment(std::string_view raw, int index) {
    std::optional<AttachmentData> out;
    auto msg = parse(raw);
    if (!msg || index < 0) return out;
    int next = 0;
    walk(g_mime_message_get_mime_part(msg.get()), next, [&](GMimeObject* obj, const AttachmentInfo& info) {
        if (info.index != index) return true;
        GPtr<GMimeStream> mem(g_mime_stream_mem_new());
        if (GMIME_IS_MESSAGE_PART(obj)) {
            if (auto* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj)))
                g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, mem.get());
        } else if (auto* content = g_mime_part_get_content(GMIME_PART(obj))) {
            g_mime_data_wrapper_write_to_stream(content, mem.get());
        }
        out = AttachmentData{info, bytes_of(mem.get())};
        return false;
    });
    return out;
}

}  // namespace pecd::api
