// message_catalog.hpp - searchable metadata of the messages in the mailboxes
//
// The mailbox store keeps each message's bytes and envelope; the API also searches by
// header fields (subject, From, PEC type) and PEC status. The catalog (table
// api_catalog, module "api_catalog") holds those fields per stored message, parsed once
// from the message (mime_view.hpp).
//
// Contract:
// - Reads never change a message. ensure_indexed() adds catalog rows for messages that
//   have none (one transaction) and is called before a search; get() of a message not
//   yet catalogued parses it on the fly and writes nothing.
// - search() pages in delivery order (id ascending); `total` counts every match.
// - Text filters (sender, subject) are case-insensitive substring matches; `sender`
//   matches the From header or the envelope sender.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/mime_view.hpp"
#include "api/pec_view.hpp"
#include "core/clock.hpp"
#include "store/blob_store.hpp"
#include "store/database.hpp"

namespace pecd::api {

struct CatalogEntry {
    std::int64_t id = 0;
    TimePoint received_at{};
    std::uint64_t size = 0;
    std::string envelope_from;
    MessageHeaders headers;
    std::string status;
};

struct CatalogQuery {
    std::optional<TimePoint> from;  // inclusive
    std::optional<TimePoint> to;    // exclusive
    std::string sender;
    std::string subject;
    std::string type;
    std::string status;
    std::size_t limit = 50;
    std::size_t offset = 0;
};

struct CatalogPage {
    std::vector<CatalogEntry> items;
    std::int64_t total = 0;
};

class MessageCatalog {
public:
    MessageCatalog(store::Database& db, store::BlobStore& blobs, const PecView& pec);

    void ensure_indexed(std::int64_t mailbox_id);
    CatalogPage search(std::int64_t mailbox_id, const CatalogQuery& q);
    std::optional<CatalogEntry> get(std::int64_t mailbox_id, std::int64_t message_id);
    // Receipts in the mailbox that refer to this message, and the message a receipt refers to.
    std::vector<CatalogEntry> linked(std::int64_t mailbox_id, const CatalogEntry& entry);
    // The stored bytes; nullopt when the message is not in that mailbox.
    std::optional<std::string> raw(std::int64_t mailbox_id, std::int64_t message_id);

private:
    store::Database& db_;
    store::BlobStore& blobs_;
    const PecView& pec_;
};

}  // namespace pecd::api
