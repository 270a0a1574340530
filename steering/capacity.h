// Savior capacity (DESIGN.md, "Failing a region over", step 2): how much load each savior
// region would carry during an evacuation, and the savior weights that keep the busiest one
// least busy.
//
// Expected load of a region at time t (ForecastLoad), from the request rate in the history:
//   x(m)  = the mean rate at minute m of the week in the past weeks the history holds (the
//           same minute one and two weeks back; the day before when no week is there), each
//           the mean over m ± 5 min
//   level = today's level: the least-squares fit y = level * x through the origin over the
//           last hour's minutes (y: today's rate at minute m, x(m) as above), so
//           level = sum(x*y) / sum(x*x); it needs at least 20 minutes with both values,
//           else the current rate over x(now)
//   expected(t) = level * x(t). No history at all: the current rate (flat).
//
// An evacuation of region R to fraction f (PredictEvacuation): members of a cohort with its
// own row go to that row's saviors, the others to the default row; within a row savior S
// takes the share w_S / sum(w) of them (weighted rendezvous hashing picks S with exactly that
// probability), over the row's usable saviors, or over every usable region with equal
// weights when none of the row is usable (the decision's rule). So
//   predicted(S, f) = own(S) + f * expected(R) * sum over rows of share(row) * w_S / sum(w)
//   utilization(S, f) = predicted(S, f) / capacity(S)
// where own(S) is its load now plus what its own forecast adds by the time of the step.
//
// The capacity-aware split (SplitByCapacity) chooses the default row's weights for f = 100%
// that minimize the highest utilization: water-filling, the level u at which
//   sum over candidates of max(0, u * capacity(S) - load(S)) = the default row's load
// (load(S): own plus what cohort rows already send it); each candidate's weight is its part
// of that, scaled to 1..100. A savior with no headroom at u gets no weight.
//
// Pure logic: no I/O, time is an argument. Not thread-safe.
#ifndef SLUICE_STEERING_CAPACITY_H_
#define SLUICE_STEERING_CAPACITY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steering/signal_history.h"

namespace sluice {

struct LoadForecast {
  double now_rps = 0;  // expected at `now`
  double at_rps = 0;   // expected at the time asked for
  double level = 1;    // today's level against the past weeks (1 without a fit)
  int weeks = 0;       // past weeks used (0: the day before, or no history)
  std::string method;  // "2 weeks, level 1.04 (fit over 60 min)", "no history: the current rate"
};

// The expected request rate of `region` at `at` (>= now), from `history`; `current_rps` is
// the measured rate now (used for the level when the last hour is missing, and alone
// without history).
LoadForecast ForecastLoad(const SignalHistory& history, const std::string& region, absl::Time now,
                          absl::Time at, double current_rps);

// One candidate savior (any region other than the one evacuated).
struct SaviorState {
  std::string region;
  double capacity_rps = 0;         // the sum over its live nodes; 0: unknown or none
  double load_rps = 0;             // what its origins carry now
  double growth_rps = 0;           // what its own forecast adds by the last step (may be negative)
  bool usable = true;              // healthy, reachable, not evacuated, origins up
  std::string unusable;            // why not
  uint32_t standby_endpoints = 0;  // hot standbys not yet injected, over its nodes
  uint32_t nodes = 0;              // its live nodes
};

struct EvacuationInput {
  std::string region;     // the one evacuated
  double region_rps = 0;  // its expected request rate (what moves at 100%)
  uint32_t start_bp = 0;  // where it is now
  std::vector<uint32_t> steps_bp;
  std::map<std::string, uint32_t> weights;                             // the default row
  std::map<std::string, std::map<std::string, uint32_t>> cohort_rows;  // cohort -> row
  std::map<std::string, double> cohort_share;  // cohort -> share of its requests, 0..1
  std::vector<SaviorState> saviors;            // every other region
  double headroom = 1.0;  // the utilization a plan may plan for (capacity.headroom)
};

struct SaviorPrediction {
  std::string region;
  double capacity_rps = 0;
  double load_rps = 0;
  double share = 0;                 // of the evacuated region's requests, at 100%
  std::vector<double> extra_rps;    // what it takes from the region at each step
  std::vector<double> utilization;  // at each step; infinity when capacity is unknown
  double predicted_rps = 0;         // at the last step
  double max_utilization = 0;       // at the last step
  uint32_t standby_endpoints = 0;
  bool usable = true;
  std::string unusable;
};

struct EvacuationPrediction {
  std::string region;
  double region_rps = 0;
  std::vector<uint32_t> steps_bp;
  std::vector<double> moved_rps;          // at each step
  std::vector<double> moved_share;        // of the region's members, at each step
  std::vector<SaviorPrediction> saviors;  // those that take anyone, then the others
  double max_utilization = 0;             // over the saviors, at the last step
  std::string busiest;                    // the savior with it ("" when nobody moves)
  double stays_rps = 0;                   // what no usable savior can take (stays with the region)
};

EvacuationPrediction PredictEvacuation(const EvacuationInput& input);

struct SplitResult {
  std::map<std::string, uint32_t> weights;  // the default row, 1..100, zero weights left out
  double utilization = 0;                   // the level the split reaches (at 100%)
};

// The default row's weights over `candidates` (empty: every usable savior) that minimize the
// highest utilization at 100% (the cohort rows of `input` stay as they are). Errors:
// FailedPrecondition when no candidate is usable with a known capacity, InvalidArgument for
// a negative capacity or load, NotFound for a candidate that is not a region of the input.
absl::StatusOr<SplitResult> SplitByCapacity(const EvacuationInput& input,
                                            const std::vector<std::string>& candidates);

// Whether to move from `current` weights to `proposed` at a step: when the busiest savior's
// predicted utilization under `current` exceeds the one under `proposed` by more than
// `margin` (0.1: ten points).
bool ShouldRebalance(const EvacuationInput& input, const std::map<std::string, uint32_t>& current,
                     const std::map<std::string, uint32_t>& proposed, double margin);

}  // namespace sluice

#endif  // SLUICE_STEERING_CAPACITY_H_
