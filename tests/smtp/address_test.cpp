// address_test.cpp - SMTP path and parameter parsing
#include "smtp/address.hpp"

#include <gtest/gtest.h>

using pecd::smtp::parse_path;
using pecd::smtp::valid_mailbox;

TEST(Address, ValidMailboxes) {
    EXPECT_TRUE(valid_mailbox("a@b.it"));
    EXPECT_TRUE(valid_mailbox("first.last+tag@pec.example-spa.it"));
    EXPECT_TRUE(valid_mailbox("\"quoted local\"@example.it"));
    EXPECT_TRUE(valid_mailbox("x@[127.0.0.1]"));
    EXPECT_FALSE(valid_mailbox("a..b@c.it"));
    EXPECT_FALSE(valid_mailbox(".a@c.it"));
    EXPECT_FALSE(valid_mailbox("a@-c.it"));
    EXPECT_FALSE(valid_mailbox("a@c..it"));
    EXPECT_FALSE(valid_mailbox("noat"));
    EXPECT_FALSE(valid_mailbox(std::string(65, 'a') + "@c.it"));
}

TEST(Address, PathsAndParameters) {
    std::string why;
    auto p = parse_path("<a@b.it> SIZE=10 body=8bitmime", false, &why);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->address, "a@b.it");
    ASSERT_EQ(p->params.size(), 2u);
    EXPECT_EQ(p->params[1].first, "BODY");
    EXPECT_EQ(p->params[1].second, "8bitmime");
    EXPECT_TRUE(parse_path("<>", true, &why));
    EXPECT_FALSE(parse_path("<>", false, &why));
    EXPECT_EQ(why, "null path not allowed here");
    auto routed = parse_path("<@relay.it,@other.it:user@dest.it>", false, &why);
    ASSERT_TRUE(routed);
    EXPECT_EQ(routed->address, "user@dest.it");
    EXPECT_FALSE(parse_path("<a@b.it>x", false, &why));
    EXPECT_FALSE(parse_path("<a b@c.it>", false, &why));
    EXPECT_FALSE(parse_path("<a@b.it", false, &why));
}
