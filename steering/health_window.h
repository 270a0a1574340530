// A sliding window over cumulative traffic counters: the controller's gates and GET /v1/health
// ask "over the last N seconds, how many requests, what share failed or was shed, what p99,
// how many stream starts per second". The caller samples its counters (which only grow) every
// so often; the window answers from the difference between the newest sample and the oldest
// one still inside the window. Pure logic, time is an argument. Not thread-safe.
#ifndef SLUICE_STEERING_HEALTH_WINDOW_H_
#define SLUICE_STEERING_HEALTH_WINDOW_H_

#include <cstdint>
#include <deque>

#include "absl/time/time.h"

namespace sluice {

// Latency buckets (seconds) shared with the metrics histograms: 1 ms .. 10 s, then +Inf.
inline constexpr int kLatencyBounds = 13;
inline constexpr double kLatencyUpperBounds[kLatencyBounds] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// Counts over the same events, so that every rate is 0..1 by construction: `requests` are the
// attempts sent to the origins (or through a tunnel), retries and attempts that then failed
// over included; `errors` are the attempts among them that failed (5xx or no answer); `sheds`
// are requests answered by shedding or rate limiting, which never made an attempt.
struct TrafficTotals {
  uint64_t requests = 0;                      // attempts
  uint64_t errors = 0;                        // failed attempts: never more than requests
  uint64_t sheds = 0;                         // requests answered by shedding or rate limiting
  uint64_t starts = 0;                        // stream starts
  uint64_t latency[kLatencyBounds + 1] = {};  // counts per bucket (not cumulative)

  TrafficTotals& operator+=(const TrafficTotals& other);
};

struct TrafficSummary {
  absl::Duration span;  // what the summary covers (at most the window)
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t sheds = 0;
  uint64_t starts = 0;
  double error_rate = 0;  // errors / requests (failed attempts / attempts); 0 without any
  double shed_rate = 0;   // sheds / (requests + sheds)
  double starts_per_second = 0;
  absl::Duration p99;                         // Percentile99 of the latency buckets; 0: no traffic
  uint64_t latency[kLatencyBounds + 1] = {};  // counts per bucket over the span

  // The counts over the span, as totals (what a node tells the fleet).
  TrafficTotals Totals() const;
};

class TrafficWindow {
 public:
  explicit TrafficWindow(absl::Duration window) : window_(window) {}
  void Add(absl::Time now, const TrafficTotals& totals);
  TrafficSummary Summary() const;

 private:
  struct Sample {
    absl::Time time;
    TrafficTotals totals;
  };
  absl::Duration window_;
  std::deque<Sample> samples_;  // oldest first; the first one is at or before now - window
};

// The 99th percentile of bucket counts, interpolated linearly within the bucket that holds it
// (as Prometheus' histogram_quantile does): exact at bucket bounds, an estimate between them.
// In the +Inf bucket it reads as twice the last bound (20 s): "more than 10 s".
absl::Duration Percentile99(const uint64_t (&buckets)[kLatencyBounds + 1]);

}  // namespace sluice

#endif  // SLUICE_STEERING_HEALTH_WINDOW_H_
