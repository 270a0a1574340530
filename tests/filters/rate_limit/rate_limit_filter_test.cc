#include "filters/rate_limit/rate_limit_filter.h"

#include "gtest/gtest.h"
#include "tests/filters/filter_test_util.h"

namespace sluice {
namespace {

FilterStatus Send(RateLimitFilter& filter, TestRequest& request) {
  FilterSlot slot;
  request.get().reply = FilterReply{};
  return filter.OnRequestHead(request.get(), slot);
}

TEST(RateLimitFilterTest, BurstThenRate) {
  FakeClock clock;
  RateLimitConfig config;
  config.rate_per_second = 10;
  config.burst = 5;
  RateLimitFilter filter(config, 1, clock);
  TestRequest request;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Send(filter, request), FilterStatus::kContinue) << i;
  EXPECT_EQ(Send(filter, request), FilterStatus::kRespond);
  EXPECT_EQ(request.get().reply.status, 429);
  EXPECT_EQ(*request.get().reply.headers.Get("Retry-After"), "1");
  clock.AdvanceMillis(100);  // one token back
  EXPECT_EQ(Send(filter, request), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, request), FilterStatus::kRespond);
  clock.AdvanceSeconds(10);  // refills to the burst, never beyond
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Send(filter, request), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, request), FilterStatus::kRespond);
  EXPECT_EQ(filter.rejected(), 3u);
}

TEST(RateLimitFilterTest, KeysAreSeparateAndPerWorker) {
  FakeClock clock;
  RateLimitConfig config;
  config.rate_per_second = 1;
  config.burst = 4;
  RateLimitFilter filter(config, /*workers=*/2, clock);  // 2 per worker
  TestRequest a({}, "192.0.2.1:1");
  TestRequest b({}, "192.0.2.2:1");
  EXPECT_EQ(Send(filter, a), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, a), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, a), FilterStatus::kRespond);
  EXPECT_EQ(Send(filter, b), FilterStatus::kContinue);
}

TEST(RateLimitFilterTest, MemberKeyFallsBackToTheAddress) {
  FakeClock clock;
  RateLimitConfig config;
  config.key = RateLimitConfig::Key::kMember;
  config.rate_per_second = 1;
  config.burst = 1;
  RateLimitFilter filter(config, 1, clock);
  TestRequest alice({}, "192.0.2.1:1");
  alice.get().context.identity.method = Identity::Method::kJwt;
  alice.get().context.identity.member_id = "alice";
  TestRequest bob({}, "192.0.2.1:1");  // same address, other member
  bob.get().context.identity.method = Identity::Method::kJwt;
  bob.get().context.identity.member_id = "bob";
  TestRequest anonymous({}, "192.0.2.1:1");
  EXPECT_EQ(Send(filter, alice), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, bob), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, anonymous), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, alice), FilterStatus::kRespond);
}

TEST(RateLimitFilterTest, KeyCountIsBounded) {
  FakeClock clock;
  RateLimitConfig config;
  config.rate_per_second = 1000;
  config.burst = 1;
  config.max_keys = 100;
  RateLimitFilter filter(config, 1, clock);
  for (int i = 0; i < 1000; ++i) {
    std::string address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":1";
    TestRequest r({}, address.c_str());
    Send(filter, r);
    clock.AdvanceMillis(1);
  }
  EXPECT_LE(filter.tracked_keys(), 100u);
}

TEST(RateLimitFilterTest, AFloodOfNewKeysFreesNoOneWhoIsHeldBack) {
  FakeClock clock;
  RateLimitConfig config;
  config.rate_per_second = 1;  // a token a second: the clock stands still, nobody refills
  config.burst = 2;
  config.max_keys = 100;
  RateLimitFilter filter(config, 1, clock);
  TestRequest held({}, "192.0.2.1:1");
  EXPECT_EQ(Send(filter, held), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, held), FilterStatus::kContinue);
  EXPECT_EQ(Send(filter, held), FilterStatus::kRespond);
  // Each new key spends one of its two tokens: fuller than the held one, so they go first
  // when the map is full (it used to be cleared, and the held client with it).
  for (int i = 0; i < 1000; ++i) {
    std::string address = "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ":1";
    TestRequest r({}, address.c_str());
    Send(filter, r);
    if (i % 10 == 0) {
      EXPECT_EQ(Send(filter, held), FilterStatus::kRespond) << i;
    }
  }
  EXPECT_LE(filter.tracked_keys(), 100u);
}

}  // namespace
}  // namespace sluice
