// file_system_sync_test.cpp - one syncfs per file system, and only when something was written
#include "core/file_system_sync.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.hpp"
#include "temp_dir.hpp"

namespace pecd {
namespace {

dev_t device_of(const std::filesystem::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) throw std::runtime_error("stat " + p.string());
    return st.st_dev;
}

TEST(FileSystemSync, SyncsOnlyAfterAMarkAndAlwaysWhenAsked) {
    test::TempDir dir("pecd-fss");
    FileSystemSync sync({dir.path()});
    sync.sync_marked();
    EXPECT_EQ(sync.rounds(), 0u) << "nothing was written";
    sync.mark();
    sync.sync_marked();
    EXPECT_EQ(sync.rounds(), 1u);
    sync.sync_marked();
    EXPECT_EQ(sync.rounds(), 1u) << "the mark was taken by the sync before";
    sync.mark();
    sync.mark();
    sync.sync_marked();
    EXPECT_EQ(sync.rounds(), 2u) << "two marks before one sync need one sync";
    sync.sync();
    EXPECT_EQ(sync.rounds(), 3u);
    sync.sync_marked();
    EXPECT_EQ(sync.rounds(), 3u);
}

TEST(FileSystemSync, DirectoriesOnOneFileSystemAreSyncedOnce) {
    test::TempDir a("pecd-fss-a"), b("pecd-fss-b");
    std::filesystem::create_directory(a.path() / "sub");
    FileSystemSync same({a.path(), b.path(), a.path() / "sub"});
    EXPECT_EQ(same.file_systems(), 1u);
    // /dev/shm is a tmpfs of its own on Linux; /proc is not a place files are written to,
    // but a directory on another file system all the same.
    const std::filesystem::path other = device_of("/dev/shm") != device_of(a.path()) ? "/dev/shm" : "/proc";
    ASSERT_NE(device_of(other), device_of(a.path()));
    FileSystemSync two({a.path(), other, b.path()});
    EXPECT_EQ(two.file_systems(), 2u);
    two.mark();
    two.sync_marked();
    EXPECT_EQ(two.rounds(), 1u);
}

TEST(FileSystemSync, AMissingDirectoryIsAnErrorNamingIt) {
    test::TempDir dir("pecd-fss");
    try {
        FileSystemSync sync({dir.path(), dir.path() / "missing"});
        FAIL() << "opened a missing directory";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace pecd
