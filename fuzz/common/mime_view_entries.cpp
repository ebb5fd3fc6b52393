// mime_view_entries.cpp - the API's MIME view promises (see mime_view_entries.hpp)
#include "mime_view_entries.hpp"

#include <exception>
#include <nlohmann/json.hpp>

#include "api/mime_view.hpp"

namespace pecd::fuzz {
namespace {

// Whether the JSON the API writes can hold it (nlohmann's dump() refuses invalid UTF-8).
bool json_safe(const std::string& s) {
    try {
        (void)nlohmann::json(s).dump();
        return true;
    } catch (const nlohmann::json::exception&) {
        return false;
    }
}

}  // namespace

MimeViewOutcome mime_view_entry(std::string_view raw) {
    MimeViewOutcome out;
    try {
        auto h = api::summarize(raw);
        for (const auto* text : {&h.message_id, &h.subject, &h.from, &h.date, &h.pec_type, &h.pec_ref})
            if (!json_safe(*text)) {
                out.violation = "header text not UTF-8: " + *text;
                return out;
            }
        auto list = api::attachments(raw);
        out.attachments = list.size();
        for (const auto& a : list) {
            if (!json_safe(a.filename) || !json_safe(a.content_type)) {
                out.violation = "attachment " + std::to_string(a.index) + ": name or type not UTF-8";
                return out;
            }
            if (!api::attachment(raw, a.index)) {
                out.violation = "attachment " + std::to_string(a.index) + " listed but not found";
                return out;
            }
        }
        if (api::attachment(raw, static_cast<int>(list.size())))
            out.violation = "an attachment past the listed ones was found";
    } catch (const std::exception& e) {
        out.violation = std::string("escaped: ") + e.what();
    }
    return out;
}

}  // namespace pecd::fuzz
