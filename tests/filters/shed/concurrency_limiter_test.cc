#include "filters/shed/concurrency_limiter.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

ConcurrencyConfig Partitioned(uint32_t limit) {
  ConcurrencyConfig c;
  c.algorithm = ConcurrencyConfig::Algorithm::kFixed;
  c.initial_limit = c.min_limit = c.max_limit = limit;
  c.partitions = {{"critical", 0.9}, {"bulk", 0.1}};
  return c;
}

TEST(ConcurrencyLimiterTest, PartitionsBorrowSpareCapacityAndGiveItBack) {
  FakeClock clock;
  ConcurrencyLimiter limiter(Partitioned(10), 1, clock);
  const int critical = limiter.PartitionIndex("critical");
  const int bulk = limiter.PartitionIndex("bulk");
  // With nothing else running, bulk borrows the whole limit.
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.TryAcquire(bulk)) << i;
  EXPECT_FALSE(limiter.TryAcquire(bulk));
  EXPECT_EQ(limiter.rejected(bulk), 1u);
  // Critical is within its share (9 of 10), so it is admitted even at the limit.
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(limiter.TryAcquire(critical)) << i;
  EXPECT_FALSE(limiter.TryAcquire(critical));
  // As bulk requests finish, bulk stays shut out until it is back within its share.
  for (int i = 0; i < 9; ++i) limiter.Release(bulk, 1000000, false);
  EXPECT_FALSE(limiter.TryAcquire(bulk));
  limiter.Release(bulk, 1000000, false);
  for (int i = 0; i < 9; ++i) limiter.Release(critical, 1000000, false);
  EXPECT_TRUE(limiter.TryAcquire(bulk));
  EXPECT_EQ(limiter.inflight(), 1);
}

TEST(ConcurrencyLimiterTest, PerWorkerShareOfNodeValues) {
  FakeClock clock;
  ConcurrencyLimiter limiter(Partitioned(10), 4, clock);
  EXPECT_EQ(limiter.limit(), 3);  // ceil(10 / 4)
}

TEST(ConcurrencyLimiterTest, LimitFollowsLatencyThroughWindows) {
  FakeClock clock;
  ConcurrencyConfig config;
  config.algorithm = ConcurrencyConfig::Algorithm::kGradient2;
  config.initial_limit = 40;
  config.min_limit = 2;
  config.max_limit = 400;
  config.window_ns = 10000000;  // 10 ms
  config.min_window_samples = 5;
  ConcurrencyLimiter limiter(config, 1, clock);
  auto run_window = [&](int64_t rtt_ms) {
    int n = limiter.limit();
    for (int i = 0; i < n; ++i) limiter.TryAcquire(0);
    clock.AdvanceMillis(11);
    for (int i = 0; i < n; ++i) limiter.Release(0, rtt_ms * 1000000, false);
  };
  for (int i = 0; i < 30; ++i) run_window(5);
  int healthy = limiter.limit();
  EXPECT_GE(healthy, 40);
  for (int i = 0; i < 10; ++i) run_window(50);  // the cluster slows down tenfold
  int slowed = limiter.limit();
  EXPECT_LT(slowed, healthy / 2);
  for (int i = 0; i < 100; ++i) run_window(5);  // and recovers
  EXPECT_GT(limiter.limit(), slowed * 2);
}

TEST(ConcurrencyLimiterTest, SamplesWithoutSignalDoNotMoveTheLimit) {
  FakeClock clock;
  ConcurrencyConfig config;
  config.algorithm = ConcurrencyConfig::Algorithm::kAimd;
  config.initial_limit = 10;
  config.window_ns = 1;
  config.min_window_samples = 1;
  ConcurrencyLimiter limiter(config, 1, clock);
  limiter.TryAcquire(0);
  clock.AdvanceMillis(1);
  limiter.Release(0, 1000, true, /*sample=*/false);  // a cancelled request
  EXPECT_EQ(limiter.limit(), 10);
  limiter.TryAcquire(0);
  clock.AdvanceMillis(1);
  limiter.Release(0, 1000, true);
  EXPECT_EQ(limiter.limit(), 9);
}

}  // namespace
}  // namespace sluice
