#include "steering/signal_chart.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000 + 8 * 86400);  // a multiple of 60
constexpr int64_t kDay = 86400;

// 10 s slots of entry SPS `value` over [from, to) (which also fill the minute series).
void Fine(SignalHistory* h, int64_t from, int64_t to, double value) {
  for (int64_t t = from; t < to; t += kFineSpan) h->Add({"r", t, kFineSpan, {value, value, 100}});
}
void Minutes(SignalHistory* h, int64_t from, int64_t to, double value) {
  for (int64_t t = from; t < to; t += kCoarseSpan) {
    h->Add({"r", t, kCoarseSpan, {value, value, 100}});
  }
}

TEST(SignalChart, AnHourHasTenSecondPointsNowAndMinutePointsBehind) {
  const int64_t now = absl::ToUnixSeconds(kNow);
  SignalHistory h;
  Fine(&h, now - 3600, now - 600, 50);
  Fine(&h, now - 600, now, 20);  // the last ten minutes dip
  Minutes(&h, now - kDay - 7200, now - kDay + 7200, 48);
  Minutes(&h, now - 7 * kDay - 7200, now - 7 * kDay + 7200, 52);
  SignalChart c = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(1));

  EXPECT_EQ(c.now.step, 10);
  ASSERT_EQ(c.now.values.size(), 360u);
  EXPECT_EQ(c.now.start + 359 * 10, now);    // the last bucket is the one still filling
  ASSERT_TRUE(c.now.values[0].has_value());  // [now - 3590, now - 3580)
  EXPECT_DOUBLE_EQ(*c.now.values[0], 50);
  ASSERT_TRUE(c.now.values[358].has_value());
  EXPECT_DOUBLE_EQ(*c.now.values[358], 20);
  EXPECT_FALSE(c.now.values[359].has_value());  // nothing closed in it yet

  EXPECT_EQ(c.expected.step, 60);
  ASSERT_EQ(c.expected.values.size(), 60u);
  ASSERT_EQ(c.day.values.size(), 60u);
  for (size_t i = 0; i + 1 < c.day.values.size(); ++i) {
    ASSERT_TRUE(c.day.values[i].has_value()) << i;
    EXPECT_DOUBLE_EQ(*c.day.values[i], 48);
    ASSERT_TRUE(c.week.values[i].has_value()) << i;
    EXPECT_DOUBLE_EQ(*c.week.values[i], 52);
    // Both baselines agree: expected is their mean, whatever today looks like.
    ASSERT_TRUE(c.expected.values[i].has_value()) << i;
    EXPECT_DOUBLE_EQ(*c.expected.values[i], 50);
  }
  // The expected line is the detector's own rule at the middle of each bucket.
  const absl::Time mid = absl::FromUnixSeconds(c.expected.start + 30 * 60 + 30);
  EXPECT_DOUBLE_EQ(*c.expected.values[30],
                   ComputeExpected(h, "r", mid, DetectorOptions{}).value.entry_sps);
}

TEST(SignalChart, UnknownIsAGapNotAZero) {
  SignalHistory h;
  SignalChart c = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(1));
  for (const auto* line : {&c.now, &c.expected, &c.day, &c.week}) {
    ASSERT_FALSE(line->values.empty());
    for (const auto& v : line->values) EXPECT_FALSE(v.has_value());
  }
}

TEST(SignalChart, ADayIsCoarserAndWindowsAreClamped) {
  SignalHistory h;
  const int64_t now = absl::ToUnixSeconds(kNow);
  Fine(&h, now - 86400, now, 30);
  SignalChart day = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(24));
  EXPECT_EQ(day.now.step, 240);
  EXPECT_EQ(day.now.values.size(), 360u);
  EXPECT_EQ(day.expected.step, 300);
  EXPECT_EQ(day.expected.values.size(), 288u);
  ASSERT_TRUE(day.now.values[100].has_value());
  EXPECT_DOUBLE_EQ(*day.now.values[100], 30);

  SignalChart big = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(100));
  EXPECT_EQ(big.now.values.size(), day.now.values.size());
  SignalChart small = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Seconds(1));
  EXPECT_EQ(small.now.values.size(), 30u);  // five minutes of 10 s
}

TEST(SignalChart, BaselinesComeFromTheirOwnHistory) {
  const int64_t now = absl::ToUnixSeconds(kNow);
  SignalHistory observed, baselines;
  Fine(&observed, now - 3600, now, 10);
  Minutes(&baselines, now - kDay - 7200, now - kDay + 7200, 40);
  SignalChart c =
      BuildSignalChart(observed, baselines, DetectorOptions{}, "r", kNow, absl::Hours(1));
  ASSERT_TRUE(c.now.values[200].has_value());
  EXPECT_DOUBLE_EQ(*c.now.values[200], 10);
  ASSERT_TRUE(c.day.values[20].has_value());
  EXPECT_DOUBLE_EQ(*c.day.values[20], 40);
  EXPECT_FALSE(c.week.values[20].has_value());
  ASSERT_TRUE(c.expected.values[20].has_value());
  EXPECT_DOUBLE_EQ(*c.expected.values[20], 40);  // one baseline known: that one
}

TEST(SignalChart, TheMemoGivesTheSameLinesAndIsReused) {
  const int64_t now = absl::ToUnixSeconds(kNow);
  SignalHistory h;
  Fine(&h, now - 3600, now, 30);
  Minutes(&h, now - kDay - 7200, now - kDay + 7200, 40);
  Minutes(&h, now - 7 * kDay - 7200, now - 7 * kDay + 7200, 70);  // disagrees: today decides
  ExpectedMemo memo;
  SignalChart plain = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(1));
  SignalChart first = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(1), &memo);
  const size_t held = memo.size();
  EXPECT_EQ(held, 59u);  // every bucket but the one still filling
  SignalChart again = BuildSignalChart(h, h, DetectorOptions{}, "r", kNow, absl::Hours(1), &memo);
  EXPECT_EQ(memo.size(), held);
  ASSERT_EQ(plain.expected.values.size(), first.expected.values.size());
  for (size_t i = 0; i < plain.expected.values.size(); ++i) {
    EXPECT_EQ(plain.expected.values[i], first.expected.values[i]) << i;
    EXPECT_EQ(plain.expected.values[i], again.expected.values[i]) << i;
  }
  // A minute later one more bucket is asked; the rest come from the memo.
  BuildSignalChart(h, h, DetectorOptions{}, "r", kNow + absl::Minutes(1), absl::Hours(1), &memo);
  EXPECT_EQ(memo.size(), held + 1);
  memo.Clear();
  EXPECT_EQ(memo.size(), 0u);
}

}  // namespace
}  // namespace sluice
