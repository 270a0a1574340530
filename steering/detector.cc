#include "steering/detector.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sluice {
namespace {

constexpr absl::Duration kShiftStep = absl::Minutes(5);
constexpr absl::Duration kDay = absl::Hours(24);
constexpr absl::Duration kWeek = absl::Hours(24 * 7);
// Two baselines further apart than this factor: one of them was itself abnormal.
constexpr double kAgreement = 0.75;

double& Component(SignalPoint& p, int i) {
  return i == 0 ? p.entry_sps : i == 1 ? p.serving_sps : p.requests_per_second;
}
double Component(const SignalPoint& p, int i) {
  return i == 0 ? p.entry_sps : i == 1 ? p.serving_sps : p.requests_per_second;
}

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.0fs", absl::ToDoubleSeconds(d)); }

}  // namespace

const char* DetectionModeName(DetectionMode mode) {
  switch (mode) {
    case DetectionMode::kOff:
      return "off";
    case DetectionMode::kAlert:
      return "alert";
    case DetectionMode::kAuto:
      return "auto";
  }
  return "off";
}

bool ParseDetectionMode(std::string_view text, DetectionMode* mode) {
  for (DetectionMode m : {DetectionMode::kOff, DetectionMode::kAlert, DetectionMode::kAuto}) {
    if (text == DetectionModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

const char* RegionVerdictName(RegionVerdict verdict) {
  switch (verdict) {
    case RegionVerdict::kNoVerdict:
      return "no_verdict";
    case RegionVerdict::kOk:
      return "ok";
    case RegionVerdict::kDipping:
      return "dipping";
    case RegionVerdict::kVetoed:
      return "vetoed";
    case RegionVerdict::kSick:
      return "sick";
    case RegionVerdict::kEvacuated:
      return "evacuated";
  }
  return "no_verdict";
}

const char* GlobalVerdictName(GlobalVerdict verdict) {
  switch (verdict) {
    case GlobalVerdict::kNoVerdict:
      return "no_verdict";
    case GlobalVerdict::kOk:
      return "ok";
    case GlobalVerdict::kSick:
      return "sick";
    case GlobalVerdict::kMultiRegionDip:
      return "multi_region_dip";
    case GlobalVerdict::kVetoed:
      return "vetoed";
  }
  return "no_verdict";
}

void Detector::set_options(const DetectorOptions& options) {
  options_ = options;
  HistoryChanged();
}

void Detector::HistoryChanged() {
  for (auto& [region, track] : tracks_) track.expected.minute = -1;  // recompute
}

ExpectedSignal ComputeExpected(const SignalHistory& history, const std::string& region,
                               absl::Time now, const DetectorOptions& options) {
  ExpectedSignal e;
  // The lowest mean within `shift` of the same time `lag` ago.
  auto baseline = [&](absl::Duration lag, SignalPoint* out) {
    bool any = false;
    for (absl::Duration s = -options.shift; s <= options.shift; s += kShiftStep) {
      absl::Time center = now - lag + s;
      auto m = history.Mean(region, center - options.smooth, center + options.smooth);
      if (!m) continue;
      for (int i = 0; i < 3; ++i) {
        Component(*out, i) =
            any ? std::min(Component(*out, i), Component(*m, i)) : Component(*m, i);
      }
      any = true;
      if (options.shift <= absl::ZeroDuration()) break;
    }
    return any;
  };
  e.has_1d = baseline(kDay, &e.b1);
  e.has_7d = baseline(kWeek, &e.b7);
  e.has = e.has_1d || e.has_7d;
  if (!e.has) return e;
  if (e.has_1d != e.has_7d) {
    e.value = e.has_1d ? e.b1 : e.b7;
    return e;
  }
  // Both known. Where they disagree, the hour before tells which one looked like today.
  std::optional<SignalPoint> today, before_1d, before_7d;
  bool looked = false;
  for (int i = 0; i < 3; ++i) {
    double a = Component(e.b1, i), b = Component(e.b7, i);
    double lo = std::min(a, b), hi = std::max(a, b);
    if (hi <= 0 || lo >= kAgreement * hi) {
      Component(e.value, i) = (a + b) / 2;
      continue;
    }
    if (!looked) {
      looked = true;
      today = history.Mean(region, now - absl::Minutes(60), now - absl::Minutes(10));
      before_1d =
          history.Mean(region, now - kDay - absl::Minutes(60), now - kDay - absl::Minutes(10));
      before_7d =
          history.Mean(region, now - kWeek - absl::Minutes(60), now - kWeek - absl::Minutes(10));
    }
    if (!today || !before_1d || !before_7d) {
      Component(e.value, i) = lo;
      continue;
    }
    auto distance = [&](const SignalPoint& p) {
      return std::fabs(std::log((Component(*today, i) + 1e-6) / (Component(p, i) + 1e-6)));
    };
    Component(e.value, i) = distance(*before_1d) <= distance(*before_7d) ? a : b;
  }
  return e;
}

const Detector::Expected& Detector::ExpectedAt(const std::string& region, Track* track,
                                               absl::Time now) {
  const int64_t minute = absl::ToUnixSeconds(now) / 60;
  Expected& e = track->expected;
  if (e.minute == minute) return e;
  static_cast<ExpectedSignal&>(e) = ComputeExpected(*history_, region, now, options_);
  e.minute = minute;
  return e;
}

void Detector::SetVerdict(const std::string& region, RegionJudgement* j, RegionVerdict verdict,
                          absl::Time now) {
  if (j->verdict == verdict && j->since != absl::InfinitePast()) return;
  const RegionVerdict from = j->verdict;
  const bool first = j->since == absl::InfinitePast();
  j->verdict = verdict;
  j->since = now;
  if (!first || verdict != RegionVerdict::kNoVerdict) {
    events_.push_back({now, region, RegionVerdictName(from), RegionVerdictName(verdict),
                       DescribeJudgement(*j, options_, now)});
  }
}

std::string DescribeJudgement(const RegionJudgement& j, const DetectorOptions& options,
                              absl::Time now) {
  switch (j.verdict) {
    case RegionVerdict::kNoVerdict:
    case RegionVerdict::kEvacuated:
      return j.note;
    case RegionVerdict::kVetoed:
      if (j.no_request_baseline) {
        return absl::StrFormat(
            "%s SPS at %.2fx expected, but there is no request-rate baseline: a surge (a "
            "DDoS?) cannot be ruled out",
            j.signal, j.ratio);
      }
      return absl::StrFormat(
          "%s SPS at %.2fx expected while its requests are at %.1fx: a surge (a DDoS?) would "
          "follow the traffic to a savior",
          j.signal, j.ratio, j.request_ratio);
    case RegionVerdict::kDipping:
    case RegionVerdict::kSick:
      return absl::StrFormat("%s SPS at %.2fx expected for %s", j.signal, j.ratio,
                             Seconds(now - j.below_since));
    case RegionVerdict::kOk:
      break;
  }
  std::string reason = absl::StrFormat("%s SPS at %.2fx expected", j.signal, j.ratio);
  if (j.below_since != absl::InfiniteFuture()) {
    reason +=
        absl::StrFormat(", below %gx for %s", options.dip_ratio, Seconds(now - j.below_since));
  }
  return reason;
}

void Detector::Judge(const RegionSignal& signal, Track* track, absl::Time now, RegionJudgement* j) {
  // The window holds only what was judged: nothing from while the region was evacuated or not
  // reported, nor from before its set of nodes changed (a node more or less is no dip).
  if (signal.evacuated || !signal.reported || signal.nodes != track->nodes) {
    track->recent.clear();
    j->below_since = absl::InfiniteFuture();
  }
  track->nodes = signal.nodes;
  if (!signal.evacuated && signal.reported) track->recent.emplace_back(now, signal.now);
  while (!track->recent.empty() && track->recent.front().first <= now - options_.window) {
    track->recent.pop_front();
  }
  SignalPoint mean = signal.now;
  if (!track->recent.empty()) {
    mean = SignalPoint{};
    for (const auto& [t, p] : track->recent) {
      for (int i = 0; i < 3; ++i) Component(mean, i) += Component(p, i);
    }
    for (int i = 0; i < 3; ++i) Component(mean, i) /= static_cast<double>(track->recent.size());
  }
  j->now = mean;

  const Expected& e = ExpectedAt(signal.region, track, now);
  j->has_expected = e.has;
  j->expected = e.has ? e.value : SignalPoint{};
  j->has_1d = e.has_1d;
  j->has_7d = e.has_7d;
  j->baseline_1d = e.b1;
  j->baseline_7d = e.b7;
  j->ratio = 0;
  j->signal.clear();
  j->request_ratio = 0;

  if (signal.evacuated) {
    j->below_since = absl::InfiniteFuture();
    j->note = signal.evacuated_detail;
    SetVerdict(signal.region, j, RegionVerdict::kEvacuated, now);
    return;
  }
  if (!signal.reported) {
    j->below_since = absl::InfiniteFuture();
    j->note = "no node of the region reports";
    SetVerdict(signal.region, j, RegionVerdict::kNoVerdict, now);
    return;
  }
  if (!e.has) {
    j->below_since = absl::InfiniteFuture();
    j->note = "no history for this time a day or a week ago";
    SetVerdict(signal.region, j, RegionVerdict::kNoVerdict, now);
    return;
  }
  bool judged = false;
  for (int i = 0; i < 2; ++i) {
    double expected = Component(e.value, i);
    if (expected < options_.min_expected_sps) continue;
    double ratio = Component(mean, i) / expected;
    if (!judged || ratio < j->ratio) {
      j->ratio = ratio;
      j->signal = i == 0 ? "entry" : "serving";
    }
    judged = true;
  }
  if (!judged) {
    j->below_since = absl::InfiniteFuture();
    if (j->verdict != RegionVerdict::kNoVerdict || j->note.empty()) {
      j->note = absl::StrFormat("expected %.1f stream starts/s, below min_expected_sps %g",
                                std::max(e.value.entry_sps, e.value.serving_sps),
                                options_.min_expected_sps);
    }
    SetVerdict(signal.region, j, RegionVerdict::kNoVerdict, now);
    return;
  }
  j->no_request_baseline = !(e.value.requests_per_second > 0);
  if (!j->no_request_baseline) {
    j->request_ratio = mean.requests_per_second / e.value.requests_per_second;
  }
  if (j->ratio < options_.dip_ratio) {
    if (j->below_since == absl::InfiniteFuture()) j->below_since = now;
  } else {
    j->below_since = absl::InfiniteFuture();
  }
  const absl::Duration below = now - j->below_since;
  if (j->below_since != absl::InfiniteFuture() && below >= options_.dip_for) {
    if (j->no_request_baseline || j->request_ratio > options_.surge_ratio) {
      SetVerdict(signal.region, j, RegionVerdict::kVetoed, now);
    } else {
      // Sick stays sick while it dips (the global rule below may take it back to dipping).
      SetVerdict(
          signal.region, j,
          j->verdict == RegionVerdict::kSick ? RegionVerdict::kSick : RegionVerdict::kDipping, now);
    }
    return;
  }
  SetVerdict(signal.region, j, RegionVerdict::kOk, now);
}

std::optional<DetectorAction> Detector::Observe(absl::Time now,
                                                const std::vector<RegionSignal>& regions) {
  bool any_evacuated = false;
  std::string evacuated_name;
  for (const RegionSignal& signal : regions) {
    auto [it, inserted] = tracks_.try_emplace(signal.region);
    Track& track = it->second;
    if (!inserted && track.evacuated != signal.evacuated) last_change_ = now;
    track.evacuated = signal.evacuated;
    if (signal.evacuated) {
      any_evacuated = true;
      evacuated_name = signal.region;
    }
    Judge(signal, &track, now, &judged_[signal.region]);
  }

  // The global verdict: is exactly one region low?
  std::vector<const std::string*> dipping;
  std::vector<std::pair<const std::string*, double>> low;
  bool any_judged = false;
  size_t judged_count = 0;
  for (const RegionSignal& signal : regions) {
    RegionJudgement& j = judged_[signal.region];
    bool judged = j.verdict == RegionVerdict::kOk || j.verdict == RegionVerdict::kDipping ||
                  j.verdict == RegionVerdict::kVetoed || j.verdict == RegionVerdict::kSick;
    if (!judged) continue;
    any_judged = true;
    ++judged_count;
    if (j.verdict != RegionVerdict::kOk) dipping.push_back(&signal.region);
    if (j.ratio < options_.other_dip_ratio) low.emplace_back(&signal.region, j.ratio);
  }
  GlobalVerdict verdict = any_judged ? GlobalVerdict::kOk : GlobalVerdict::kNoVerdict;
  std::string region;
  if (dipping.size() >= 2 || (dipping.size() == 1 && low.size() >= 2)) {
    verdict = GlobalVerdict::kMultiRegionDip;
    for (const std::string* name : dipping) {
      RegionJudgement& j = judged_[*name];
      if (j.verdict == RegionVerdict::kSick) SetVerdict(*name, &j, RegionVerdict::kDipping, now);
    }
  } else if (dipping.size() == 1 && judged_count < 2) {
    // Nothing says the other regions are fine: the one-region rule cannot be checked.
    verdict = GlobalVerdict::kNoVerdict;
    region = *dipping[0];
    RegionJudgement& j = judged_[region];
    if (j.verdict == RegionVerdict::kSick) SetVerdict(region, &j, RegionVerdict::kDipping, now);
  } else if (dipping.size() == 1) {
    region = *dipping[0];
    RegionJudgement& j = judged_[region];
    if (j.verdict == RegionVerdict::kVetoed) {
      verdict = GlobalVerdict::kVetoed;
    } else {
      verdict = GlobalVerdict::kSick;
      SetVerdict(region, &j, RegionVerdict::kSick, now);
    }
  }
  if (verdict != global_.verdict || region != global_.region ||
      global_.since == absl::InfinitePast()) {
    std::string reason;
    switch (verdict) {
      case GlobalVerdict::kMultiRegionDip: {
        std::vector<std::string> parts;
        for (const auto& [name, ratio] : low)
          parts.push_back(absl::StrFormat("%s %.2fx", *name, ratio));
        reason = absl::StrCat("several regions are low together (", absl::StrJoin(parts, ", "),
                              "): not a regional failure, no evacuation");
        break;
      }
      case GlobalVerdict::kVetoed:
        reason =
            absl::StrCat(region, " vetoed: ", DescribeJudgement(judged_[region], options_, now));
        break;
      case GlobalVerdict::kSick:
        reason = absl::StrCat(region, " is the only region dipping: ",
                              DescribeJudgement(judged_[region], options_, now));
        break;
      case GlobalVerdict::kOk:
        reason = "no region dips";
        break;
      case GlobalVerdict::kNoVerdict:
        reason = region.empty()
                     ? "no region can be judged"
                     : absl::StrCat(region,
                                    " dips, but no other region can be judged: whether it is the "
                                    "only one cannot be told");
        break;
    }
    if (global_.since != absl::InfinitePast() || verdict != GlobalVerdict::kNoVerdict) {
      events_.push_back(
          {now, "", GlobalVerdictName(global_.verdict), GlobalVerdictName(verdict), reason});
    }
    global_.since = now;
    global_.verdict = verdict;
    global_.region = region;
    global_.reason = std::move(reason);
  }

  held_.clear();
  if (verdict != GlobalVerdict::kSick) return std::nullopt;
  Track& track = tracks_[region];
  if (mode_ != DetectionMode::kAuto) {
    held_ = absl::StrCat("mode ", DetectionModeName(mode_), ": would evacuate ", region);
    return std::nullopt;
  }
  if (any_evacuated) {
    held_ = absl::StrCat(evacuated_name, " is evacuated: one region at a time");
    return std::nullopt;
  }
  if (last_change_ != absl::InfinitePast() && now < last_change_ + options_.cooldown) {
    held_ = absl::StrCat(
        "cooling down after the last evacuation or restore, until ",
        absl::FormatTime("%H:%M:%S UTC", last_change_ + options_.cooldown, absl::UTCTimeZone()));
    return std::nullopt;
  }
  if (track.acted != absl::InfinitePast() && now < track.acted + options_.retry_after) {
    held_ = track.action_failed ? "the last evacuation was refused; trying again soon"
                                : "an evacuation was started";
    return std::nullopt;
  }
  track.acted = now;
  track.action_failed = false;
  const RegionJudgement& j = judged_[region];
  return DetectorAction{region, DescribeJudgement(j, options_, now), j.signal};
}

void Detector::ActionDone(const std::string& region, bool ok, absl::Time now) {
  Track& track = tracks_[region];
  track.action_failed = !ok;
  track.acted = now;
  if (ok) ++evacuations_;
}

std::vector<DetectorEvent> Detector::TakeEvents() {
  std::vector<DetectorEvent> out;
  out.swap(events_);
  return out;
}

}  // namespace sluice
