// mime_view.hpp - what the API shows of a stored message: headers and attachments (GMime)
//
// Contract:
// - summarize(raw) reads the header fields the API searches and shows: Message-ID,
//   Subject (RFC 2047 decoded), From, Date, and the PEC type (X-Ricevuta value, else
//   X-Trasporto value, else "ordinary") and X-Riferimento-Message-ID. Never throws on
//   hostile input: unreadable fields are empty.
// - attachments(raw) lists the leaf parts a reader downloads: parts with a file name or
//   an attachment disposition, and every message/rfc822 part (postacert.eml of a PEC
//   envelope), numbered 0.. in document order; an enclosed message is one attachment
//   (its own parts are not listed).
// - Every text returned (header values, file names, content types) is valid UTF-8: a
//   broken sequence becomes U+FFFD, because the API writes these texts into JSON.
// - attachment(raw, index) returns that part's decoded bytes (transfer encoding undone;
//   a message/rfc822 part as its message text); nullopt when there is no such index.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pecd::api {

struct MessageHeaders {
    std::string message_id;
    std::string subject;
    std::string from;
    std::string date;
    std::string pec_type;  // "ordinary" when the message is no PEC message
    std::string pec_ref;   // X-Riferimento-Message-ID
};

struct AttachmentInfo {
    int index = 0;
    std::string filename;
    std::string content_type;
};

struct AttachmentData {
    AttachmentInfo info;
    std::string bytes;
};

MessageHeaders summarize(std::string_view raw);
std::vector<AttachmentInfo> attachments(std::string_view raw);
std::optional<AttachmentData> attachment(std::string_view raw, int index);

}  // namespace pecd::api
