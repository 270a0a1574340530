#include "steering/health_window.h"

#include <algorithm>

namespace sluice {

TrafficTotals& TrafficTotals::operator+=(const TrafficTotals& other) {
  requests += other.requests;
  errors += other.errors;
  sheds += other.sheds;
  starts += other.starts;
  for (int i = 0; i <= kLatencyBounds; ++i) latency[i] += other.latency[i];
  return *this;
}

void TrafficWindow::Add(absl::Time now, const TrafficTotals& totals) {
  samples_.push_back({now, totals});
  // Keep one sample at or before the window's start, so the window is always covered.
  while (samples_.size() > 2 && samples_[1].time <= now - window_) samples_.pop_front();
}

absl::Duration Percentile99(const uint64_t (&buckets)[kLatencyBounds + 1]) {
  uint64_t total = 0;
  for (uint64_t n : buckets) total += n;
  if (total == 0) return absl::ZeroDuration();
  const double rank = 0.99 * static_cast<double>(total);
  uint64_t below = 0;  // observations in the buckets before this one
  for (int i = 0; i < kLatencyBounds; ++i) {
    if (static_cast<double>(below + buckets[i]) >= rank && buckets[i] > 0) {
      const double lower = i == 0 ? 0.0 : kLatencyUpperBounds[i - 1];
      const double upper = kLatencyUpperBounds[i];
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(buckets[i]);
      return absl::Seconds(lower + (upper - lower) * within);
    }
    below += buckets[i];
  }
  // Beyond the last bound: at least that, read as twice it so a gate at the last bound trips.
  return absl::Seconds(2 * kLatencyUpperBounds[kLatencyBounds - 1]);
}

TrafficTotals TrafficSummary::Totals() const {
  TrafficTotals t;
  t.requests = requests;
  t.errors = errors;
  t.sheds = sheds;
  t.starts = starts;
  for (int i = 0; i <= kLatencyBounds; ++i) t.latency[i] = latency[i];
  return t;
}

TrafficSummary TrafficWindow::Summary() const {
  TrafficSummary s;
  if (samples_.size() < 2) return s;
  const Sample& first = samples_.front();
  const Sample& last = samples_.back();
  const TrafficTotals& a = first.totals;
  const TrafficTotals& b = last.totals;
  // Counters only grow; a smaller value means they were reset (a restart): start over.
  auto delta = [](uint64_t from, uint64_t to) { return to >= from ? to - from : to; };
  s.span = last.time - first.time;
  s.requests = delta(a.requests, b.requests);
  s.errors = delta(a.errors, b.errors);
  s.sheds = delta(a.sheds, b.sheds);
  s.errors = std::min(s.errors, s.requests);  // only after a reset could they disagree
  s.starts = delta(a.starts, b.starts);
  for (int i = 0; i <= kLatencyBounds; ++i) s.latency[i] = delta(a.latency[i], b.latency[i]);
  s.p99 = Percentile99(s.latency);
  if (s.requests > 0) {
    s.error_rate = static_cast<double>(s.errors) / static_cast<double>(s.requests);
  }
  if (s.requests + s.sheds > 0) {
    s.shed_rate = static_cast<double>(s.sheds) / static_cast<double>(s.requests + s.sheds);
  }
  double seconds = absl::ToDoubleSeconds(s.span);
  if (seconds > 0) s.starts_per_second = static_cast<double>(s.starts) / seconds;
  return s;
}

}  // namespace sluice
