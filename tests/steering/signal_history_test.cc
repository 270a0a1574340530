#include "steering/signal_history.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1800000000);  // a multiple of 60

TEST(SignalHistory, ObservationsCloseTenSecondSlotsAndFillMinutes) {
  SignalHistory h;
  std::vector<SignalRecord> closed;
  for (int s = 0; s < 125; ++s) {
    SignalPoint p{static_cast<double>(s < 60 ? 10 : 20), 5, 100};
    if (auto r = h.Observe("us-east-1", kStart + absl::Seconds(s), p)) closed.push_back(*r);
  }
  ASSERT_EQ(closed.size(), 12u);  // slots 0..110 closed by the observation at 120
  EXPECT_EQ(closed[0].start, absl::ToUnixSeconds(kStart));
  EXPECT_EQ(closed[0].span, kFineSpan);
  EXPECT_DOUBLE_EQ(closed[0].point.entry_sps, 10);
  auto first = h.Mean("us-east-1", kStart, kStart + absl::Minutes(1));
  ASSERT_TRUE(first.has_value());
  EXPECT_DOUBLE_EQ(first->entry_sps, 10);
  auto both = h.Mean("us-east-1", kStart, kStart + absl::Minutes(2));
  ASSERT_TRUE(both.has_value());
  EXPECT_DOUBLE_EQ(both->entry_sps, 15);
  EXPECT_DOUBLE_EQ(both->requests_per_second, 100);
}

TEST(SignalHistory, MeanNeedsHalfTheMinutes) {
  SignalHistory h;
  h.Add({"r", absl::ToUnixSeconds(kStart), kCoarseSpan, {1, 1, 1}});
  h.Add({"r", absl::ToUnixSeconds(kStart) + 60, kCoarseSpan, {3, 3, 3}});
  EXPECT_TRUE(h.Mean("r", kStart, kStart + absl::Minutes(4)).has_value());
  EXPECT_FALSE(h.Mean("r", kStart, kStart + absl::Minutes(5)).has_value());
  EXPECT_FALSE(h.Mean("other", kStart, kStart + absl::Minutes(1)).has_value());
  EXPECT_DOUBLE_EQ(h.Mean("r", kStart, kStart + absl::Minutes(4))->serving_sps, 2);
}

TEST(SignalHistory, ReplacingASlotDoesNotCountItTwice) {
  SignalHistory h;
  const int64_t t = absl::ToUnixSeconds(kStart);
  h.Add({"r", t, kFineSpan, {10, 10, 10}});
  h.Add({"r", t, kFineSpan, {30, 30, 30}});
  h.Add({"r", t + 10, kFineSpan, {10, 10, 10}});
  EXPECT_DOUBLE_EQ(h.Mean("r", kStart, kStart + absl::Minutes(1))->entry_sps, 20);
}

TEST(SignalHistory, SlotsAreTheFinerTruthOfTheirMinute) {
  SignalHistory h;
  const int64_t t = absl::ToUnixSeconds(kStart);
  // A minute set whole by a 60 s row is rebuilt from slots that arrive for it.
  h.Add({"r", t, kCoarseSpan, {100, 100, 100}});
  h.Add({"r", t, kFineSpan, {120, 120, 120}});
  EXPECT_DOUBLE_EQ(h.Mean("r", kStart, kStart + absl::Minutes(1))->entry_sps, 120);
  // A 60 s row for a minute its slots built changes nothing (the store keeps both).
  h.Add({"r", t, kCoarseSpan, {100, 100, 100}});
  EXPECT_DOUBLE_EQ(h.Mean("r", kStart, kStart + absl::Minutes(1))->entry_sps, 120);
  // Replacing the slots again and again never drifts.
  for (int i = 0; i < 5; ++i) h.Add({"r", t, kFineSpan, {static_cast<double>(i), 0, 0}});
  EXPECT_DOUBLE_EQ(h.Mean("r", kStart, kStart + absl::Minutes(1))->entry_sps, 4);
}

TEST(SignalHistory, TrimKeepsADayOfSlotsAndFifteenDaysOfMinutes) {
  SignalHistory h;
  const int64_t t = absl::ToUnixSeconds(kStart);
  h.Add({"r", t, kFineSpan, {1, 1, 1}});
  h.Trim(kStart + absl::Hours(25));
  EXPECT_TRUE(h.Fine("r", kStart, kStart + absl::Hours(1)).empty());
  EXPECT_TRUE(h.Mean("r", kStart, kStart + absl::Minutes(1)).has_value());
  h.Trim(kStart + absl::Hours(24 * 15) + absl::Minutes(2));
  EXPECT_FALSE(h.Mean("r", kStart, kStart + absl::Minutes(1)).has_value());
}

TEST(SignalHistory, CsvRoundTripRebuildsTheSameHistory) {
  SignalHistory h;
  for (int s = 0; s < 3600; ++s) {
    h.Observe("us-east-1", kStart + absl::Seconds(s), {static_cast<double>(s % 7), 2, 3});
  }
  h.Add({"eu-west-1", absl::ToUnixSeconds(kStart) - 86400 * 3, kCoarseSpan, {4.5, 4, 40}});
  std::string csv = EncodeHistoryCsv(h.Records(absl::InfinitePast(), absl::InfiniteFuture()));
  auto records = DecodeHistoryCsv(csv, kStart + absl::Hours(1));
  ASSERT_TRUE(records.ok()) << records.status();
  SignalHistory copy;
  for (const SignalRecord& r : *records) copy.Add(r);
  EXPECT_EQ(copy.size(), h.size());
  for (int m = 0; m < 59; ++m) {
    absl::Time from = kStart + absl::Minutes(m);
    EXPECT_NEAR(copy.Mean("us-east-1", from, from + absl::Minutes(1))->entry_sps,
                h.Mean("us-east-1", from, from + absl::Minutes(1))->entry_sps, 1e-4);
  }
  absl::Time old = kStart - absl::Hours(72);
  EXPECT_DOUBLE_EQ(copy.Mean("eu-west-1", old, old + absl::Minutes(1))->entry_sps, 4.5);
}

TEST(SignalHistory, BadCsvIsRefusedWithTheLine) {
  const absl::Time now = kStart;
  const std::string header = "time,span,region,entry_sps,serving_sps,requests_per_second\n";
  const std::string t = std::to_string(absl::ToUnixSeconds(kStart) - 600);
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"", "empty"},
      {"# sluice-history/1\n", "empty"},
      {header, "no rows"},
      {"time,region\n" + t + ",x\n", "line 1: expected the header"},
      {header + t + ",60,us-east-1,1,2\n", "line 2: expected 6 fields"},
      {header + t + ",30,us-east-1,1,2,3\n", "span: must be 10 or 60"},
      {header + t + "5,60,us-east-1,1,2,3\n", "not a multiple of the span"},
      {header + "x,60,us-east-1,1,2,3\n", "time: not a Unix time"},
      {header + t + ",60,us east,1,2,3\n", "region: bad name"},
      {header + t + ",60,us-east-1,-1,2,3\n", "entry_sps: must be a number"},
      {header + t + ",60,us-east-1,1,nan,3\n", "serving_sps: must be a number"},
      {header + t + ",60,us-east-1,1,2,1e12\n", "requests_per_second: must be a number"},
      {header + std::to_string(absl::ToUnixSeconds(kStart) + 3600) + ",60,us-east-1,1,2,3\n",
       "in the future"},
      {header + "9223372036854775800,10,us-east-1,1,2,3\n", "in the future"},
  };
  for (const Case& c : cases) {
    auto r = DecodeHistoryCsv(c.text, now);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << r.status() << " for " << c.text;
  }
  auto ok = DecodeHistoryCsv("# sluice-history/1\n" + header + t + ",60,us-east-1,1,2,3\n\n", now);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), 1u);
}

}  // namespace
}  // namespace sluice
