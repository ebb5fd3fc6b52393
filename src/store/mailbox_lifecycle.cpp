// mailbox_lifecycle.cpp - allowed mailbox transitions and the read-only period (see mailbox_lifecycle.hpp)
#include "store/mailbox_lifecycle.hpp"

#include "core/strings.hpp"

namespace pecd::store {

MailboxLifecycle::MailboxLifecycle(MailStore& store, const Clock& clock, LifecyclePolicy policy)
    : store_(store), clock_(clock), policy_(policy) {}

MailboxInfo MailboxLifecycle::existing(const std::string& address) {
    auto m = store_.mailbox(normalize_address(address));
    if (!m) throw NoSuchMailbox("no mailbox " + normalize_address(address));
    return *m;
}

std::int64_t MailboxLifecycle::create(const NewMailbox& m) {
    auto address = normalize_address(m.address);
    if (store_.mailbox(address))
        throw LifecycleConflict("mailbox " + address +
                                " exists or existed; an address is never given to a second mailbox");
    if (!store_.domain(domain_of(address)))
        throw LifecycleConflict("domain " + domain_of(address) + " is not a local domain");
    if (m.quota_bytes == 0) throw ParseError("must be greater than zero", 0, "quota_bytes");
    return store_.add_mailbox(m);
}

void MailboxLifecycle::activate(const std::string& address) {
    auto m = existing(address);
    auto state = effective_state(m);
    if (state == MailboxState::closed)
        throw LifecycleConflict("mailbox " + m.address + " is closed for good");
    if (state == MailboxState::active) return;
    if (m.kind == MailboxKind::receive_only)
        throw LifecycleConflict(
            "mailbox " + m.address +
            " is a deactivated receive-only mailbox and is never reactivated; create a new "
            "mailbox (a different address)");
    store_.set_state(m.address, MailboxState::active);
}

void MailboxLifecycle::deactivate(const std::string& address) {
    auto m = existing(address);
    auto state = effective_state(m);
    if (state == MailboxState::closed)
        throw LifecycleConflict("mailbox " + m.address + " is closed for good");
    if (state == MailboxState::deactivated) return;
    store_.set_state(m.address, MailboxState::deactivated);
}

void MailboxLifecycle::modify(const std::string& address, const MailboxChanges& changes) {
    auto m = existing(address);
    if (effective_state(m) == MailboxState::closed)
        throw LifecycleConflict("mailbox " + m.address + " is closed for good");
    if (changes.quota_bytes) {
        if (*changes.quota_bytes == 0) throw ParseError("must be greater than zero", 0, "quota_bytes");
        store_.set_quota(m.address, *changes.quota_bytes);
    }
}

std::vector<std::string> MailboxLifecycle::due_for_closure() {
    std::vector<std::string> due;
    for (auto& m : store_.mailboxes())
        if (m.state == MailboxState::deactivated && effective_state(m) == MailboxState::closed)
            due.push_back(m.address);
    return due;
}

bool MailboxLifecycle::close_if_due(const std::string& address) {
    auto m = store_.mailbox(address);
    if (!m || m->state != MailboxState::deactivated || effective_state(*m) != MailboxState::closed)
        return false;
    store_.set_state(m->address, MailboxState::closed);
    return true;
}

std::vector<std::string> MailboxLifecycle::close_expired() {
    std::vector<std::string> closed;
    for (auto& a : due_for_closure())
        if (close_if_due(a)) closed.push_back(a);
    return closed;
}

std::optional<TimePoint> MailboxLifecycle::closes_at(const MailboxInfo& m) const {
    if (m.kind != MailboxKind::receive_only || m.state == MailboxState::active || !m.deactivated_at)
        return std::nullopt;
    return *m.deactivated_at + policy_.read_only_period;
}

MailboxState MailboxLifecycle::effective_state(const MailboxInfo& m) const {
    if (m.state == MailboxState::deactivated) {
        auto end = closes_at(m);
        if (end && clock_.now() >= *end) return MailboxState::closed;
    }
    return m.state;
}

}  // namespace pecd::store
