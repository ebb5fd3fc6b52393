// local_transport.hpp - delivery into the built-in mailboxes (route `local`)
//
// Each recipient's message is stored with MailStore::deliver() under the delivery key
// "<queue id>.<recipient id>", and the queue row is marked delivered in the same
// transaction, so a crash at any point delivers the message exactly once.
// Outcomes: stored → delivered; unknown mailbox → failed 5.1.1; mailbox not active →
// failed 5.2.1; over quota → deferred 4.2.2; store error → deferred 4.3.0.
#pragma once

#include "queue/runner.hpp"
#include "store/mail_store.hpp"

namespace pecd::delivery {

class LocalTransport final : public queue::Transport {
public:
    explicit LocalTransport(store::MailStore& store) : store_(store) {}
    std::vector<queue::RecipientResult> deliver(const queue::DeliveryAttempt& attempt) override;

private:
    store::MailStore& store_;
};

}  // namespace pecd::delivery
