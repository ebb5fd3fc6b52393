// store_check.hpp - the mailbox store's consistency: rows against message files
//
// A row of mailbox_messages names its body by blob key; the body is a file of the blob
// store. pecd writes the file before the row commits, so in normal running every row has
// its file and a file without a row exists only for the moment between the two (or after
// a crash there, when the delivery was never retried). Restoring a database and a blob
// directory backed up at different moments breaks that; check_store() finds what broke:
//   - missing: a row whose file is gone (the message's body is lost);
//   - wrong size: a file whose size is not the row's (truncated or replaced);
//   - counters: a mailbox whose used_bytes or message_count disagree with its rows
//     (quota decisions use them);
//   - orphans: files no row names. Only files whose inode has not changed for `grace`
//     count (link() and every write change it): younger ones may be a delivery whose
//     transaction is about to commit. With remove_orphans each orphan is looked up again
//     right before it is removed, so a file that a row came to name is kept.
// Reading is safe beside a running pecd; removing orphans too, within the rules above.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "store/blob_store.hpp"
#include "store/database.hpp"

namespace pecd::store {

struct StoreCheckOptions {
    std::chrono::seconds grace{3600};
    bool remove_orphans = false;
};

struct MessageProblem {
    std::string mailbox;
    std::int64_t message_id = 0;
    std::string blob_key;
    std::uint64_t expected_size = 0;
    std::uint64_t actual_size = 0;  // wrong size only
};

struct CounterProblem {
    std::string mailbox;
    std::uint64_t recorded_bytes = 0, actual_bytes = 0;
    std::int64_t recorded_messages = 0, actual_messages = 0;
};

struct StoreCheckReport {
    std::int64_t messages = 0;  // rows looked at
    std::int64_t files = 0;     // files in the blob store
    std::vector<MessageProblem> missing;
    std::vector<MessageProblem> wrong_size;
    std::vector<CounterProblem> counters;
    std::vector<std::string> orphans;  // blob keys no row names, older than the grace
    std::size_t orphans_removed = 0;
    std::size_t young_unnamed = 0;  // files no row names yet, within the grace
    bool clean() const {
        return missing.empty() && wrong_size.empty() && counters.empty() && orphans.size() == orphans_removed;
    }
};

StoreCheckReport check_store(Database& db, BlobStore& blobs, TimePoint now,
                             const StoreCheckOptions& options = {});

}  // namespace pecd::store
