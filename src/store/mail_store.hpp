// mail_store.hpp - domains, mailboxes, passwords and the messages kept in mailboxes
//
// MailStore runs on any Database (tables owned by module "store") plus a BlobStore for the
// message bytes. Messages are kept byte for byte as delivered; their metadata rows live in
// the database.
//
// Contract:
// - Addresses and domains are compared case-insensitively (stored lower-cased).
// - A domain listed here is one pecd accepts mail for; its route (route.hpp) says whether
//   the built-in mailboxes hold it or an LMTP/SMTP next hop. For a `local` domain only
//   existing mailboxes receive; for other routes the next hop decides.
// - Passwords are stored only as Argon2id hashes (libsodium crypto_pwhash_str) and never
//   logged; verify_password() spends the same work for unknown accounts.
// - Mailbox kind standard | receive-only; state active | deactivated | closed. Only an
//   active mailbox receives. A deactivated mailbox stays readable; closed is final (no
//   state change leaves it) and not readable.
// - deliver() is exactly-once per (mailbox, delivery key): the blob is linked first, then
//   one transaction inserts the message row, charges the quota and runs the caller's
//   `also` step (the queue marking its recipient done). A crash anywhere either leaves the
//   message absent (to be retried under the same key) or fully present with the queue
//   updated; never half. A delivery found already stored runs no `also` step.
// - A mailbox over quota is a temporary condition (SMTP 452 / retry later).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "store/blob_store.hpp"
#include "store/database.hpp"
#include "store/route.hpp"

namespace pecd::store {

enum class MailboxKind { standard, receive_only };
enum class MailboxState { active, deactivated, closed };

std::string_view to_string(MailboxKind k);
std::string_view to_string(MailboxState s);
MailboxKind parse_mailbox_kind(std::string_view s);    // ParseError, field "kind"
MailboxState parse_mailbox_state(std::string_view s);  // ParseError, field "state"

struct DomainInfo {
    std::string name;
    Route route;
    TimePoint created_at{};
};

struct NewMailbox {
    std::string address;
    std::uint64_t quota_bytes = 1ull << 30;  // 1 GiB
    MailboxKind kind = MailboxKind::standard;
    bool accepts_ordinary_mail = true;  // false: only PEC messages (receive-only registries)
};

struct MailboxInfo {
    std::int64_t id = 0;
    std::string address;
    MailboxKind kind = MailboxKind::standard;
    MailboxState state = MailboxState::active;
    std::uint64_t quota_bytes = 0;
    std::uint64_t used_bytes = 0;
    std::int64_t message_count = 0;
    bool accepts_ordinary_mail = true;
    bool has_password = false;
    std::optional<TimePoint> deactivated_at;
    TimePoint created_at{};
};

enum class Acceptance { accept, unknown_mailbox, not_active, over_quota };

// One recipient as the store sees it, read in one snapshot.
struct RecipientInfo {
    std::optional<DomainInfo> domain;  // absent: not a domain pecd accepts mail for
    Acceptance acceptance = Acceptance::unknown_mailbox;
};

struct StoredMessage {
    std::int64_t id = 0;
    std::string mail_from;
    std::uint64_t size = 0;
    std::string delivery_key;
    TimePoint received_at{};
};

enum class DeliveryOutcome { stored, already_stored, unknown_mailbox, not_active, over_quota };

class MailStore {
public:
    // Applies the store's migrations.
    MailStore(Database& db, BlobStore& blobs, const Clock& clock = SystemClock::instance());

    // --- domains ---
    void add_domain(std::string_view name, const Route& route = {});  // Error if present
    void set_route(std::string_view name, const Route& route);        // Error if absent
    std::vector<DomainInfo> domains();
    std::optional<DomainInfo> domain(std::string_view name);
    bool is_local_domain(std::string_view name) { return domain(name).has_value(); }

    // --- mailboxes ---
    std::int64_t add_mailbox(const NewMailbox& m);  // Error if present or domain unknown
    std::optional<MailboxInfo> mailbox(std::string_view address);
    std::vector<MailboxInfo> mailboxes(std::string_view domain = {});
    void set_state(std::string_view address, MailboxState state);
    void set_quota(std::string_view address, std::uint64_t bytes);
    // Whether a message of `size` bytes (0 = unknown) may be delivered to address now.
    // Addresses without a mailbox here in a domain routed to a next hop are accepted.
    Acceptance may_receive(std::string_view address, std::uint64_t size = 0) {
        return recipient(address, size).acceptance;
    }
    // may_receive() together with the address's domain. Why one call: each snapshot costs
    // more than its queries (a reader whose pages another commit invalidated reads them
    // again), and the SMTP and PEC paths ask both questions about every recipient.
    RecipientInfo recipient(std::string_view address, std::uint64_t size = 0);

    // --- passwords ---
    void set_password(std::string_view address, std::string_view password);
    std::optional<std::string> password_hash(std::string_view address);
    bool verify_password(std::string_view address, std::string_view password);

    // --- messages ---
    // Stores the file at `source` (already durable) in the mailbox; see the contract above.
    DeliveryOutcome deliver(std::string_view address, std::string_view delivery_key,
                            const std::filesystem::path& source, std::uint64_t size,
                            std::string_view mail_from, const std::function<void(Tx&)>& also = {});
    // The same for bytes not yet in any file (a receipt pecd just built): the blob is
    // written durably first. The same key stored again overwrites a blob left by a crash.
    DeliveryOutcome deliver_bytes(std::string_view address, std::string_view delivery_key, std::string_view bytes,
                                  std::string_view mail_from, const std::function<void(Tx&)>& also = {});
    // Messages of a readable mailbox, oldest first. Error if unknown or closed.
    std::vector<StoredMessage> messages(std::string_view address);
    std::string read_message(std::string_view address, std::int64_t message_id);

    Database& database() { return db_; }
    BlobStore& blobs() { return blobs_; }

    // Runs deliver()'s transaction: durable on return, rolled back and rethrown on error,
    // and it may run the function more than once (a group commit retries a change alone
    // when its batch failed). Default: Database::transact. The daemon hands deliveries to
    // the queue's group committer, so many of them share one commit and one fsync. When the
    // BlobStore defers its syncs, the writer's commit must first sync that FileSystemSync
    // (the spool's committer does, when the spool shares it).
    using Writer = std::function<void(const std::function<void(Tx&)>&)>;
    void set_writer(Writer w) { writer_ = std::move(w); }

private:
    // place_is_idempotent: placing the blob again under a stored key keeps the stored one
    // (a link), so no look-up is needed first once the mailbox's id is known.
    DeliveryOutcome deliver_blob(std::string_view address, std::string_view delivery_key, std::uint64_t size,
                                 std::string_view mail_from, const std::function<void(Tx&)>& also,
                                 const std::function<void(const std::string&)>& place_blob,
                                 bool place_is_idempotent);
    std::optional<std::int64_t> known_id(const std::string& address) const;
    void remember_id(const std::string& address, std::int64_t id);

    Database& db_;
    BlobStore& blobs_;
    const Clock& clock_;
    Writer writer_;
    // Mailbox ids by address. A mailbox is never deleted (closed is its last state) and
    // its address never names another one, so an id once read stays right.
    mutable std::mutex ids_mutex_;
    std::unordered_map<std::string, std::int64_t> ids_;
};

// Lower-cased address; Error unless it has one '@' with a non-empty local part and domain.
std::string normalize_address(std::string_view address);

}  // namespace pecd::store
