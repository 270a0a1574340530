// What the console draws for one region (proxy/admin/console/): its entry stream starts per
// second over a window that ends now, with the expected value (the detector's rule,
// ComputeExpected) and the same window a day and a week before behind it.
//
//   now       the 10 s series, averaged into buckets of `now_step` (10 s up to an hour's
//             window, coarser beyond: about 360 points)
//   expected  ComputeExpected at the middle of each bucket of `step` (60 s up to an hour,
//             coarser beyond: about 288 points)
//   day/week  the minute series a day and a week before, over the same buckets of `step`
//             (Mean: a bucket with fewer than half its minutes known is unknown), from the
//             baselines, or where they have nothing (a Prometheus baseline is fetched only
//             around the detector's own times) from what the fleet recorded
// With a Prometheus baseline the expected line reaches back only as far as the fetched
// baselines do (about an hour): it is what the detector expects, not a second estimate.
// Unknown points are nullopt (a gap in the line, never a zero that looks like a dip).
//
// Pure logic, time is an argument.
#ifndef SLUICE_STEERING_SIGNAL_CHART_H_
#define SLUICE_STEERING_SIGNAL_CHART_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "steering/detector.h"
#include "steering/signal_history.h"

namespace sluice {

inline constexpr absl::Duration kMinChartWindow = absl::Minutes(5);
inline constexpr absl::Duration kMaxChartWindow = absl::Hours(24);

struct ChartLine {
  int64_t start = 0;  // Unix seconds of the first bucket
  int step = 0;       // seconds per bucket
  std::vector<std::optional<double>> values;
};

struct SignalChart {
  std::string region;
  ChartLine now, expected, day, week;
};

// Expected values already computed, by region and time. What they are computed from (the
// history a day and a week back, and today's hour until 10 minutes ago) only changes by an
// import or a new baseline, so a console's refreshes reuse them; the owner clears the memo when
// the history is replaced or imported into. Bounded: past kMaxEntries it starts over.
class ExpectedMemo {
 public:
  static constexpr size_t kMaxEntries = 20000;
  const ExpectedSignal& Get(const SignalHistory& history, const DetectorOptions& options,
                            const std::string& region, absl::Time t);
  void Clear() { memo_.clear(); }
  size_t size() const { return memo_.size(); }

 private:
  std::map<std::pair<std::string, int64_t>, ExpectedSignal> memo_;
};

// `observed` holds what the fleet saw (the now line); `baselines` what the detector compares
// with (the same history, or what Prometheus answered: detection.baseline). `window` is
// clamped to [kMinChartWindow, kMaxChartWindow].
SignalChart BuildSignalChart(const SignalHistory& observed, const SignalHistory& baselines,
                             const DetectorOptions& options, const std::string& region,
                             absl::Time now, absl::Duration window, ExpectedMemo* memo = nullptr);

}  // namespace sluice

#endif  // SLUICE_STEERING_SIGNAL_CHART_H_
