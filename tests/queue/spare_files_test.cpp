// spare_files_test.cpp - spool files reused by inode, never while another name holds them
#include "queue/spare_files.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "temp_dir.hpp"

namespace pecd::queue {
namespace {

ino_t inode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_ino;
}

void write_and_close(int fd, std::string_view bytes) {
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

class SpareFilesTest : public ::testing::Test {
protected:
    std::filesystem::path msg(const std::string& name) { return dir.path() / "msg" / name; }
    void SetUp() override { fs::ensure_dir(dir.path() / "msg", 0750); }
    test::TempDir dir;
};

TEST_F(SpareFilesTest, RemovedFileIsReusedEmptyUnderTheNewName) {
    SpareFiles spares(dir.path() / "spare", 8, true);
    write_and_close(spares.create(msg("a")), "first message bytes");
    auto inode = inode_of(msg("a"));
    spares.remove(msg("a"));
    EXPECT_FALSE(std::filesystem::exists(msg("a")));
    EXPECT_EQ(spares.spares(), 1u);
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "spare" / std::to_string(inode)));

    write_and_close(spares.create(msg("b")), "xy");
    EXPECT_EQ(inode_of(msg("b")), inode);
    EXPECT_EQ(fs::read_file(msg("b")), "xy");
    EXPECT_EQ(spares.spares(), 0u);
}

TEST_F(SpareFilesTest, OverwrittenSpareHoldsExactlyTheNewBytes) {
    SpareFiles spares(dir.path() / "spare", 8, true);
    std::uint64_t stale = 99;
    int fd = spares.create_overwriting(msg("a"), stale);
    EXPECT_EQ(stale, 0u);  // a new file: nothing to cut
    write_and_close(fd, "a longer first message");
    auto inode = inode_of(msg("a"));
    spares.remove(msg("a"));

    // Shorter than the old bytes: the rest is cut.
    fd = spares.create_overwriting(msg("b"), stale);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(inode_of(msg("b")), inode);
    EXPECT_EQ(stale, 22u);
    ASSERT_EQ(::write(fd, "short", 5), 5);
    ASSERT_EQ(SpareFiles::trim(fd, 5, stale), 0);
    ::close(fd);
    EXPECT_EQ(fs::read_file(msg("b")), "short");
    spares.remove(msg("b"));

    // Longer than the old bytes: nothing is cut.
    fd = spares.create_overwriting(msg("c"), stale);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(stale, 5u);
    const std::string longer = "a message longer than the last one";
    ASSERT_EQ(::write(fd, longer.data(), longer.size()), static_cast<ssize_t>(longer.size()));
    ASSERT_EQ(SpareFiles::trim(fd, longer.size(), stale), 0);
    ::close(fd);
    EXPECT_EQ(fs::read_file(msg("c")), longer);
}

TEST_F(SpareFilesTest, LargeFileIsEmptiedAsItBecomesASpare) {
    SpareFiles spares(dir.path() / "spare", 8, true);
    write_and_close(spares.create(msg("big")), std::string(1 << 20, 'x'));
    auto inode = inode_of(msg("big"));
    spares.remove(msg("big"));
    EXPECT_EQ(std::filesystem::file_size(dir.path() / "spare" / std::to_string(inode)), 0u);
}

TEST_F(SpareFilesTest, FileWithAnotherNameKeepsItsBytesThere) {
    SpareFiles spares(dir.path() / "spare", 8, true);
    write_and_close(spares.create(msg("a")), "stored in a mailbox");
    ASSERT_EQ(::link(msg("a").c_str(), (dir.path() / "mailbox-copy").c_str()), 0);
    spares.remove(msg("a"));
    EXPECT_FALSE(std::filesystem::exists(msg("a")));
    EXPECT_EQ(spares.spares(), 0u);
    EXPECT_EQ(fs::read_file(dir.path() / "mailbox-copy"), "stored in a mailbox");
}

TEST_F(SpareFilesTest, SpareThatGainedASecondNameIsNeverEmptied) {
    // What a file system check can leave after a crash: a spare that is also a message.
    SpareFiles spares(dir.path() / "spare", 8, true);
    write_and_close(spares.create(msg("a")), "x");
    auto inode = inode_of(msg("a"));
    spares.remove(msg("a"));
    auto spare = dir.path() / "spare" / std::to_string(inode);
    {
        int fd = ::open(spare.c_str(), O_WRONLY);
        write_and_close(fd, "a committed message");
    }
    ASSERT_EQ(::link(spare.c_str(), msg("kept").c_str()), 0);

    write_and_close(spares.create(msg("b")), "new");
    EXPECT_NE(inode_of(msg("b")), inode);
    EXPECT_EQ(fs::read_file(msg("kept")), "a committed message");
}

TEST_F(SpareFilesTest, CreateNeverReplacesAnExistingName) {
    SpareFiles spares(dir.path() / "spare", 8, true);
    write_and_close(spares.create(msg("a")), "x");
    spares.remove(msg("a"));
    write_and_close(::open(msg("taken").c_str(), O_WRONLY | O_CREAT, 0640), "someone else's");
    EXPECT_EQ(spares.create(msg("taken")), -1);
    EXPECT_EQ(errno, EEXIST);
    EXPECT_EQ(fs::read_file(msg("taken")), "someone else's");
    EXPECT_EQ(spares.spares(), 1u);  // the spare is still there for the next create
}

TEST_F(SpareFilesTest, CapacityBoundsThePoolAndZeroUnlinks) {
    SpareFiles spares(dir.path() / "spare", 2, true);
    for (auto name : {"a", "b", "c"}) write_and_close(spares.create(msg(name)), name);
    for (auto name : {"a", "b", "c"}) spares.remove(msg(name));
    EXPECT_EQ(spares.spares(), 2u);
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path() / "spare"), {}), 2);

    SpareFiles none(dir.path() / "none", 0, true);
    write_and_close(none.create(msg("d")), "d");
    none.remove(msg("d"));
    EXPECT_FALSE(std::filesystem::exists(msg("d")));
    EXPECT_EQ(none.spares(), 0u);
}

TEST_F(SpareFilesTest, SparesLeftByAnEarlierProcessAreAdoptedEmptied) {
    fs::ensure_dir(dir.path() / "spare", 0750);
    write_and_close(::open((dir.path() / "spare" / "left").c_str(), O_WRONLY | O_CREAT, 0640), "old bytes");
    write_and_close(::open(msg("message").c_str(), O_WRONLY | O_CREAT, 0640), "linked");
    ASSERT_EQ(::link(msg("message").c_str(), (dir.path() / "spare" / "shared").c_str()), 0);

    SpareFiles second_process(dir.path() / "spare", 8, false);  // never takes them
    write_and_close(second_process.create(msg("p")), "p");
    EXPECT_NE(inode_of(msg("p")), inode_of(dir.path() / "spare" / "left"));

    auto left = inode_of(dir.path() / "spare" / "left");
    SpareFiles owner(dir.path() / "spare", 8, true);
    EXPECT_EQ(owner.spares(), 1u);  // "shared" has another name: only that name is dropped
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "spare" / "shared"));
    EXPECT_EQ(fs::read_file(msg("message")), "linked");
    write_and_close(owner.create(msg("q")), "q");
    EXPECT_EQ(inode_of(msg("q")), left);
    EXPECT_EQ(fs::read_file(msg("q")), "q");
}

}  // namespace
}  // namespace pecd::queue
