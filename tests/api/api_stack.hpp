// api_stack.hpp - the mailbox API without sockets, for the API tests: a SQLite store with
// the domains a.example and b.example, the legal log, the lifecycle, the message catalog,
// and a token verifier reading DIR/jwks.json (written by the test before). Header-only.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>

#include "api/service.hpp"
#include "core/error.hpp"
#include "log/legal_log.hpp"
#include "store/mail_store.hpp"

namespace pecd::api::test {

struct ApiStack {
    ApiStack(const std::filesystem::path& dir, const Clock& clock)
        : db(store::open_sqlite((dir / "pecd.db").string())),
          blobs(dir / "mailboxes"),
          store(*db, blobs, clock),
          log(*db),
          lifecycle(store, clock),
          catalog(*db, blobs, pec),
          tokens(keys(dir), TokenPolicy{"https://idp.test", "pecd-api", std::chrono::seconds(30)}, clock),
          api(lifecycle, catalog, pec, tokens) {
        store.add_domain("a.example");
        store.add_domain("b.example");
        if (!tokens.load()) throw Error("test: the JWK Set in " + dir.string() + " did not load");
    }

    std::unique_ptr<store::Database> db;
    store::BlobStore blobs;
    store::MailStore store;
    log::LegalLog log;
    store::MailboxLifecycle lifecycle;
    StorePecView pec;
    MessageCatalog catalog;
    TokenVerifier tokens;
    MailboxApi api;

private:
    static KeySettings keys(const std::filesystem::path& dir) {
        KeySettings k;
        k.jwks_file = dir / "jwks.json";
        return k;
    }
};

}  // namespace pecd::api::test
