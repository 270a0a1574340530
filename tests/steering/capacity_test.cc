#include "steering/capacity.h"

#include <cmath>

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);  // a multiple of 60

// A daily curve: `base` plus a sine of amplitude `swing` with a one-day period.
double Curve(absl::Time t, double base, double swing) {
  double day = std::fmod(absl::ToDoubleSeconds(t - absl::UnixEpoch()), 86400.0) / 86400.0;
  return base + swing * std::sin(2 * M_PI * day);
}

// Minutes of `region` from `from` to `to` at `scale` times the curve.
void Fill(SignalHistory* h, const std::string& region, absl::Time from, absl::Time to,
          double scale) {
  for (absl::Time t = from; t < to; t += absl::Minutes(1)) {
    double rps = scale * Curve(t, 1000, 400);
    h->Add({region, absl::ToUnixSeconds(t), kCoarseSpan, {rps / 10, rps / 10, rps}});
  }
}

TEST(ForecastLoad, NoHistoryIsTheCurrentRate) {
  SignalHistory h;
  LoadForecast f = ForecastLoad(h, "r", kNow, kNow + absl::Minutes(5), 321);
  EXPECT_DOUBLE_EQ(f.now_rps, 321);
  EXPECT_DOUBLE_EQ(f.at_rps, 321);
  EXPECT_EQ(f.weeks, 0);
  EXPECT_NE(f.method.find("no history"), std::string::npos);
}

TEST(ForecastLoad, PastWeeksScaledByTodaysLevel) {
  SignalHistory h;
  // Two weeks back at the curve, today's last hour 20% above it.
  Fill(&h, "r", kNow - absl::Hours(24 * 14) - absl::Hours(2),
       kNow - absl::Hours(24 * 14) + absl::Hours(2), 1.0);
  Fill(&h, "r", kNow - absl::Hours(24 * 7) - absl::Hours(2),
       kNow - absl::Hours(24 * 7) + absl::Hours(2), 1.0);
  Fill(&h, "r", kNow - absl::Hours(1), kNow, 1.2);
  const absl::Time at = kNow + absl::Minutes(30);
  LoadForecast f = ForecastLoad(h, "r", kNow, at, 0);
  EXPECT_EQ(f.weeks, 2);
  EXPECT_NEAR(f.level, 1.2, 0.01);
  EXPECT_NEAR(f.at_rps, 1.2 * Curve(at, 1000, 400), 0.02 * f.at_rps);
  EXPECT_NEAR(f.now_rps, 1.2 * Curve(kNow, 1000, 400), 0.02 * f.now_rps);
  EXPECT_NE(f.method.find("2 weeks"), std::string::npos);
}

TEST(ForecastLoad, TheDayBeforeWithoutWeeksAndTheCurrentRateWithoutAFit) {
  SignalHistory h;
  Fill(&h, "r", kNow - absl::Hours(26), kNow - absl::Hours(22), 1.0);
  LoadForecast f = ForecastLoad(h, "r", kNow, kNow, 2 * Curve(kNow, 1000, 400));
  EXPECT_EQ(f.weeks, 0);
  EXPECT_NEAR(f.level, 2.0, 0.02);  // no last hour: the current rate sets the level
  EXPECT_NE(f.method.find("day before"), std::string::npos);
}

SaviorState Savior(const std::string& name, double capacity, double load) {
  SaviorState s;
  s.region = name;
  s.capacity_rps = capacity;
  s.load_rps = load;
  return s;
}

EvacuationInput ThreeRegions() {
  EvacuationInput in;
  in.region = "us-east-1";
  in.region_rps = 1000;
  in.steps_bp = {1000, 5000, 10000};
  in.saviors = {Savior("eu-west-1", 2000, 500), Savior("us-west-2", 1500, 1000)};
  return in;
}

TEST(PredictEvacuation, SharesByWeightAtEachStep) {
  EvacuationInput in = ThreeRegions();
  in.weights = {{"eu-west-1", 3}, {"us-west-2", 1}};
  EvacuationPrediction p = PredictEvacuation(in);
  ASSERT_EQ(p.saviors.size(), 2u);
  const SaviorPrediction& eu = p.saviors[0];
  EXPECT_EQ(eu.region, "eu-west-1");
  EXPECT_DOUBLE_EQ(eu.share, 0.75);
  ASSERT_EQ(eu.extra_rps.size(), 3u);
  EXPECT_DOUBLE_EQ(eu.extra_rps[0], 75);
  EXPECT_DOUBLE_EQ(eu.extra_rps[2], 750);
  EXPECT_DOUBLE_EQ(eu.predicted_rps, 1250);
  EXPECT_DOUBLE_EQ(eu.max_utilization, 1250.0 / 2000);
  EXPECT_DOUBLE_EQ(p.saviors[1].max_utilization, 1250.0 / 1500);
  EXPECT_EQ(p.busiest, "us-west-2");
  EXPECT_DOUBLE_EQ(p.moved_rps[1], 500);
}

TEST(PredictEvacuation, UnusableSaviorsAreSkippedAsTheDecisionDoes) {
  EvacuationInput in = ThreeRegions();
  in.weights = {{"eu-west-1", 1}, {"us-west-2", 1}};
  in.saviors[1].usable = false;
  in.saviors[1].unusable = "marked unhealthy";
  EvacuationPrediction p = PredictEvacuation(in);
  EXPECT_DOUBLE_EQ(p.saviors[0].share, 1.0);
  EXPECT_DOUBLE_EQ(p.saviors[1].share, 0.0);
  in.saviors[0].usable = false;
  p = PredictEvacuation(in);
  EXPECT_DOUBLE_EQ(p.stays_rps, 1000);  // nobody can take them
  EXPECT_EQ(p.busiest, "");
}

TEST(PredictEvacuation, CohortRowsTakeTheirShare) {
  EvacuationInput in = ThreeRegions();
  in.weights = {{"eu-west-1", 1}};
  in.cohort_rows = {{"south-america", {{"us-west-2", 1}}}};
  in.cohort_share = {{"south-america", 0.2}};
  EvacuationPrediction p = PredictEvacuation(in);
  EXPECT_DOUBLE_EQ(p.saviors[0].share, 0.8);
  EXPECT_DOUBLE_EQ(p.saviors[1].share, 0.2);
  EXPECT_DOUBLE_EQ(p.saviors[1].predicted_rps, 1200);
}

TEST(SplitByCapacity, EqualizesUtilization) {
  EvacuationInput in = ThreeRegions();  // eu 500/2000, us-west 1000/1500; 1000 to move
  absl::StatusOr<SplitResult> split = SplitByCapacity(in, {});
  ASSERT_TRUE(split.ok()) << split.status();
  // u * 3500 - 1500 = 1000: u = 5/7; eu takes 2000u - 500, us-west 1500u - 1000.
  EXPECT_NEAR(split->utilization, 2500.0 / 3500, 1e-6);
  ASSERT_EQ(split->weights.size(), 2u);
  EXPECT_EQ(split->weights.at("eu-west-1"), 100u);
  double ratio = (1500 * 5.0 / 7 - 1000) / (2000 * 5.0 / 7 - 500);
  EXPECT_EQ(split->weights.at("us-west-2"), static_cast<uint32_t>(std::lround(100 * ratio)));
  in.weights = split->weights;
  EvacuationPrediction p = PredictEvacuation(in);
  EXPECT_NEAR(p.max_utilization, 5.0 / 7, 0.01);
  // Equal weights do worse on the smaller savior.
  in.weights = {{"eu-west-1", 1}, {"us-west-2", 1}};
  EXPECT_DOUBLE_EQ(PredictEvacuation(in).max_utilization, 1.0);  // us-west-2 full
}

TEST(SplitByCapacity, ASaviorWithNoHeadroomGetsNoWeight) {
  EvacuationInput in = ThreeRegions();
  in.region_rps = 300;
  in.saviors[1].load_rps = 1500;  // us-west-2 is full
  absl::StatusOr<SplitResult> split = SplitByCapacity(in, {});
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->weights.size(), 1u);
  EXPECT_EQ(split->weights.count("eu-west-1"), 1u);
  EXPECT_NEAR(split->utilization, 800.0 / 2000, 1e-6);
}

TEST(SplitByCapacity, RespectsCohortRows) {
  EvacuationInput in = ThreeRegions();
  // Half of the region's members are a cohort pinned to eu-west-1: 500 there already.
  in.cohort_rows = {{"emea", {{"eu-west-1", 1}}}};
  in.cohort_share = {{"emea", 0.5}};
  absl::StatusOr<SplitResult> split = SplitByCapacity(in, {});
  ASSERT_TRUE(split.ok());
  // Loads 1000/2000 and 1000/1500 with 500 to place: u*3500 - 2000 = 500, u = 5/7.
  EXPECT_NEAR(split->utilization, 2500.0 / 3500, 1e-6);
  in.weights = split->weights;
  EvacuationPrediction p = PredictEvacuation(in);
  for (const SaviorPrediction& s : p.saviors) EXPECT_NEAR(s.max_utilization, 5.0 / 7, 0.01);
}

TEST(SplitByCapacity, CandidatesAndBadInput) {
  EvacuationInput in = ThreeRegions();
  absl::StatusOr<SplitResult> only = SplitByCapacity(in, {"us-west-2"});
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->weights.size(), 1u);
  EXPECT_NEAR(only->utilization, 2000.0 / 1500, 1e-6);
  EXPECT_EQ(SplitByCapacity(in, {"ap-south-1"}).status().code(), absl::StatusCode::kNotFound);
  in.saviors[0].capacity_rps = -1;
  absl::Status bad = SplitByCapacity(in, {}).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("eu-west-1: capacity"), std::string::npos) << bad;
  in.saviors[0].capacity_rps = 0;
  in.saviors[1].usable = false;
  in.saviors[1].unusable = "evacuated itself";
  absl::Status none = SplitByCapacity(in, {}).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.message().find("eu-west-1: no capacity reported"), std::string::npos);
  EXPECT_NE(none.message().find("us-west-2: evacuated itself"), std::string::npos);
}

TEST(SplitByCapacity, RebalanceOnlyPastTheMargin) {
  EvacuationInput in = ThreeRegions();
  absl::StatusOr<SplitResult> best = SplitByCapacity(in, {});
  ASSERT_TRUE(best.ok());
  std::map<std::string, uint32_t> equal = {{"eu-west-1", 1}, {"us-west-2", 1}};
  EXPECT_TRUE(ShouldRebalance(in, equal, best->weights, 0.1));
  std::map<std::string, uint32_t> near = best->weights;
  near["us-west-2"] += 2;
  EXPECT_FALSE(ShouldRebalance(in, near, best->weights, 0.1));
  EXPECT_FALSE(ShouldRebalance(in, best->weights, best->weights, 0.0));
}

}  // namespace
}  // namespace sluice
