#include "filters/shed/limit_algorithms.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr double kMs = 1e6;

LimitSample Sample(double rtt_ms, int inflight, bool dropped = false) {
  return LimitSample{rtt_ms * kMs, inflight, dropped};
}

// Feeds `n` samples at `rtt_ms` with the limit fully used; returns the limit.
template <typename Algorithm>
double Feed(Algorithm& a, double limit, double rtt_ms, int n) {
  for (int i = 0; i < n; ++i) limit = a.Update(limit, Sample(rtt_ms, static_cast<int>(limit)));
  return limit;
}

TEST(Gradient2LimitTest, FallsWhenLatencyRisesAndRecoversAfter) {
  Gradient2Limit g;
  double limit = Feed(g, 50, 10, 100);  // steady: grows by the queue allowance
  EXPECT_GT(limit, 50);
  double steady = limit;
  limit = Feed(g, limit, 40, 20);  // latency quadruples
  EXPECT_LT(limit, steady * 0.5);
  double overloaded = limit;
  limit = Feed(g, limit, 10, 200);  // back to normal
  EXPECT_GT(limit, overloaded * 2);
}

TEST(Gradient2LimitTest, UnusedLimitDoesNotGrow) {
  Gradient2Limit g;
  double limit = 100;
  for (int i = 0; i < 50; ++i) limit = g.Update(limit, Sample(10, 10));  // 10 of 100 in use
  EXPECT_EQ(limit, 100);
}

TEST(Gradient2LimitTest, GradientNeverCutsMoreThanHalfPerStep) {
  Gradient2Limit g;
  double limit = Feed(g, 100, 10, 20);
  double next = g.Update(limit, Sample(1000, static_cast<int>(limit)));  // a huge outlier
  EXPECT_GE(next, limit * 0.8 + 0.2 * (limit * 0.5) - 1e-9);
}

TEST(VegasLimitTest, GrowsWithoutQueueAndShrinksWithOne) {
  VegasLimit v(/*probe_multiplier=*/1000);
  double limit = v.Update(20, Sample(10, 20));  // learns the no-load RTT
  limit = Feed(v, limit, 10, 10);
  EXPECT_GT(limit, 20);
  double grown = limit;
  limit = Feed(v, limit, 30, 10);  // a third of the time is queueing
  EXPECT_LT(limit, grown);
  EXPECT_LT(v.Update(limit, Sample(10, static_cast<int>(limit), true)), limit);  // drop
}

TEST(AimdLimitTest, AdditiveIncreaseMultiplicativeDecrease) {
  AimdLimit a(0.9, 50 * kMs);
  EXPECT_EQ(a.Update(10, Sample(10, 10)), 11);
  EXPECT_EQ(a.Update(10, Sample(10, 2)), 10);  // not in use: no growth
  EXPECT_DOUBLE_EQ(a.Update(10, Sample(10, 10, true)), 9);
  EXPECT_DOUBLE_EQ(a.Update(10, Sample(60, 10)), 9);  // over the RTT bound
}

TEST(FixedLimitTest, NeverMoves) {
  FixedLimit f;
  EXPECT_EQ(f.Update(7, Sample(1000, 7, true)), 7);
}

}  // namespace
}  // namespace sluice
