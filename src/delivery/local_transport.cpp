// local_transport.cpp - delivery into the built-in mailboxes (see local_transport.hpp)
#include "delivery/local_transport.hpp"

#include "core/error.hpp"

namespace pecd::delivery {

using queue::Outcome;
using queue::RecipientResult;

std::vector<RecipientResult> LocalTransport::deliver(const queue::DeliveryAttempt& a) {
    std::vector<RecipientResult> out;
    for (const auto& r : a.recipients) {
        RecipientResult res{r.id, Outcome::deferred, "4.3.0", "", "", false};
        try {
            auto key = a.message.id + "." + std::to_string(r.id);
            queue::RecipientUpdate done{r.id, queue::RecipientState::delivered, r.attempts + 1, {}, "stored"};
            auto outcome =
                store_.deliver(r.address, key, a.data, a.message.size, a.message.envelope.mail_from,
                               [&](store::Tx& tx) { queue::Spool::apply_updates(tx, a.message.id, {done}); });
            switch (outcome) {
                case store::DeliveryOutcome::stored:
                    res = {r.id, Outcome::delivered, "2.0.0", "250 2.0.0 stored", "", true};
                    break;
                case store::DeliveryOutcome::already_stored:  // the queue row is the runner's to record
                    res = {r.id, Outcome::delivered, "2.0.0", "250 2.0.0 already stored", "", false};
                    break;
                case store::DeliveryOutcome::unknown_mailbox:
                    res = {r.id,    Outcome::failed,
                           "5.1.1", "550 5.1.1 <" + r.address + ">: mailbox unknown",
                           "",      false};
                    break;
                case store::DeliveryOutcome::not_active:
                    res = {r.id,    Outcome::failed,
                           "5.2.1", "550 5.2.1 <" + r.address + ">: mailbox disabled",
                           "",      false};
                    break;
                case store::DeliveryOutcome::over_quota:
                    res = {r.id,    Outcome::deferred,
                           "4.2.2", "452 4.2.2 <" + r.address + ">: mailbox full",
                           "",      false};
                    break;
            }
        } catch (const std::exception& e) {
            res.diagnostic = std::string("local delivery: ") + e.what();
        }
        out.push_back(std::move(res));
    }
    return out;
}

}  // namespace pecd::delivery
