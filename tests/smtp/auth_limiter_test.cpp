// auth_limiter_test.cpp - failed AUTH rate limits per address and per account
#include "smtp/auth_limiter.hpp"

#include <gtest/gtest.h>

using namespace pecd;
using namespace std::chrono_literals;

TEST(AuthLimiter, LimitsPerAddressThenForgetsAfterWindow) {
    smtp::AuthLimiter l({3, 100, 60s});
    TimePoint t{1000s};
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(l.allowed("10.0.0.1", "u" + std::to_string(i), t));
        l.failed("10.0.0.1", "u" + std::to_string(i), t);
    }
    EXPECT_FALSE(l.allowed("10.0.0.1", "other", t));
    EXPECT_TRUE(l.allowed("10.0.0.2", "other", t)) << "another address is not affected";
    EXPECT_TRUE(l.allowed("10.0.0.1", "other", t + 61s));
}

TEST(AuthLimiter, LimitsPerAccountAcrossAddresses) {
    smtp::AuthLimiter l({100, 2, 60s});
    TimePoint t{1000s};
    l.failed("a", "Victim@x.it", t);
    l.failed("b", "victim@x.it", t);
    EXPECT_FALSE(l.allowed("c", "VICTIM@x.it", t));
    l.succeeded("victim@x.it");
    EXPECT_TRUE(l.allowed("c", "victim@x.it", t));
}
