// The detector replayed over two simulated weeks of per-second stream starts (issue 20,
// "Replay test"): no verdict on normal days, a holiday, a global dip, a surge into one region
// or a region whose nights are empty; regional faults found within seconds.
#include <cstdio>

#include "absl/strings/str_format.h"

#include "gtest/gtest.h"
#include "steering/detector.h"
#include "tests/steering/sps_generator.h"

namespace sluice {
namespace {

using replay::Effect;
using replay::RegionShape;
using replay::SpsGenerator;

// 2027-03-01 00:00 UTC, a Monday.
const absl::Time kStart = absl::FromUnixSeconds(1803859200);
constexpr int kDays = 14;
absl::Time Day(double day, double hour_utc = 0) {
  return kStart + absl::Hours(24 * day) + absl::Seconds(hour_utc * 3600);
}

std::vector<RegionShape> Regions() {
  return {
      {"us-east-1", 3000, -5},              // 3 h ahead of us-west-2
      {"us-west-2", 2000, -8},              //
      {"eu-west-1", 2500, 0},               // 8 h ahead of us-west-2
      {"ap-south-1", 600, 5, 0, true, 15},  // empty nights, a wandering morning
  };
}

struct Replay {
  int sick = 0;                                             // global verdicts that turned sick
  int multi = 0;                                            // ... multi-region dip
  int vetoed = 0;                                           // ... vetoed
  std::vector<std::pair<std::string, absl::Time>> sick_at;  // region, when
};

// Every effect a normal fortnight has: a holiday bump everywhere on day 8, and the growth and
// weekends of the generator.
void Normal(SpsGenerator* g) { g->AddEffect({-1, Day(8), Day(9), 1.3, 1.3}); }

Replay ReplayFortnight(SpsGenerator* g, DetectorOptions options) {
  SignalHistory history;
  Detector detector(options, &history);
  detector.set_mode(DetectionMode::kAlert);
  Replay out;
  std::vector<RegionSignal> signals(g->regions().size());
  for (size_t r = 0; r < signals.size(); ++r) {
    signals[r].region = g->regions()[r].name;
    signals[r].reported = true;
  }
  for (absl::Time t = kStart; t < Day(kDays); t += absl::Seconds(1)) {
    std::vector<SignalPoint> points = g->Second(t);
    for (size_t r = 0; r < signals.size(); ++r) {
      signals[r].now = points[r];
      history.Observe(signals[r].region, t, points[r]);
    }
    detector.Observe(t, signals);
    if (absl::ToUnixSeconds(t) % 3600 == 0) history.Trim(t);
    for (const DetectorEvent& e : detector.TakeEvents()) {
      if (!e.region.empty()) continue;
      if (e.to == "sick") {
        ++out.sick;
        out.sick_at.emplace_back(detector.global().region, t);
        std::printf("  sick at day %.3f: %s\n", absl::ToDoubleHours(t - kStart) / 24,
                    e.reason.c_str());
      }
      if (e.to == "multi_region_dip") ++out.multi;
      if (e.to == "vetoed") ++out.vetoed;
    }
  }
  return out;
}

TEST(DetectorReplay, NoVerdictInANormalFortnightWithAHolidayGlobalDipAndSurge) {
  SpsGenerator g(Regions(), kStart, 1);
  Normal(&g);
  // A client bug everywhere: 40% fewer starts in every region for three hours.
  g.AddEffect({-1, Day(9, 14), Day(9, 17), 0.6, 0.6});
  // ... and a worse one, for an hour: 55% fewer.
  g.AddEffect({-1, Day(10, 2), Day(10, 3), 0.45, 0.45});
  // Five times the requests into us-east-1 for an hour (a DDoS), its starts halved.
  g.AddEffect({0, Day(11, 20), Day(11, 21), 0.5, 5});
  // ... and five times the members (a launch), everything up.
  g.AddEffect({1, Day(12, 1), Day(12, 2), 5, 5});
  Replay r = ReplayFortnight(&g, DetectorOptions{});
  EXPECT_EQ(r.sick, 0);
  EXPECT_GE(r.multi, 1) << "the 55% global dip is seen as several regions at once";
  EXPECT_GE(r.vetoed, 1) << "the surge is vetoed";
}

// Regional faults on three days (the region's starts to 0, to 50%, to 80% of normal): the
// first two are found within 15 s. The third stays above dip_ratio 0.6 by design and is not a
// verdict: a fifth fewer starts is within what a normal day does (the day after a holiday is
// 0.87x its mean baseline), so a threshold that finds it also cries wolf.
TEST(DetectorReplay, RegionalFaultsAreFound) {
  const absl::Time faults[3] = {Day(9, 15), Day(11, 3), Day(13, 19)};
  const double levels[3] = {0, 0.5, 0.8};
  SpsGenerator g(Regions(), kStart, 2);
  Normal(&g);
  for (int i = 0; i < 3; ++i) {
    g.AddEffect({i, faults[i], faults[i] + absl::Minutes(20), levels[i], 1});
  }
  DetectorOptions options;
  Replay r = ReplayFortnight(&g, options);
  for (int i = 0; i < 3; ++i) {
    const std::string region = Regions()[static_cast<size_t>(i)].name;
    absl::Time found = absl::InfiniteFuture();
    for (const auto& [name, t] : r.sick_at) {
      if (name == region && t >= faults[i] && t < faults[i] + absl::Minutes(20)) {
        found = std::min(found, t);
      }
    }
    const std::string outcome =
        found == absl::InfiniteFuture()
            ? "no verdict"
            : absl::StrFormat("sick after %.0f s", absl::ToDoubleSeconds(found - faults[i]));
    std::printf("%s to %.0f%% of normal: %s\n", region.c_str(), levels[i] * 100, outcome.c_str());
    if (levels[i] < options.dip_ratio) {
      ASSERT_NE(found, absl::InfiniteFuture()) << region << " to " << levels[i];
      EXPECT_LE(found - faults[i], absl::Seconds(15)) << region << " to " << levels[i];
    } else {
      EXPECT_EQ(found, absl::InfiniteFuture()) << region << " to " << levels[i];
    }
  }
  // Nothing was called sick outside a fault.
  for (const auto& [name, t] : r.sick_at) {
    bool during_fault = false;
    for (int i = 0; i < 3; ++i) {
      during_fault = during_fault || (t >= faults[i] && t < faults[i] + absl::Minutes(20));
    }
    EXPECT_TRUE(during_fault) << name << " called sick outside a fault";
  }
}

}  // namespace
}  // namespace sluice
