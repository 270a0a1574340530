#include "steering/detector.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);
const char* const kRegions[] = {"us-east-1", "us-west-2", "eu-west-1"};

// Eight days of flat history: 100 starts/s and 400 requests/s in every region.
void Flat(SignalHistory* h, double sps = 100, double requests = 400) {
  const int64_t now = absl::ToUnixSeconds(kNow) / 60 * 60;
  for (const char* region : kRegions) {
    for (int64_t t = now - 8 * 86400; t < now - 60; t += 60) {
      h->Add({region, t, kCoarseSpan, {sps, sps, requests}});
    }
  }
}

class DetectorTest : public ::testing::Test {
 protected:
  DetectorTest() : detector_(DetectorOptions{}, &history_) {
    Flat(&history_);
    detector_.set_mode(DetectionMode::kAuto);
    for (const char* r : kRegions) signals_.push_back({r, true, {100, 100, 400}, false, ""});
  }
  RegionSignal& Signal(int r) { return signals_[static_cast<size_t>(r)]; }
  // Observes every second for `seconds`; returns the first action.
  std::optional<DetectorAction> Run(int seconds) {
    std::optional<DetectorAction> first;
    for (int i = 0; i < seconds; ++i) {
      auto action = detector_.Observe(now_, signals_);
      if (action && !first) first = action;
      now_ += absl::Seconds(1);
    }
    return first;
  }
  RegionVerdict Verdict(int r) { return detector_.regions().at(kRegions[r]).verdict; }

  SignalHistory history_;
  Detector detector_;
  std::vector<RegionSignal> signals_;
  absl::Time now_ = kNow;
};

TEST_F(DetectorTest, NormalTrafficIsOk) {
  EXPECT_FALSE(Run(60));
  for (int r = 0; r < 3; ++r) EXPECT_EQ(Verdict(r), RegionVerdict::kOk);
  EXPECT_EQ(detector_.global().verdict, GlobalVerdict::kOk);
  const RegionJudgement& j = detector_.regions().at("us-east-1");
  EXPECT_DOUBLE_EQ(j.expected.entry_sps, 100);
  EXPECT_DOUBLE_EQ(j.ratio, 1);
  EXPECT_TRUE(j.has_1d && j.has_7d);
}

TEST_F(DetectorTest, OneRegionAtZeroIsSickAfterWindowAndDipFor) {
  Run(10);
  const absl::Time fault = now_;
  Signal(0).now = {0, 0, 400};
  std::optional<DetectorAction> action;
  absl::Time acted;
  for (int i = 0; i < 30 && !action; ++i) {
    action = detector_.Observe(now_, signals_);
    acted = now_;
    now_ += absl::Seconds(1);
  }
  ASSERT_TRUE(action.has_value());
  EXPECT_EQ(action->region, "us-east-1");
  EXPECT_NE(action->reason.find("SPS at 0.00x expected"), std::string::npos) << action->reason;
  // The 3 s window's mean falls below 0.6x after 2 s, then 8 s of dipping.
  EXPECT_LE(acted - fault, absl::Seconds(11));
  EXPECT_GE(acted - fault, absl::Seconds(8));
  EXPECT_EQ(Verdict(0), RegionVerdict::kSick);
  EXPECT_EQ(detector_.global().verdict, GlobalVerdict::kSick);
  EXPECT_EQ(detector_.global().region, "us-east-1");
  detector_.ActionDone("us-east-1", true, now_);
  EXPECT_EQ(detector_.evacuations(), 1u);
  // No second action while the first is under way.
  EXPECT_FALSE(Run(5));
  EXPECT_EQ(detector_.held(), "an evacuation was started");
}

TEST_F(DetectorTest, AlertModeSaysWhatItWouldDo) {
  detector_.set_mode(DetectionMode::kAlert);
  Signal(1).now = {10, 10, 400};
  EXPECT_FALSE(Run(20));
  EXPECT_EQ(Verdict(1), RegionVerdict::kSick);
  EXPECT_EQ(detector_.held(), "mode alert: would evacuate us-west-2");
}

TEST_F(DetectorTest, AServingDipCountsEvenWhenFailoverKeepsEntryStartsUp) {
  Signal(2).now = {100, 0, 400};
  auto action = Run(20);
  ASSERT_TRUE(action.has_value());
  EXPECT_EQ(action->signal, "serving");
}

TEST_F(DetectorTest, ABriefDipIsNotAVerdict) {
  Signal(0).now = {0, 0, 400};
  Run(6);
  Signal(0).now = {100, 100, 400};
  EXPECT_FALSE(Run(30));
  EXPECT_EQ(Verdict(0), RegionVerdict::kOk);
}

TEST_F(DetectorTest, TwoRegionsDippingIsAnAlertOnly) {
  Signal(0).now = {10, 10, 400};
  Signal(1).now = {20, 20, 400};
  EXPECT_FALSE(Run(30));
  EXPECT_EQ(detector_.global().verdict, GlobalVerdict::kMultiRegionDip);
  EXPECT_EQ(Verdict(0), RegionVerdict::kDipping);
  EXPECT_EQ(Verdict(1), RegionVerdict::kDipping);
  EXPECT_NE(detector_.global().reason.find("not a regional failure"), std::string::npos);
}

TEST_F(DetectorTest, AnotherRegionLowButAboveDipRatioMakesItMultiRegion) {
  // A global dip whose noise puts one region under 0.6 and the others just above it.
  Signal(0).now = {55, 55, 400};
  Signal(1).now = {65, 65, 400};
  Signal(2).now = {62, 62, 400};
  EXPECT_FALSE(Run(30));
  EXPECT_EQ(detector_.global().verdict, GlobalVerdict::kMultiRegionDip);
}

TEST_F(DetectorTest, ASurgeIsVetoed) {
  Signal(0).now = {40, 40, 2000};
  EXPECT_FALSE(Run(30));
  EXPECT_EQ(Verdict(0), RegionVerdict::kVetoed);
  EXPECT_EQ(detector_.global().verdict, GlobalVerdict::kVetoed);
  EXPECT_NE(DescribeJudgement(detector_.regions().at("us-east-1"), detector_.options(), now_)
                .find("requests are at 5.0x"),
            std::string::npos);
}

TEST_F(DetectorTest, AnEvacuatedRegionIsNotJudgedAndHoldsOthers) {
  Signal(0).evacuated = true;
  Signal(0).evacuated_detail = "evacuated 25%";
  Signal(0).now = {0, 0, 0};
  Signal(1).now = {0, 0, 400};
  EXPECT_FALSE(Run(30));
  EXPECT_EQ(Verdict(0), RegionVerdict::kEvacuated);
  EXPECT_EQ(Verdict(1), RegionVerdict::kSick);
  EXPECT_EQ(detector_.held(), "us-east-1 is evacuated: one region at a time");
}

TEST_F(DetectorTest, ACoolDownFollowsARestore) {
  Signal(0).evacuated = true;
  Run(5);
  Signal(0).evacuated = false;  // restored
  Signal(1).now = {0, 0, 400};
  EXPECT_FALSE(Run(60));
  EXPECT_EQ(Verdict(1), RegionVerdict::kSick);
  EXPECT_NE(detector_.held().find("cooling down"), std::string::npos) << detector_.held();
  now_ += detector_.options().cooldown;
  EXPECT_TRUE(Run(2).has_value());
}

TEST_F(DetectorTest, ARegionAloneIsNeverSick) {
  // The other regions do not report (a node cut off from its peers): nothing says they are
  // fine, so a dip cannot be called regional.
  Signal(0).now = {0, 0, 400};
  Signal(1).reported = false;
  Signal(2).reported = false;
  EXPECT_FALSE(Run(30));
  EXPECT_EQ(Verdict(0), RegionVerdict::kDipping);
  EXPECT_EQ(detector_.global().verdict, GlobalVerdict::kNoVerdict);
  EXPECT_NE(detector_.global().reason.find("no other region can be judged"), std::string::npos);
  Signal(2).reported = true;
  EXPECT_TRUE(Run(2).has_value());
}

TEST_F(DetectorTest, WithoutARequestBaselineADipIsVetoed) {
  // (Prometheus without sluice_entry_requests_total a week back, say.)
  SignalHistory h;
  Flat(&h, 100, 0);
  Detector d(DetectorOptions{}, &h);
  d.set_mode(DetectionMode::kAuto);
  signals_[0].now = {0, 0, 0};
  for (int i = 0; i < 30; ++i) EXPECT_FALSE(d.Observe(now_ + absl::Seconds(i), signals_));
  EXPECT_EQ(d.regions().at("us-east-1").verdict, RegionVerdict::kVetoed);
  EXPECT_NE(DescribeJudgement(d.regions().at("us-east-1"), d.options(), now_)
                .find("no request-rate baseline"),
            std::string::npos);
}

TEST_F(DetectorTest, ANodeMoreOrLessRestartsTheDipTimer) {
  Signal(0).nodes = 3;
  Run(5);
  Signal(0).now = {50, 50, 200};  // one of three nodes... and its sum drops
  Signal(0).nodes = 2;
  Run(6);
  Signal(0).nodes = 1;
  EXPECT_FALSE(Run(6));  // every change starts the window and dip_for again
  EXPECT_EQ(Verdict(0), RegionVerdict::kOk);
}

TEST_F(DetectorTest, ACoolDownFollowsPlansInTheState) {
  detector_.NoteChange(now_ - absl::Minutes(1));  // a restore a minute ago, before a restart
  Signal(1).now = {0, 0, 400};
  EXPECT_FALSE(Run(20));
  EXPECT_NE(detector_.held().find("cooling down"), std::string::npos);
}

TEST_F(DetectorTest, ARestoredRegionIsJudgedOnWhatCameAfter) {
  DetectorOptions o;
  o.window = absl::Seconds(30);
  o.cooldown = absl::ZeroDuration();
  Detector d(o, &history_);
  d.set_mode(DetectionMode::kAuto);
  signals_[0].evacuated = true;
  signals_[0].now = {100, 0, 400};  // evacuated: it serves nothing
  for (int i = 0; i < 30; ++i) d.Observe(now_ + absl::Seconds(i), signals_);
  signals_[0].evacuated = false;
  signals_[0].now = {100, 100, 400};
  for (int i = 30; i < 45; ++i) {
    EXPECT_FALSE(d.Observe(now_ + absl::Seconds(i), signals_));
  }
  EXPECT_EQ(d.regions().at("us-east-1").verdict, RegionVerdict::kOk);
}

TEST_F(DetectorTest, ARefusedEvacuationIsTriedAgainLater) {
  Signal(0).now = {0, 0, 400};
  ASSERT_TRUE(Run(20).has_value());
  detector_.ActionDone("us-east-1", false, now_);
  EXPECT_FALSE(Run(25));
  EXPECT_TRUE(Run(10).has_value());
  EXPECT_EQ(detector_.evacuations(), 0u);
}

TEST_F(DetectorTest, NoVerdictWithoutReportsHistoryOrVolume) {
  Signal(0).reported = false;
  Signal(0).now = {0, 0, 0};
  SignalHistory empty;
  Detector blind(DetectorOptions{}, &empty);
  blind.set_mode(DetectionMode::kAuto);
  DetectorOptions high;
  high.min_expected_sps = 1000;
  Detector quiet(high, &history_);
  quiet.set_mode(DetectionMode::kAuto);
  std::vector<RegionSignal> zero = signals_;
  for (RegionSignal& s : zero) s.now = {0, 0, 0};
  for (int i = 0; i < 30; ++i) {
    EXPECT_FALSE(detector_.Observe(now_, signals_));
    EXPECT_FALSE(blind.Observe(now_, zero));
    EXPECT_FALSE(quiet.Observe(now_, zero));
    now_ += absl::Seconds(1);
  }
  EXPECT_EQ(Verdict(0), RegionVerdict::kNoVerdict);
  EXPECT_EQ(detector_.regions().at("us-east-1").note, "no node of the region reports");
  EXPECT_EQ(blind.regions().at("us-west-2").note, "no history for this time a day or a week ago");
  EXPECT_EQ(blind.global().verdict, GlobalVerdict::kNoVerdict);
  EXPECT_NE(quiet.regions().at("us-west-2").note.find("below min_expected_sps 1000"),
            std::string::npos);
}

TEST(DetectorBaseline, AnImportIsUsedAtOnce) {
  SignalHistory h;
  Detector d(DetectorOptions{}, &h);
  d.Observe(kNow, {{"us-east-1", true, {100, 100, 400}, false, ""}});
  EXPECT_FALSE(d.regions().at("us-east-1").has_expected);
  Flat(&h);
  d.HistoryChanged();
  d.Observe(kNow + absl::Seconds(1), {{"us-east-1", true, {100, 100, 400}, false, ""}});
  EXPECT_TRUE(d.regions().at("us-east-1").has_expected);
}

TEST(DetectorBaseline, OneAbnormalBaselineIsSetAsideByTheHourBefore) {
  // Yesterday this region was down from an hour before now until after it (its 1-day baseline
  // is 0); a week ago and today it was normal: the expected value is last week's.
  SignalHistory h;
  Flat(&h);
  const int64_t now = absl::ToUnixSeconds(kNow) / 60 * 60;
  for (int64_t t = now - 86400 - 7200; t < now - 86400 + 7200; t += 60) {
    h.Add({"us-east-1", t, kCoarseSpan, {0, 0, 400}});
  }
  Detector d(DetectorOptions{}, &h);
  std::vector<RegionSignal> s;
  for (const char* r : kRegions) s.push_back({r, true, {100, 100, 400}, false, ""});
  d.Observe(kNow, s);
  const RegionJudgement& j = d.regions().at("us-east-1");
  EXPECT_DOUBLE_EQ(j.baseline_1d.entry_sps, 0);
  EXPECT_DOUBLE_EQ(j.baseline_7d.entry_sps, 100);
  EXPECT_DOUBLE_EQ(j.expected.entry_sps, 100);
  // Without today's hour before, the lower one: no verdict rather than a false one.
  SignalHistory g;
  for (int64_t t = now - 8 * 86400; t < now - 86400 * 6; t += 60) {
    g.Add({"us-east-1", t, kCoarseSpan, {100, 100, 400}});
  }
  for (int64_t t = now - 86400 - 7200; t < now - 86400 + 7200; t += 60) {
    g.Add({"us-east-1", t, kCoarseSpan, {0, 0, 400}});
  }
  Detector d2(DetectorOptions{}, &g);
  d2.Observe(kNow, {s[0]});
  EXPECT_DOUBLE_EQ(d2.regions().at("us-east-1").expected.entry_sps, 0);
  EXPECT_EQ(d2.regions().at("us-east-1").verdict, RegionVerdict::kNoVerdict);
}

TEST(DetectorBaseline, AgreeingBaselinesAreAveragedAndALateMorningIsTolerated) {
  SignalHistory h;
  const int64_t now = absl::ToUnixSeconds(kNow) / 60 * 60;
  // A day ago: 120/s; a week ago: 100/s. A day ago the region was also empty from two hours
  // to one hour before now (its night): within `shift` of that, the 1-day baseline is 0, so a
  // morning that comes later today than yesterday is no dip.
  for (int64_t t = now - 8 * 86400; t < now - 60; t += 60) {
    double v = t < now - 2 * 86400 ? 100 : 120;
    if (t >= now - 86400 - 7200 && t < now - 86400 - 3600) v = 0;
    h.Add({"r", t, kCoarseSpan, {v, v, 4 * v}});
  }
  Detector d(DetectorOptions{}, &h);
  d.Observe(kNow - absl::Minutes(50), {{"r", true, {0, 0, 0}, false, ""}});
  EXPECT_DOUBLE_EQ(d.regions().at("r").baseline_1d.entry_sps, 0);
  Detector e(DetectorOptions{}, &h);
  e.Observe(kNow, {{"r", true, {110, 110, 440}, false, ""}});
  EXPECT_DOUBLE_EQ(e.regions().at("r").baseline_1d.entry_sps, 120);
  EXPECT_DOUBLE_EQ(e.regions().at("r").expected.entry_sps, 110);
}

TEST(DetectionMode, Names) {
  DetectionMode m;
  EXPECT_TRUE(ParseDetectionMode("auto", &m));
  EXPECT_EQ(m, DetectionMode::kAuto);
  EXPECT_TRUE(ParseDetectionMode("alert", &m));
  EXPECT_EQ(m, DetectionMode::kAlert);
  EXPECT_FALSE(ParseDetectionMode("on", &m));
  EXPECT_STREQ(DetectionModeName(DetectionMode::kOff), "off");
}

}  // namespace
}  // namespace sluice
