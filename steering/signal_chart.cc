#include "steering/signal_chart.h"

#include <algorithm>

namespace sluice {
namespace {

// Buckets of whole multiples of `unit` seconds, about `points` of them over `window`.
int BucketSeconds(int64_t window, int unit, int points) {
  int64_t step = (window + points - 1) / points;
  step = std::max<int64_t>(unit, (step + unit - 1) / unit * unit);
  return static_cast<int>(step);
}

// Buckets that end at or before the bucket holding `now`, covering `window`.
ChartLine EmptyLine(int64_t now, int64_t window, int step) {
  ChartLine line;
  line.step = step;
  const int64_t last = now / step * step;  // the bucket still filling
  const int64_t count = std::max<int64_t>(1, window / step);
  line.start = last - (count - 1) * step;
  line.values.assign(static_cast<size_t>(count), std::nullopt);
  return line;
}

// The minute series `lag` before [from, to): from the baselines, or where they do not reach
// (Prometheus is asked only around the detector's own times) from what the fleet recorded.
std::optional<double> Before(const SignalHistory& observed, const SignalHistory& baselines,
                             const std::string& region, absl::Time from, absl::Time to,
                             absl::Duration lag) {
  std::optional<SignalPoint> m = baselines.Mean(region, from - lag, to - lag);
  if (!m && &observed != &baselines) m = observed.Mean(region, from - lag, to - lag);
  if (!m) return std::nullopt;
  return m->entry_sps;
}

}  // namespace

const ExpectedSignal& ExpectedMemo::Get(const SignalHistory& history,
                                        const DetectorOptions& options, const std::string& region,
                                        absl::Time t) {
  auto key = std::make_pair(region, absl::ToUnixSeconds(t));
  if (auto it = memo_.find(key); it != memo_.end()) return it->second;
  if (memo_.size() >= kMaxEntries) memo_.clear();
  return memo_.emplace(std::move(key), ComputeExpected(history, region, t, options)).first->second;
}

SignalChart BuildSignalChart(const SignalHistory& observed, const SignalHistory& baselines,
                             const DetectorOptions& options, const std::string& region,
                             absl::Time now, absl::Duration window, ExpectedMemo* memo) {
  window = std::clamp(window, kMinChartWindow, kMaxChartWindow);
  const int64_t now_s = absl::ToUnixSeconds(now);
  const int64_t window_s = absl::ToInt64Seconds(window);
  SignalChart chart;
  chart.region = region;

  // Now: the 10 s slots, averaged per bucket.
  chart.now = EmptyLine(now_s, window_s, BucketSeconds(window_s, kFineSpan, 360));
  {
    const int64_t from = chart.now.start;
    std::vector<double> sum(chart.now.values.size(), 0);
    std::vector<int> count(chart.now.values.size(), 0);
    for (const SignalRecord& r : observed.Fine(region, absl::FromUnixSeconds(from),
                                               absl::FromUnixSeconds(now_s + kFineSpan))) {
      const int64_t i = (r.start - from) / chart.now.step;
      if (i < 0 || i >= static_cast<int64_t>(sum.size())) continue;
      sum[i] += r.point.entry_sps;
      ++count[i];
    }
    for (size_t i = 0; i < sum.size(); ++i) {
      if (count[i] > 0) chart.now.values[i] = sum[i] / count[i];
    }
  }

  // Expected, a day and a week before: from the minute series.
  const int step = BucketSeconds(window_s, kCoarseSpan, 288);
  chart.expected = EmptyLine(now_s, window_s, step);
  chart.day = chart.expected;
  chart.week = chart.expected;
  for (size_t i = 0; i < chart.expected.values.size(); ++i) {
    const absl::Time from = absl::FromUnixSeconds(chart.expected.start + step * int64_t(i));
    const absl::Time to = from + absl::Seconds(step);
    if (from > now) break;
    // The middle of each bucket; the bucket still filling is asked at `now` (not memoized:
    // `now` moves).
    const absl::Time mid = from + (to - from) / 2;
    const ExpectedSignal e = memo && mid <= now
                                 ? memo->Get(baselines, options, region, mid)
                                 : ComputeExpected(baselines, region, std::min(now, mid), options);
    if (e.has) chart.expected.values[i] = e.value.entry_sps;
    chart.day.values[i] = Before(observed, baselines, region, from, to, absl::Hours(24));
    chart.week.values[i] = Before(observed, baselines, region, from, to, absl::Hours(24 * 7));
  }
  return chart;
}

}  // namespace sluice
