// mailbox_lifecycle.hpp - the rules of a mailbox's life: create, activate, modify,
// deactivate, the read-only period of receive-only mailboxes, and final closure
//
// MailStore keeps the state; this class decides which transitions are allowed, at the
// time of the Clock it is given.
//
// Contract:
// - A deactivated mailbox receives nothing (MailStore::may_receive / deliver).
// - A deactivated receive-only mailbox is never reactivated: it stays readable for
//   `read_only_period` (180 days) after its deactivation, then it is closed for good.
//   effective_state() already reports it closed from that instant on; close_expired()
//   writes the closure for every such mailbox (run periodically and on access).
// - A closed mailbox (any kind) never changes state again and is not readable. Its
//   address stays taken: a new mailbox is always a different address.
// - A deactivated standard mailbox may be activated again.
// - Refusals throw LifecycleConflict (the caller answers 409), unknown mailboxes
//   NoSuchMailbox (404); bad input ParseError (field named).
// - Each write runs in Database::transact(), which joins a transaction the caller
//   already has open on this thread (so an audit record can commit with it).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "store/mail_store.hpp"

namespace pecd::store {

class LifecycleConflict : public Error {
public:
    using Error::Error;
};
class NoSuchMailbox : public Error {
public:
    using Error::Error;
};

struct LifecyclePolicy {
    std::chrono::seconds read_only_period = std::chrono::hours(24 * 180);
};

struct MailboxChanges {
    std::optional<std::uint64_t> quota_bytes;
};

class MailboxLifecycle {
public:
    MailboxLifecycle(MailStore& store, const Clock& clock, LifecyclePolicy policy = {});

    std::int64_t create(const NewMailbox& m);  // LifecycleConflict when the address exists
    void activate(const std::string& address);
    void deactivate(const std::string& address);
    void modify(const std::string& address, const MailboxChanges& changes);
    // Closes every receive-only mailbox whose read-only period has ended; returns them.
    std::vector<std::string> close_expired();
    // The mailboxes close_expired() would close now; and closing one of them (a no-op
    // when it is not due), so that each closure can be audited on its own.
    std::vector<std::string> due_for_closure();
    bool close_if_due(const std::string& address);

    // The state as the rules see it now (a deactivated receive-only mailbox past its
    // period is closed even before close_expired() has written it).
    MailboxState effective_state(const MailboxInfo& m) const;
    // When the read-only period of a deactivated receive-only mailbox ends.
    std::optional<TimePoint> closes_at(const MailboxInfo& m) const;
    bool readable(const MailboxInfo& m) const { return effective_state(m) != MailboxState::closed; }

    MailStore& store() { return store_; }
    const Clock& clock() const { return clock_; }

private:
    MailboxInfo existing(const std::string& address);

    MailStore& store_;
    const Clock& clock_;
    LifecyclePolicy policy_;
};

}  // namespace pecd::store
