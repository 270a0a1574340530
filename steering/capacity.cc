#include "steering/capacity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

constexpr absl::Duration kBaselineSmooth = absl::Minutes(5);
constexpr absl::Duration kFitSpan = absl::Minutes(60);
constexpr int kMinFitMinutes = 20;
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// x(t): the mean rate around t shifted back by each lag that has data; nullopt when none.
std::optional<double> Baseline(const SignalHistory& history, const std::string& region,
                               absl::Time t, const std::vector<absl::Duration>& lags,
                               int* used = nullptr) {
  double sum = 0;
  int n = 0;
  for (absl::Duration lag : lags) {
    std::optional<SignalPoint> m =
        history.Mean(region, t - lag - kBaselineSmooth, t - lag + kBaselineSmooth);
    if (!m) continue;
    sum += m->requests_per_second;
    ++n;
  }
  if (used) *used = n;
  if (n == 0) return std::nullopt;
  return sum / n;
}

double Utilization(double load, double capacity) {
  if (load <= 0) return 0;
  return capacity > 0 ? load / capacity : kInfinity;
}

}  // namespace

LoadForecast ForecastLoad(const SignalHistory& history, const std::string& region, absl::Time now,
                          absl::Time at, double current_rps) {
  LoadForecast out;
  out.now_rps = current_rps;
  out.at_rps = current_rps;
  const std::vector<absl::Duration> weeks = {absl::Hours(24 * 7), absl::Hours(24 * 14)};
  const std::vector<absl::Duration> day = {absl::Hours(24)};
  int used = 0;
  std::optional<double> x_at = Baseline(history, region, at, weeks, &used);
  std::optional<double> x_now = Baseline(history, region, now, weeks);
  const std::vector<absl::Duration>* lags = &weeks;
  out.weeks = used;
  if (!x_at || !x_now) {
    lags = &day;
    out.weeks = 0;
    x_at = Baseline(history, region, at, day);
    x_now = Baseline(history, region, now, day);
  }
  if (!x_at || !x_now) {
    out.method = "no history: the current rate";
    return out;
  }
  // Today's level: least squares through the origin over the last hour's minutes.
  double sxy = 0;
  double sxx = 0;
  int pairs = 0;
  for (absl::Time m = now - kFitSpan; m < now; m += absl::Minutes(1)) {
    std::optional<SignalPoint> y = history.Mean(region, m, m + absl::Minutes(1));
    std::optional<double> x = Baseline(history, region, m + absl::Seconds(30), *lags);
    if (!y || !x || *x <= 0) continue;
    sxy += *x * y->requests_per_second;
    sxx += *x * *x;
    ++pairs;
  }
  std::string basis = out.weeks > 0
                          ? absl::StrFormat("%d week%s", out.weeks, out.weeks == 1 ? "" : "s")
                          : std::string("the day before");
  if (pairs >= kMinFitMinutes && sxx > 0) {
    out.level = sxy / sxx;
    out.method = absl::StrFormat("%s, level %.2f (fit over %d min)", basis, out.level, pairs);
  } else {
    out.level = *x_now > 0 ? current_rps / *x_now : 1.0;
    out.method = absl::StrFormat("%s, level %.2f (the current rate; %d min to fit)", basis,
                                 out.level, pairs);
  }
  out.now_rps = out.level * *x_now;
  out.at_rps = out.level * *x_at;
  return out;
}

namespace {

// share[S]: the part of the evacuated region's requests each savior takes at 100%; `stays`
// what no usable savior can take.
std::map<std::string, double> Shares(const EvacuationInput& input,
                                     const std::map<std::string, uint32_t>& default_row,
                                     bool include_default, double* stays) {
  std::map<std::string, const SaviorState*> by_name;
  for (const SaviorState& s : input.saviors) by_name[s.region] = &s;
  auto usable = [&](const std::string& name) {
    auto it = by_name.find(name);
    return name != input.region && it != by_name.end() && it->second->usable;
  };
  std::map<std::string, double> share;
  *stays = 0;
  auto spread = [&](const std::map<std::string, uint32_t>& row, double part) {
    if (part <= 0) return;
    double total = 0;
    for (const auto& [name, w] : row) total += usable(name) ? w : 0;
    if (total > 0) {
      for (const auto& [name, w] : row) {
        if (usable(name) && w > 0) share[name] += part * w / total;
      }
      return;
    }
    size_t any = 0;
    for (const SaviorState& s : input.saviors) any += usable(s.region) ? 1 : 0;
    if (any == 0) {
      *stays += part;
      return;
    }
    for (const SaviorState& s : input.saviors) {
      if (usable(s.region)) share[s.region] += part / static_cast<double>(any);
    }
  };
  double in_cohorts = 0;
  for (const auto& [cohort, row] : input.cohort_rows) {
    if (row.empty()) continue;  // an empty row is the default row
    auto it = input.cohort_share.find(cohort);
    double part = it == input.cohort_share.end() ? 0 : std::clamp(it->second, 0.0, 1.0);
    part = std::min(part, 1.0 - in_cohorts);
    in_cohorts += part;
    spread(row, part);
  }
  if (include_default) spread(default_row, 1.0 - in_cohorts);
  return share;
}

double DefaultRowShare(const EvacuationInput& input) {
  double in_cohorts = 0;
  for (const auto& [cohort, row] : input.cohort_rows) {
    if (row.empty()) continue;
    auto it = input.cohort_share.find(cohort);
    if (it != input.cohort_share.end()) in_cohorts += std::clamp(it->second, 0.0, 1.0);
  }
  return std::max(0.0, 1.0 - std::min(in_cohorts, 1.0));
}

}  // namespace

EvacuationPrediction PredictEvacuation(const EvacuationInput& input) {
  EvacuationPrediction out;
  out.region = input.region;
  out.region_rps = input.region_rps;
  out.steps_bp = input.steps_bp;
  double stays = 0;
  std::map<std::string, double> share = Shares(input, input.weights, true, &stays);
  const double last = input.steps_bp.empty() ? input.start_bp / double{kBasisPoints}
                                             : input.steps_bp.back() / double{kBasisPoints};
  out.stays_rps = last * input.region_rps * stays;
  for (uint32_t bp : input.steps_bp) {
    double f = bp / double{kBasisPoints};
    out.moved_share.push_back(f);
    out.moved_rps.push_back(f * input.region_rps * (1.0 - stays));
  }
  for (const SaviorState& s : input.saviors) {
    if (s.region == input.region) continue;
    SaviorPrediction p;
    p.region = s.region;
    p.capacity_rps = s.capacity_rps;
    p.load_rps = s.load_rps;
    p.standby_endpoints = s.standby_endpoints;
    p.usable = s.usable;
    p.unusable = s.unusable;
    auto it = share.find(s.region);
    p.share = it == share.end() ? 0 : it->second;
    const double own = std::max(0.0, s.load_rps + s.growth_rps);
    for (uint32_t bp : input.steps_bp) {
      double extra = bp / double{kBasisPoints} * input.region_rps * p.share;
      p.extra_rps.push_back(extra);
      p.utilization.push_back(Utilization(own + extra, s.capacity_rps));
    }
    p.predicted_rps = own + last * input.region_rps * p.share;
    p.max_utilization = Utilization(p.predicted_rps, s.capacity_rps);
    if (p.share > 0 && p.max_utilization > out.max_utilization) {
      out.max_utilization = p.max_utilization;
      out.busiest = p.region;
    }
    out.saviors.push_back(std::move(p));
  }
  std::stable_sort(out.saviors.begin(), out.saviors.end(),
                   [](const SaviorPrediction& a, const SaviorPrediction& b) {
                     return a.share > 0 && b.share <= 0;
                   });
  return out;
}

absl::StatusOr<SplitResult> SplitByCapacity(const EvacuationInput& input,
                                            const std::vector<std::string>& candidates) {
  for (const SaviorState& s : input.saviors) {
    if (s.capacity_rps < 0 || std::isnan(s.capacity_rps)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: capacity must be a number >= 0, got %g", s.region, s.capacity_rps));
    }
    if (s.load_rps < 0 || std::isnan(s.load_rps)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: load must be a number >= 0, got %g", s.region, s.load_rps));
    }
  }
  if (input.region_rps < 0 || std::isnan(input.region_rps)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected load must be a number >= 0, got %g", input.region, input.region_rps));
  }
  // What the cohort rows send each savior at 100%, on top of its own load.
  double stays = 0;
  std::map<std::string, double> fixed = Shares(input, {}, false, &stays);
  struct Candidate {
    const SaviorState* state;
    double load;  // own plus cohort rows
  };
  std::vector<Candidate> pool;
  std::vector<std::string> why;
  auto consider = [&](const SaviorState& s) {
    if (s.region == input.region) return;
    if (!s.usable) {
      why.push_back(s.region + ": " + s.unusable);
      return;
    }
    if (s.capacity_rps <= 0) {
      why.push_back(s.region + ": no capacity reported");
      return;
    }
    auto it = fixed.find(s.region);
    double cohort = it == fixed.end() ? 0 : it->second * input.region_rps;
    pool.push_back({&s, std::max(0.0, s.load_rps + s.growth_rps) + cohort});
  };
  if (candidates.empty()) {
    for (const SaviorState& s : input.saviors) consider(s);
  } else {
    for (const std::string& name : candidates) {
      auto it = std::find_if(input.saviors.begin(), input.saviors.end(),
                             [&](const SaviorState& s) { return s.region == name; });
      if (name == input.region) continue;  // a shared list of saviors names every region
      if (it == input.saviors.end()) {
        return absl::NotFoundError(
            absl::StrFormat("%s: not a savior candidate for %s", name, input.region));
      }
      consider(*it);
    }
  }
  if (pool.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("no savior for %s has capacity to take anyone (%s)", input.region,
                        why.empty() ? std::string("no other region") : absl::StrJoin(why, "; ")));
  }
  const double demand = input.region_rps * DefaultRowShare(input);
  SplitResult result;
  std::vector<double> part(pool.size(), 0.0);
  double total_capacity = 0;
  double highest = 0;
  for (const Candidate& c : pool) {
    total_capacity += c.state->capacity_rps;
    highest = std::max(highest, c.load / c.state->capacity_rps);
  }
  if (demand <= 0) {
    // Nobody moves by the default row: weights by capacity, for whoever comes later.
    for (size_t i = 0; i < pool.size(); ++i) part[i] = pool[i].state->capacity_rps;
    result.utilization = highest;
  } else {
    // Water-filling: the level u where the headroom up to u of every candidate takes it all.
    auto taken = [&](double u) {
      double sum = 0;
      for (const Candidate& c : pool) sum += std::max(0.0, u * c.state->capacity_rps - c.load);
      return sum;
    };
    double lo = 0;
    double hi = highest + demand / total_capacity;
    for (int i = 0; i < 200 && hi - lo > 1e-12 * std::max(1.0, hi); ++i) {
      double mid = (lo + hi) / 2;
      (taken(mid) < demand ? lo : hi) = mid;
    }
    for (size_t i = 0; i < pool.size(); ++i) {
      part[i] = std::max(0.0, hi * pool[i].state->capacity_rps - pool[i].load);
    }
    result.utilization = hi;
  }
  const double top = *std::max_element(part.begin(), part.end());
  for (size_t i = 0; i < pool.size(); ++i) {
    if (top <= 0 || part[i] < top * 0.005) continue;  // no headroom at that level
    auto w = static_cast<uint32_t>(std::lround(part[i] / top * kMaxSaviorWeight));
    result.weights[pool[i].state->region] = std::clamp<uint32_t>(w, 1, kMaxSaviorWeight);
  }
  if (result.weights.empty()) {
    // Every candidate is already above the level (nothing to fill): the one with the most
    // room left, so that the plan still names someone.
    const Candidate* best = &pool[0];
    for (const Candidate& c : pool) {
      if (c.state->capacity_rps - c.load > best->state->capacity_rps - best->load) best = &c;
    }
    result.weights[best->state->region] = kMaxSaviorWeight;
  }
  return result;
}

bool ShouldRebalance(const EvacuationInput& input, const std::map<std::string, uint32_t>& current,
                     const std::map<std::string, uint32_t>& proposed, double margin) {
  if (current == proposed) return false;
  EvacuationInput at_full = input;
  at_full.steps_bp = {kBasisPoints};
  at_full.weights = current;
  double now = PredictEvacuation(at_full).max_utilization;
  at_full.weights = proposed;
  double then = PredictEvacuation(at_full).max_utilization;
  if (std::isinf(now)) return !std::isinf(then);
  return now - then > margin;
}

}  // namespace sluice
