// mime_view_entries.hpp - what the API shows of a stored message, from arbitrary bytes,
// for the mime_view fuzz target and the API's mutation test
//
// Mailboxes keep what arrived (an anomaly envelope carries ordinary mail from anyone),
// and the API parses it to list headers and attachments. mime_view_entry() reads the
// bytes the way the API does and checks:
//   - nothing throws;
//   - every text shown (header fields, attachment names and types) is valid UTF-8, so the
//     JSON the API writes can hold it;
//   - every attachment listed can be fetched, and the index after the last one cannot.
// A broken promise is reported in `violation` (empty when all held).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pecd::fuzz {

struct MimeViewOutcome {
    std::string violation;        // empty: every promise above held
    std::size_t attachments = 0;  // attachments listed
};

MimeViewOutcome mime_view_entry(std::string_view raw);

}  // namespace pecd::fuzz
