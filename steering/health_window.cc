#include "steering/health_window.h"

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
  // The smallest bucket whose cumulative count reaches 99% of the total.
  uint64_t rank = (total * 99 + 99) / 100;
  uint64_t seen = 0;
  for (int i = 0; i < kLatencyBounds; ++i) {
    seen += buckets[i];
    if (seen >= rank) return absl::Seconds(kLatencyUpperBounds[i]);
  }
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
  s.starts = delta(a.starts, b.starts);
  for (int i = 0; i <= kLatencyBounds; ++i) s.latency[i] = delta(a.latency[i], b.latency[i]);
  s.p99 = Percentile99(s.latency);
  if (s.requests > 0) {
    s.error_rate = static_cast<double>(s.errors) / static_cast<double>(s.requests);
    s.shed_rate = static_cast<double>(s.sheds) / static_cast<double>(s.requests);
  }
  double seconds = absl::ToDoubleSeconds(s.span);
  if (seconds > 0) s.starts_per_second = static_cast<double>(s.starts) / seconds;
  return s;
}

}  // namespace sluice
