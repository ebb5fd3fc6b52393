// mail_store.cpp - domains, mailboxes, passwords, stored messages (see mail_store.hpp)
#include "store/mail_store.hpp"

#include <sodium.h>

#include <chrono>

#include "core/calendar.hpp"
#include "core/error.hpp"
#include "core/strings.hpp"

namespace pecd::store {
namespace {

const std::vector<Migration> kMigrations = {
    {1,
     "CREATE TABLE domains ("
     " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, route TEXT NOT NULL DEFAULT 'local',"
     " created_at INTEGER NOT NULL);"
     "CREATE TABLE mailboxes ("
     " id INTEGER PRIMARY KEY, address TEXT NOT NULL UNIQUE,"
     " domain_id INTEGER NOT NULL REFERENCES domains(id),"
     " password_hash TEXT,"
     " quota_bytes BIGINT NOT NULL, used_bytes BIGINT NOT NULL DEFAULT 0,"
     " message_count BIGINT NOT NULL DEFAULT 0,"
     " kind TEXT NOT NULL CHECK (kind IN ('standard', 'receive-only')),"
     " state TEXT NOT NULL CHECK (state IN ('active', 'deactivated', 'closed')),"
     " deactivated_at BIGINT, accepts_ordinary INTEGER NOT NULL DEFAULT 1,"
     " created_at BIGINT NOT NULL);"
     "CREATE TABLE mailbox_messages ("
     " id INTEGER PRIMARY KEY, mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
     " delivery_key TEXT NOT NULL, blob_key TEXT NOT NULL, size BIGINT NOT NULL,"
     " mail_from TEXT NOT NULL, received_at BIGINT NOT NULL,"
     " UNIQUE (mailbox_id, delivery_key))"},
};

std::int64_t to_unix(TimePoint t) {
    return stored_count<std::chrono::seconds>(t);
}
TimePoint from_unix(std::int64_t s) {
    return stored_time<std::chrono::seconds>(s);
}

std::string lower_domain(std::string_view name) {
    auto d = to_lower(trim(name));
    if (d.empty() || d.size() > 253 || d.find('@') != std::string::npos || d.find(' ') != std::string::npos ||
        d.front() == '.' || d.back() == '.')
        throw ParseError("invalid domain \"" + std::string(name) + "\"", 0, "domain");
    return d;
}

MailboxInfo mailbox_from_row(const Row& r) {
    MailboxInfo m;
    m.id = r.integer(0);
    m.address = r.text(1);
    m.kind = parse_mailbox_kind(r.text(2));
    m.state = parse_mailbox_state(r.text(3));
    m.quota_bytes = static_cast<std::uint64_t>(r.integer(4));
    m.used_bytes = static_cast<std::uint64_t>(r.integer(5));
    m.message_count = r.integer(6);
    m.accepts_ordinary_mail = r.integer(7) != 0;
    m.has_password = !r.is_null(8);
    if (!r.is_null(9)) m.deactivated_at = from_unix(r.integer(9));
    m.created_at = from_unix(r.integer(10));
    return m;
}

constexpr const char* kMailboxColumns =
    "SELECT id, address, kind, state, quota_bytes, used_bytes, message_count, accepts_ordinary,"
    " password_hash, deactivated_at, created_at FROM mailboxes";

// The look-ups shared by the one-snapshot calls below: `name` and `address` lower-cased.
std::optional<DomainInfo> domain_in(Tx& tx, const std::string& name) {
    auto r = tx.query_one("SELECT name, route, created_at FROM domains WHERE name = ?", {name});
    if (!r) return std::nullopt;
    return DomainInfo{r->text(0), parse_route(r->text(1)), from_unix(r->integer(2))};
}

std::optional<MailboxInfo> mailbox_in(Tx& tx, const std::string& address) {
    auto r = tx.query_one(std::string(kMailboxColumns) + " WHERE address = ?", {address});
    if (!r) return std::nullopt;
    return mailbox_from_row(*r);
}

void init_sodium() {
    static const int rc = sodium_init();
    if (rc < 0) throw Error("libsodium initialisation failed");
}

// A hash verified for unknown accounts, so that their answer takes as long as a real one.
const std::string& decoy_hash() {
    static const std::string h = [] {
        char out[crypto_pwhash_STRBYTES];
        const char pw[] = "decoy password for unknown accounts";
        if (crypto_pwhash_str(out, pw, sizeof pw - 1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
            throw TemporaryError("out of memory hashing a password");
        return std::string(out);
    }();
    return h;
}

}  // namespace

std::string_view to_string(MailboxKind k) {
    return k == MailboxKind::standard ? "standard" : "receive-only";
}

std::string_view to_string(MailboxState s) {
    switch (s) {
        case MailboxState::active:
            return "active";
        case MailboxState::deactivated:
            return "deactivated";
        case MailboxState::closed:
            return "closed";
    }
    return "active";
}

MailboxKind parse_mailbox_kind(std::string_view s) {
    if (s == "standard") return MailboxKind::standard;
    if (s == "receive-only") return MailboxKind::receive_only;
    throw ParseError("unknown mailbox kind \"" + std::string(s) + "\" (standard or receive-only)", 0, "kind");
}

MailboxState parse_mailbox_state(std::string_view s) {
    if (s == "active") return MailboxState::active;
    if (s == "deactivated") return MailboxState::deactivated;
    if (s == "closed") return MailboxState::closed;
    throw ParseError("unknown mailbox state \"" + std::string(s) + "\" (active, deactivated or closed)", 0,
                     "state");
}

std::string normalize_address(std::string_view address) {
    auto a = to_lower(trim(address));
    auto at = a.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == a.size() || a.find('@', at + 1) != std::string::npos)
        throw ParseError("invalid address \"" + std::string(address) + "\"", 0, "address");
    for (char c : a)
        if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>')
            throw ParseError("invalid address \"" + std::string(address) + "\"", 0, "address");
    return a;
}

MailStore::MailStore(Database& db, BlobStore& blobs, const Clock& clock)
    : db_(db), blobs_(blobs), clock_(clock) {
    init_sodium();
    db_.migrate("store", kMigrations);
}

// --- domains ---

void MailStore::add_domain(std::string_view name, const Route& route) {
    auto d = lower_domain(name);
    db_.transact([&](Tx& tx) {
        if (tx.query_one("SELECT 1 FROM domains WHERE name = ?", {d}))
            throw Error("domain " + d + " already exists");
        tx.exec("INSERT INTO domains (name, route, created_at) VALUES (?, ?, ?)",
                {d, to_string(route), to_unix(clock_.now())});
    });
}

void MailStore::set_route(std::string_view name, const Route& route) {
    auto d = lower_domain(name);
    db_.transact([&](Tx& tx) {
        if (tx.exec("UPDATE domains SET route = ? WHERE name = ?", {to_string(route), d}) == 0)
            throw Error("no domain " + d);
    });
}

std::vector<DomainInfo> MailStore::domains() {
    std::vector<DomainInfo> out;
    db_.read([&](Tx& tx) {
        for (auto& r : tx.query("SELECT name, route, created_at FROM domains ORDER BY name"))
            out.push_back({r.text(0), parse_route(r.text(1)), from_unix(r.integer(2))});
    });
    return out;
}

std::optional<DomainInfo> MailStore::domain(std::string_view name) {
    std::optional<DomainInfo> out;
    auto d = to_lower(trim(name));
    db_.read([&](Tx& tx) { out = domain_in(tx, d); });
    return out;
}

// --- mailboxes ---

std::int64_t MailStore::add_mailbox(const NewMailbox& m) {
    auto address = normalize_address(m.address);
    auto d = domain_of(address);
    std::int64_t id = 0;
    db_.transact([&](Tx& tx) {
        auto dom = tx.query_one("SELECT id FROM domains WHERE name = ?", {d});
        if (!dom) throw Error("domain " + d + " is not a local domain (add it first)");
        if (tx.query_one("SELECT 1 FROM mailboxes WHERE address = ?", {address}))
            throw Error("mailbox " + address + " already exists");
        id = tx.insert(
            "INSERT INTO mailboxes (address, domain_id, quota_bytes, kind, state, accepts_ordinary, "
            "created_at)"
            " VALUES (?, ?, ?, ?, 'active', ?, ?)",
            {address, dom->integer(0), static_cast<std::int64_t>(m.quota_bytes),
             std::string(to_string(m.kind)), std::int64_t{m.accepts_ordinary_mail ? 1 : 0},
             to_unix(clock_.now())});
    });
    return id;
}

std::optional<MailboxInfo> MailStore::mailbox(std::string_view address) {
    std::optional<MailboxInfo> out;
    auto a = to_lower(trim(address));
    db_.read([&](Tx& tx) { out = mailbox_in(tx, a); });
    return out;
}

std::vector<MailboxInfo> MailStore::mailboxes(std::string_view domain) {
    std::vector<MailboxInfo> out;
    db_.read([&](Tx& tx) {
        std::vector<Row> rows;
        if (domain.empty())
            rows = tx.query(std::string(kMailboxColumns) + " ORDER BY address");
        else
            rows = tx.query(std::string(kMailboxColumns) +
                                " WHERE domain_id = (SELECT id FROM domains WHERE name = ?) ORDER BY address",
                            {to_lower(trim(domain))});
        for (auto& r : rows) out.push_back(mailbox_from_row(r));
    });
    return out;
}

void MailStore::set_state(std::string_view address, MailboxState state) {
    auto a = normalize_address(address);
    db_.transact([&](Tx& tx) {
        auto r = tx.query_one("SELECT state FROM mailboxes WHERE address = ?", {a});
        if (!r) throw Error("no mailbox " + a);
        auto current = parse_mailbox_state(r->text(0));
        if (current == state) return;
        if (current == MailboxState::closed) throw Error("mailbox " + a + " is closed for good");
        Value deactivated_at = nullptr;
        if (state != MailboxState::active) deactivated_at = to_unix(clock_.now());
        if (state == MailboxState::closed && current == MailboxState::deactivated)
            deactivated_at =
                tx.query_one("SELECT deactivated_at FROM mailboxes WHERE address = ?", {a})->at(0);
        tx.exec("UPDATE mailboxes SET state = ?, deactivated_at = ? WHERE address = ?",
                {std::string(to_string(state)), deactivated_at, a});
    });
}

void MailStore::set_quota(std::string_view address, std::uint64_t bytes) {
    auto a = normalize_address(address);
    db_.transact([&](Tx& tx) {
        if (tx.exec("UPDATE mailboxes SET quota_bytes = ? WHERE address = ?",
                    {static_cast<std::int64_t>(bytes), a}) == 0)
            throw Error("no mailbox " + a);
    });
}

RecipientInfo MailStore::recipient(std::string_view address, std::uint64_t size) {
    RecipientInfo out;
    auto a = to_lower(trim(address));
    std::optional<MailboxInfo> m;
    db_.read([&](Tx& tx) {
        out.domain = domain_in(tx, domain_of(a));
        if (out.domain) m = mailbox_in(tx, a);
    });
    if (!out.domain) return out;  // unknown_mailbox
    if (!m) {
        // Domains routed to a next hop (LMTP, SMTP) have their mailboxes there.
        if (out.domain->route.kind != Route::Kind::local) out.acceptance = Acceptance::accept;
        return out;
    }
    if (m->state != MailboxState::active) out.acceptance = Acceptance::not_active;
    // A full mailbox refuses even messages of unknown size: one byte would not fit either.
    else if (m->used_bytes + std::max<std::uint64_t>(size, 1) > m->quota_bytes)
        out.acceptance = Acceptance::over_quota;
    else
        out.acceptance = Acceptance::accept;
    return out;
}

// --- passwords ---

void MailStore::set_password(std::string_view address, std::string_view password) {
    init_sodium();
    if (password.empty()) throw Error("empty password");
    auto a = normalize_address(address);
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        throw TemporaryError("out of memory hashing a password");
    std::string hash(out);
    sodium_memzero(out, sizeof out);
    db_.transact([&](Tx& tx) {
        if (tx.exec("UPDATE mailboxes SET password_hash = ? WHERE address = ?", {hash, a}) == 0)
            throw Error("no mailbox " + a);
    });
}

std::optional<std::string> MailStore::password_hash(std::string_view address) {
    std::optional<std::string> out;
    auto a = to_lower(trim(address));
    db_.read([&](Tx& tx) {
        auto r = tx.query_one("SELECT password_hash, state FROM mailboxes WHERE address = ?", {a});
        if (r && !r->is_null(0) && r->text(1) != "closed") out = r->text(0);
    });
    return out;
}

bool MailStore::verify_password(std::string_view address, std::string_view password) {
    init_sodium();
    auto hash = password_hash(address);
    const std::string& h = hash ? *hash : decoy_hash();
    bool ok = crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
    return ok && hash.has_value();
}

// --- messages ---

DeliveryOutcome MailStore::deliver(std::string_view address, std::string_view delivery_key,
                                   const std::filesystem::path& source, std::uint64_t size,
                                   std::string_view mail_from, const std::function<void(Tx&)>& also) {
    return deliver_blob(
        address, delivery_key, size, mail_from, also,
        [&](const std::string& blob_key) { blobs_.link_from(blob_key, source); }, true);
}

DeliveryOutcome MailStore::deliver_bytes(std::string_view address, std::string_view delivery_key,
                                         std::string_view bytes, std::string_view mail_from,
                                         const std::function<void(Tx&)>& also) {
    // put() replaces a blob a crash left behind; deliver_blob() never calls it for a key
    // already stored.
    return deliver_blob(
        address, delivery_key, bytes.size(), mail_from, also,
        [&](const std::string& blob_key) { blobs_.put(blob_key, bytes); }, false);
}

std::optional<std::int64_t> MailStore::known_id(const std::string& address) const {
    std::lock_guard lock(ids_mutex_);
    auto it = ids_.find(address);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
}

void MailStore::remember_id(const std::string& address, std::int64_t id) {
    std::lock_guard lock(ids_mutex_);
    if (ids_.size() < 100000) ids_.emplace(address, id);
}

DeliveryOutcome MailStore::deliver_blob(std::string_view address, std::string_view delivery_key,
                                        std::uint64_t size, std::string_view mail_from,
                                        const std::function<void(Tx&)>& also,
                                        const std::function<void(const std::string&)>& place_blob,
                                        bool place_is_idempotent) {
    auto a = to_lower(trim(address));
    // The look-up answers early (unknown, not active, stored before) and keeps put() from
    // writing over a stored blob. A link cannot replace a stored blob, and the transaction
    // below checks everything again, so a known mailbox is linked without it: one read
    // snapshot less per delivery, on the busiest path of a provider.
    auto id = place_is_idempotent ? known_id(a) : std::nullopt;
    if (!id) {
        std::optional<MailboxInfo> m;
        bool present = false;
        db_.read([&](Tx& tx) {
            m = mailbox_in(tx, a);
            if (!m) return;
            present = tx.query_one("SELECT 1 FROM mailbox_messages WHERE mailbox_id = ? AND delivery_key = ?",
                                   {m->id, std::string(delivery_key)})
                          .has_value();
        });
        if (!m) return DeliveryOutcome::unknown_mailbox;
        remember_id(a, m->id);
        // Stored by an earlier attempt, whose transaction ran `also` with it: running it
        // again would record a second receipt or outcome for one delivery.
        if (present) return DeliveryOutcome::already_stored;
        if (m->state != MailboxState::active) return DeliveryOutcome::not_active;
        id = m->id;
    }
    std::string blob_key = "m" + std::to_string(*id) + "-" + std::string(delivery_key);
    check_blob_key(blob_key);
    place_blob(blob_key);
    DeliveryOutcome outcome = DeliveryOutcome::stored;
    auto work = [&](Tx& tx) {
        outcome = DeliveryOutcome::stored;
        auto r = tx.query_one("SELECT state, quota_bytes, used_bytes FROM mailboxes WHERE id = ?", {*id});
        if (tx.query_one("SELECT 1 FROM mailbox_messages WHERE mailbox_id = ? AND delivery_key = ?",
                         {*id, std::string(delivery_key)})) {
            // Stored by another attempt since the look-up above.
            outcome = DeliveryOutcome::already_stored;
            return;
        } else if (!r || r->text(0) != "active") {
            outcome = DeliveryOutcome::not_active;
            return;
        } else if (static_cast<std::uint64_t>(r->integer(2)) + size >
                   static_cast<std::uint64_t>(r->integer(1))) {
            outcome = DeliveryOutcome::over_quota;
            return;
        } else {
            tx.exec(
                "INSERT INTO mailbox_messages (mailbox_id, delivery_key, blob_key, size, mail_from, "
                "received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                {*id, std::string(delivery_key), blob_key, static_cast<std::int64_t>(size),
                 std::string(mail_from), to_unix(clock_.now())});
            tx.exec(
                "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE "
                "id = ?",
                {static_cast<std::int64_t>(size), *id});
        }
        if (also) also(tx);
    };
    if (writer_) {
        writer_(work);
    } else {
        blobs_.make_durable();
        db_.transact(work);
    }
    if (outcome == DeliveryOutcome::not_active || outcome == DeliveryOutcome::over_quota)
        blobs_.remove(blob_key);
    return outcome;
}

std::vector<StoredMessage> MailStore::messages(std::string_view address) {
    auto m = mailbox(address);
    if (!m) throw Error("no mailbox " + std::string(address));
    if (m->state == MailboxState::closed) throw Error("mailbox " + m->address + " is closed");
    std::vector<StoredMessage> out;
    db_.read([&](Tx& tx) {
        for (auto& r : tx.query("SELECT id, mail_from, size, delivery_key, received_at FROM mailbox_messages"
                                " WHERE mailbox_id = ? ORDER BY id",
                                {m->id}))
            out.push_back({r.integer(0), r.text(1), static_cast<std::uint64_t>(r.integer(2)), r.text(3),
                           from_unix(r.integer(4))});
    });
    return out;
}

std::string MailStore::read_message(std::string_view address, std::int64_t message_id) {
    auto m = mailbox(address);
    if (!m) throw Error("no mailbox " + std::string(address));
    if (m->state == MailboxState::closed) throw Error("mailbox " + m->address + " is closed");
    std::string key;
    db_.read([&](Tx& tx) {
        auto r = tx.query_one("SELECT blob_key FROM mailbox_messages WHERE id = ? AND mailbox_id = ?",
                              {message_id, m->id});
        if (r) key = r->text(0);
    });
    if (key.empty()) throw Error("no message " + std::to_string(message_id) + " in " + m->address);
    return blobs_.get(key);
}

}  // namespace pecd::store
