// daticert.cpp - daticert.xml parser (libxml2 + compiled-in DTD) and writer
//
// Parsing: libxml2 reads the bytes with XML_PARSE_NONET and without entity substitution
// or DTD loading; a DOCTYPE in the document is refused before libxml2 sees it (it could
// only weaken validation or define entities). Validation then applies the DTD parsed
// from memory. Errors are caught through the thread's structured error handler, which
// is restored afterwards.
#include "pec/daticert.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "pec/daticert_dtd.hpp"

namespace pecd::pec {
namespace {

constexpr std::size_t max_daticert_size = 1 << 20;  // real ones are ~1 KB

struct DocFree {
    void operator()(xmlDoc* d) const noexcept { xmlFreeDoc(d); }
};
struct DtdFree {
    void operator()(xmlDtd* d) const noexcept { xmlFreeDtd(d); }
};
struct CtxtFree {
    void operator()(xmlParserCtxt* c) const noexcept { xmlFreeParserCtxt(c); }
};
struct ValidFree {
    void operator()(xmlValidCtxt* c) const noexcept { xmlFreeValidCtxt(c); }
};

// First error libxml2 reports while the capture is alive.
struct ErrorCapture {
    bool have = false;
    std::string message;
    std::size_t line = 0;
    std::string element;

    ErrorCapture() : saved_ctx_(xmlStructuredErrorContext), saved_fn_(xmlStructuredError) {
        xmlSetStructuredErrorFunc(this, &ErrorCapture::handler);
    }
    ~ErrorCapture() { xmlSetStructuredErrorFunc(saved_ctx_, saved_fn_); }
    ErrorCapture(const ErrorCapture&) = delete;
    ErrorCapture& operator=(const ErrorCapture&) = delete;

    static void handler(void* ctx, xmlErrorPtr e) {
        auto* self = static_cast<ErrorCapture*>(ctx);
        if (self->have || !e || e->level < XML_ERR_ERROR) return;
        self->have = true;
        self->message = e->message ? std::string(trim(e->message)) : "XML error";
        self->line = e->line > 0 ? static_cast<std::size_t>(e->line) : 0;
        auto* node = static_cast<xmlNode*>(e->node);
        if (node && node->type == XML_ELEMENT_NODE && node->name) {
            self->element = reinterpret_cast<const char*>(node->name);
            if (!self->line) self->line = static_cast<std::size_t>(xmlGetLineNo(node));
        } else if (e->domain == XML_FROM_PARSER && e->ctxt) {
            // The element open when the parser stopped.
            auto* p = static_cast<xmlParserCtxt*>(e->ctxt);
            if (p->name) self->element = reinterpret_cast<const char*>(p->name);
        }
    }

private:
    void* saved_ctx_;
    xmlStructuredErrorFunc saved_fn_;
};

std::size_t line_of(std::string_view text, std::size_t pos) {
    std::size_t line = 1;
    for (std::size_t i = 0; i < pos && i < text.size(); ++i)
        if (text[i] == '\n') ++line;
    return line;
}

std::string_view name_of(const xmlNode* n) {
    return reinterpret_cast<const char*>(n->name);
}

std::size_t line_of(const xmlNode* n) {
    return static_cast<std::size_t>(xmlGetLineNo(n));
}

std::string text_of(const xmlNode* n) {
    xmlChar* c = xmlNodeGetContent(n);
    std::string s = c ? std::string(trim(reinterpret_cast<const char*>(c))) : std::string();
    xmlFree(c);
    return s;
}

std::string attribute(const xmlNode* n, const char* name) {
    xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
    std::string s = v ? std::string(trim(reinterpret_cast<const char*>(v))) : std::string();
    xmlFree(v);
    return s;
}

bool has_attribute(const xmlNode* n, const char* name) {
    return xmlHasProp(n, reinterpret_cast<const xmlChar*>(name)) != nullptr;
}

std::vector<const xmlNode*> element_children(const xmlNode* n) {
    std::vector<const xmlNode*> out;
    for (const xmlNode* c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) out.push_back(c);
    return out;
}

// Enumerated attributes were already checked by the DTD; the parse_* calls cannot fail
// for a validated document, but a failure still reports rather than assumes.
template <class T, class Parse>
T enum_attribute(const xmlNode* n, const char* attr, Parse parse, T fallback) {
    if (!has_attribute(n, attr)) return fallback;
    auto v = attribute(n, attr);
    auto parsed = parse(v);
    if (!parsed)
        throw ParseError("invalid " + std::string(attr) + " '" + v + "'", line_of(n),
                         std::string(name_of(n)));
    return *parsed;
}

void read_intestazione(const xmlNode* n, Daticert& d) {
    for (const xmlNode* c : element_children(n)) {
        auto name = name_of(c);
        if (name == "mittente")
            d.mittente = text_of(c);
        else if (name == "destinatari")
            d.destinatari.push_back(
                {text_of(c), enum_attribute(c, "tipo", parse_recipient_type, RecipientType::certificato)});
        else if (name == "risposte")
            d.risposte = text_of(c);
        else if (name == "oggetto")
            d.oggetto = text_of(c);
    }
}

void read_dati(const xmlNode* n, Daticert& d) {
    for (const xmlNode* c : element_children(n)) {
        auto name = name_of(c);
        if (name == "gestore-emittente")
            d.gestore_emittente = text_of(c);
        else if (name == "data") {
            d.data.zona = attribute(c, "zona");
            for (const xmlNode* g : element_children(c)) {
                if (name_of(g) == "giorno")
                    d.data.giorno = text_of(g);
                else if (name_of(g) == "ora")
                    d.data.ora = text_of(g);
            }
        } else if (name == "identificativo")
            d.identificativo = text_of(c);
        else if (name == "msgid")
            d.msgid = text_of(c);
        else if (name == "ricevuta")
            d.ricevuta = enum_attribute(c, "tipo", parse_receipt_type, ReceiptType::completa);
        else if (name == "consegna")
            d.consegna = text_of(c);
        else if (name == "ricezione")
            d.ricezione.push_back(text_of(c));
        else if (name == "errore-esteso")
            d.errore_esteso = text_of(c);
    }
}

// Required values must not be blank even though the DTD's #PCDATA allows it.
void require_nonempty(const std::string& v, const char* element, std::string_view xml) {
    if (!v.empty()) return;
    auto pos = xml.find(std::string("<") + element);
    throw ParseError("empty value", pos == std::string_view::npos ? 0 : line_of(xml, pos), element);
}

// --- writer ---

// Appends s as XML character data: valid UTF-8 only, XML-forbidden characters replaced.
void append_escaped(std::string& out, std::string_view s) {
    static constexpr std::string_view replacement = "\xEF\xBF\xBD";
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            switch (c) {
                case '&':
                    out += "&amp;";
                    break;
                case '<':
                    out += "&lt;";
                    break;
                case '>':
                    out += "&gt;";
                    break;
                case '"':
                    out += "&quot;";
                    break;
                case '\r':
                    out += "&#13;";
                    break;
                case '\t':
                case '\n':
                    out += static_cast<char>(c);
                    break;
                default:
                    if (c < 0x20 || c == 0x7f)
                        out += replacement;
                    else
                        out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        std::size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        if (c >= 0xF5) len = 0;
        bool ok = len && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len == 3) {
            unsigned cp = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
            ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE && cp != 0xFFFF;
        } else if (ok && len == 4) {
            unsigned cp =
                ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (ok) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += replacement;
            ++i;
        }
    }
}

void element(std::string& out, int depth, std::string_view name, std::string_view value,
             std::string_view attrs = {}) {
    out.append(static_cast<std::size_t>(depth) * 4, ' ');
    out += '<';
    out += name;
    out += attrs;
    out += '>';
    append_escaped(out, value);
    out += "</";
    out += name;
    out += ">\n";
}

std::string attr(std::string_view name, std::string_view value) {
    std::string s = " ";
    s += name;
    s += "=\"";
    append_escaped(s, value);
    s += '"';
    return s;
}

std::string two(int v) {
    char b[16];
    std::snprintf(b, sizeof b, "%02d", v);
    return b;
}

}  // namespace

std::string_view daticert_dtd() noexcept {
    return detail::daticert_dtd_text;
}

namespace {

// The compiled-in DTD, parsed once per thread: parsing it was a third of the cost of
// reading a daticert. Per thread because validation is not read-only on the DTD (libxml2
// compiles each element's content model into it on first use).
xmlDtd& thread_dtd() {
    thread_local std::unique_ptr<xmlDtd, DtdFree> dtd;
    if (!dtd) {
        xmlParserInputBuffer* in = xmlParserInputBufferCreateMem(
            detail::daticert_dtd_text.data(), static_cast<int>(detail::daticert_dtd_text.size()),
            XML_CHAR_ENCODING_UTF8);
        dtd.reset(in ? xmlIOParseDTD(nullptr, in, XML_CHAR_ENCODING_UTF8) : nullptr);
        if (!dtd) throw Error("daticert: the compiled-in DTD does not parse");
    }
    return *dtd;
}

}  // namespace

Daticert parse_daticert(std::string_view xml) {
    if (xml.size() > max_daticert_size) throw ParseError("daticert.xml larger than 1 MiB", 0, "postacert");
    if (auto pos = xml.find("<!DOCTYPE"); pos != std::string_view::npos)
        throw ParseError("a DOCTYPE is not allowed (the shipped DTD applies)", line_of(xml, pos),
                         "postacert");
    if (xml.find("<!ENTITY") != std::string_view::npos)
        throw ParseError("entity declarations are not allowed", line_of(xml, xml.find("<!ENTITY")),
                         "postacert");

    static std::once_flag libxml_ready;
    std::call_once(libxml_ready, [] { xmlInitParser(); });  // not safe to race on first use
    ErrorCapture errors;
    std::unique_ptr<xmlParserCtxt, CtxtFree> ctxt(xmlNewParserCtxt());
    if (!ctxt) throw Error("daticert: out of memory");
    std::unique_ptr<xmlDoc, DocFree> doc(xmlCtxtReadMemory(
        ctxt.get(), xml.data(), static_cast<int>(xml.size()), "daticert.xml", nullptr, XML_PARSE_NONET));
    if (!doc || errors.have) {
        std::string element = errors.element;
        if (element.empty() && ctxt->name) element = reinterpret_cast<const char*>(ctxt->name);
        throw ParseError(errors.have ? errors.message : "not well-formed XML", errors.line, element);
    }
    if (doc->intSubset || doc->extSubset) throw ParseError("a DOCTYPE is not allowed", 1, "postacert");

    std::unique_ptr<xmlValidCtxt, ValidFree> vctxt(xmlNewValidCtxt());
    if (!vctxt) throw Error("daticert: out of memory");
    if (xmlValidateDtd(vctxt.get(), doc.get(), &thread_dtd()) != 1 || errors.have)
        throw ParseError(errors.have ? errors.message : "document does not follow the daticert DTD",
                         errors.line, errors.element.empty() ? "postacert" : errors.element);

    const xmlNode* root = xmlDocGetRootElement(doc.get());
    if (!root || name_of(root) != "postacert")
        throw ParseError("root element is not postacert", 1, "postacert");
    Daticert d;
    auto tipo = attribute(root, "tipo");
    auto parsed_tipo = parse_daticert_tipo(tipo);
    if (!parsed_tipo) throw ParseError("invalid tipo '" + tipo + "'", line_of(root), "postacert");
    d.tipo = *parsed_tipo;
    d.errore = enum_attribute(root, "errore", parse_daticert_errore, DaticertErrore::nessuno);
    for (const xmlNode* c : element_children(root)) {
        if (name_of(c) == "intestazione")
            read_intestazione(c, d);
        else if (name_of(c) == "dati")
            read_dati(c, d);
    }
    require_nonempty(d.mittente, "mittente", xml);
    require_nonempty(d.identificativo, "identificativo", xml);
    return d;
}

std::string write_daticert(const Daticert& d) {
    std::string out;
    out.reserve(1024);
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += "<postacert" + attr("tipo", to_string(d.tipo)) + attr("errore", to_string(d.errore)) + ">\n";
    out += "    <intestazione>\n";
    element(out, 2, "mittente", d.mittente);
    for (const auto& r : d.destinatari)
        element(out, 2, "destinatari", r.address, attr("tipo", to_string(r.type)));
    element(out, 2, "risposte", d.risposte);
    if (d.oggetto) element(out, 2, "oggetto", *d.oggetto);
    out += "    </intestazione>\n";
    out += "    <dati>\n";
    element(out, 2, "gestore-emittente", d.gestore_emittente);
    out += "        <data" + attr("zona", d.data.zona) + ">\n";
    element(out, 3, "giorno", d.data.giorno);
    element(out, 3, "ora", d.data.ora);
    out += "        </data>\n";
    element(out, 2, "identificativo", d.identificativo);
    if (d.msgid) element(out, 2, "msgid", *d.msgid);
    if (d.ricevuta) out += "        <ricevuta" + attr("tipo", to_string(*d.ricevuta)) + " />\n";
    if (d.consegna) element(out, 2, "consegna", *d.consegna);
    for (const auto& r : d.ricezione) element(out, 2, "ricezione", r);
    if (d.errore_esteso) element(out, 2, "errore-esteso", *d.errore_esteso);
    out += "    </dati>\n";
    out += "</postacert>\n";
    return out;
}

// --- Italian legal time ---
// libstdc++ 12 has no time-zone database (std::chrono::zoned_time), and the Italian rule
// is the fixed EU one, so it is computed here rather than through TZ/localtime_r (which
// would make the process-wide TZ part of a legal timestamp).

ItalianTime italian_time(TimePoint t) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    auto day = floor<days>(secs);
    year y = year_month_day(day).year();
    auto last_sunday = [&](month m) { return sys_days(year_month_weekday_last(y, m, weekday_last(Sunday))); };
    auto dst_start = last_sunday(March) + hours(1);  // 01:00 UTC
    auto dst_end = last_sunday(October) + hours(1);
    int offset = (secs >= dst_start && secs < dst_end) ? 120 : 60;
    auto local = secs + minutes(offset);
    auto local_day = floor<days>(local);
    year_month_day ymd(local_day);
    hh_mm_ss hms(local - local_day);
    return ItalianTime{int(ymd.year()),
                       int(unsigned(ymd.month())),
                       int(unsigned(ymd.day())),
                       int(hms.hours().count()),
                       int(hms.minutes().count()),
                       int(hms.seconds().count()),
                       offset};
}

std::string ItalianTime::zona() const {
    return "+" + two(offset_minutes / 60) + two(offset_minutes % 60);
}
std::string ItalianTime::giorno() const {
    return two(day) + "/" + two(month) + "/" + std::to_string(year);
}
std::string ItalianTime::ora() const {
    return two(hour) + ":" + two(minute) + ":" + two(second);
}

std::string ItalianTime::rfc5322() const {
    using namespace std::chrono;
    static constexpr const char* wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    weekday w{sys_days(std::chrono::year(year) / month / day)};
    return std::string(wd[w.c_encoding()]) + ", " + std::to_string(day) + " " + mo[month - 1] + " " +
           std::to_string(year) + " " + ora() + " " + zona();
}

DaticertDate daticert_date(TimePoint t) {
    auto it = italian_time(t);
    return {it.zona(), it.giorno(), it.ora()};
}

}  // namespace pecd::pec
