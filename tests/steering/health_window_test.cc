#include "steering/health_window.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

TrafficTotals Totals(uint64_t requests, uint64_t errors, uint64_t sheds, uint64_t fast,
                     uint64_t slow) {
  TrafficTotals t;
  t.requests = requests;
  t.errors = errors;
  t.sheds = sheds;
  t.latency[3] = fast;   // <= 10 ms
  t.latency[10] = slow;  // <= 2.5 s
  return t;
}

TEST(HealthWindowTest, SummarizesTheDifferenceOverTheWindow) {
  TrafficWindow w(absl::Seconds(10));
  EXPECT_EQ(w.Summary().requests, 0u);
  for (int s = 0; s <= 30; ++s) {
    // 100 requests a second, 5 errors, 1 shed; all fast.
    w.Add(kStart + absl::Seconds(s), Totals(100u * s, 5u * s, 1u * s, 100u * s, 0));
  }
  TrafficSummary sum = w.Summary();
  EXPECT_EQ(sum.span, absl::Seconds(10));
  EXPECT_EQ(sum.requests, 1000u);
  EXPECT_DOUBLE_EQ(sum.error_rate, 0.05);
  EXPECT_DOUBLE_EQ(sum.shed_rate, 10.0 / 1010);  // sheds over everything that asked
  // All in the 5..10 ms bucket: 99% of the way through it.
  EXPECT_NEAR(absl::ToDoubleMilliseconds(sum.p99), 9.95, 1e-6);
}

TEST(HealthWindowTest, RatesStayWithinZeroAndOne) {
  TrafficWindow w(absl::Seconds(10));
  // A dead region: every attempt fails, and more is shed than is attempted.
  for (int s = 0; s <= 12; ++s) {
    w.Add(kStart + absl::Seconds(s), Totals(10u * s, 10u * s, 50u * s, 0, 10u * s));
  }
  TrafficSummary sum = w.Summary();
  EXPECT_DOUBLE_EQ(sum.error_rate, 1.0);
  EXPECT_DOUBLE_EQ(sum.shed_rate, 500.0 / 600);
  // Counters reset by a restart between two samples cannot make more errors than requests.
  TrafficWindow reset(absl::Seconds(10));
  reset.Add(kStart, Totals(5, 0, 0, 0, 0));
  reset.Add(kStart + absl::Seconds(1), Totals(3, 4, 0, 0, 0));
  EXPECT_LE(reset.Summary().error_rate, 1.0);
}

TEST(HealthWindowTest, OldTrafficLeavesTheWindow) {
  TrafficWindow w(absl::Seconds(10));
  // A burst of slow errors at the start, then 20 s of clean traffic.
  w.Add(kStart, Totals(0, 0, 0, 0, 0));
  w.Add(kStart + absl::Seconds(1), Totals(100, 100, 0, 0, 100));
  for (int s = 2; s <= 21; ++s) {
    w.Add(kStart + absl::Seconds(s), Totals(100 + 50u * (s - 1), 100, 0, 50u * (s - 1), 100));
  }
  TrafficSummary sum = w.Summary();
  EXPECT_EQ(sum.errors, 0u);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(sum.p99), 9.95, 1e-6);
}

TEST(HealthWindowTest, Percentile99IsInterpolatedInTheBucketHoldingIt) {
  uint64_t buckets[kLatencyBounds + 1] = {};
  EXPECT_EQ(Percentile99(buckets), absl::ZeroDuration());
  buckets[0] = 980;  // <= 1 ms
  buckets[6] = 20;   // 50..100 ms: the 990th of 1000 is half way through it
  EXPECT_NEAR(absl::ToDoubleMilliseconds(Percentile99(buckets)), 75, 1e-6);
  buckets[0] = 995;
  buckets[6] = 5;
  EXPECT_NEAR(absl::ToDoubleMilliseconds(Percentile99(buckets)), 990.0 / 995, 1e-6);
  buckets[11] = 100'000;  // a 3 s origin: 2.5..5 s; no more than the bucket's top
  EXPECT_LE(Percentile99(buckets), absl::Seconds(5));
  EXPECT_GT(Percentile99(buckets), absl::Milliseconds(2500));
  buckets[kLatencyBounds] = 1'000'000;  // beyond 10 s: read as 20 s, above any gate at 10 s
  EXPECT_EQ(Percentile99(buckets), absl::Seconds(20));
}

TEST(HealthWindowTest, StartsPerSecond) {
  TrafficWindow w(absl::Seconds(5));
  for (int s = 0; s <= 10; ++s) {
    TrafficTotals t;
    t.starts = 40u * s;
    w.Add(kStart + absl::Seconds(s), t);
  }
  EXPECT_DOUBLE_EQ(w.Summary().starts_per_second, 40.0);
}

}  // namespace
}  // namespace sluice
