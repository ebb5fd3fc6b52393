// store_config_test.cpp - the [store] section: backend choice, validation, and a
//                         PostgreSQL password that never appears in an error
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "core/error.hpp"

namespace pecd::config {
namespace {

std::string with_store(const std::string& store) {
    return "data_dir = \"/var/lib/pecd\"\n"
           "[[listener]]\nname = \"mx\"\nport = 25\n"
           "[store]\n" +
           store;
}

ParseError parse_error(const std::string& text) {
    try {
        parse_config(text);
    } catch (const ParseError& e) {
        return e;
    }
    ADD_FAILURE() << "accepted:\n" << text;
    return ParseError("accepted");
}

TEST(StoreConfig, DefaultsToEmbeddedSqlite) {
    auto c = parse_config("data_dir = \"/d\"\n[[listener]]\nname = \"mx\"\nport = 25\n");
    EXPECT_EQ(c.store.backend, "sqlite");
    EXPECT_TRUE(c.store.path.empty());
    EXPECT_TRUE(c.store.blob_dir.empty());
    c = parse_config(with_store("path = \"/srv/pecd.db\"\nblob_dir = \"/shared/blobs\"\n"));
    EXPECT_EQ(c.store.path, "/srv/pecd.db");
    EXPECT_EQ(c.store.blob_dir, "/shared/blobs");
}

TEST(StoreConfig, FileSyncIsPerFileUnlessTheFileSystemIsAsked) {
    auto c = parse_config(with_store(""));
    EXPECT_EQ(c.store.file_sync, "file");
    c = parse_config(with_store("file_sync = \"file_system\"\n"));
    EXPECT_EQ(c.store.file_sync, "file_system");
    auto e = parse_error(with_store("file_sync = \"none\"\n"));
    EXPECT_EQ(e.field(), "store.file_sync");
}

TEST(StoreConfig, PostgresqlTakesConninfoPasswordFileAndPool) {
    auto c = parse_config(with_store(
        "backend = \"postgresql\"\nconninfo = \"host=db1 dbname=pecd user=pecd\"\n"
        "password_file = \"/etc/pecd/db.password\"\npool_size = 16\nblob_dir = \"/shared/blobs\"\n"));
    EXPECT_EQ(c.store.backend, "postgresql");
    EXPECT_EQ(c.store.conninfo, "host=db1 dbname=pecd user=pecd");
    EXPECT_EQ(c.store.password_file, "/etc/pecd/db.password");
    EXPECT_EQ(c.store.pool_size, 16u);
}

TEST(StoreConfig, MistakesNameTheKeyButNeverEchoTheConninfo) {
    const std::string secret = "S3cretInConninfo";
    auto e = parse_error(with_store("backend = \"oracle\"\n"));
    EXPECT_EQ(e.field(), "store.backend");
    e = parse_error(with_store("backend = \"postgresql\"\n"));
    EXPECT_EQ(e.field(), "store.conninfo");
    e = parse_error(with_store("conninfo = \"host=db password=" + secret + "\"\n"));
    EXPECT_EQ(e.field(), "store.conninfo");
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
    e = parse_error(
        with_store("backend = \"postgresql\"\nconninfo = \"password=" + secret + "\"\npool_size = 0\n"));
    EXPECT_EQ(e.field(), "store.pool_size");
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
    e = parse_error(
        with_store("backend = \"postgresql\"\nconninfo = \"password=" + secret + "\"\npath = \"/x\"\n"));
    EXPECT_EQ(e.field(), "store.path");
    e = parse_error(
        with_store("backend = \"postgresql\"\nconninfo = \"password=" + secret + "\"\npasword = 1\n"));
    EXPECT_EQ(e.field(), "store.pasword");
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
}

}  // namespace
}  // namespace pecd::config
