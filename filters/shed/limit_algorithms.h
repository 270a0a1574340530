// Algorithms that adapt a concurrency limit to latency, after Netflix's concurrency-limits
// library: each gets one sample per window (the window's average round-trip time, the requests
// in flight when it ended, whether any request was dropped) and returns the new limit.
//
//   Gradient2  compares a long-term RTT average with the short-term one:
//              g = clamp(tolerance * long / short, 0.5, 1), L' = 0.8 L + 0.2 (L g + queue).
//   Vegas      estimates the queue from the no-load RTT: queue = L (1 - rtt_noload / rtt),
//              grows while the queue is small and shrinks when it is large.
//   AIMD       additive increase, multiplicative decrease on a drop or an RTT over a bound.
//   Fixed      never moves.
//
// Pure logic: no clock (samples carry their times), no threads, no allocation.
#ifndef SLUICE_FILTERS_SHED_LIMIT_ALGORITHMS_H_
#define SLUICE_FILTERS_SHED_LIMIT_ALGORITHMS_H_

#include <cstdint>
#include <memory>

namespace sluice {

struct LimitSample {
  double rtt_ns = 0;  // average round-trip time of the window's requests
  int inflight = 0;   // requests in flight when the window closed
  bool dropped = false;
};

class LimitAlgorithm {
 public:
  virtual ~LimitAlgorithm() = default;
  // Returns the next limit (not yet clamped to the configured bounds).
  virtual double Update(double limit, const LimitSample& sample) = 0;
};

class FixedLimit final : public LimitAlgorithm {
 public:
  double Update(double limit, const LimitSample&) override { return limit; }
};

class AimdLimit final : public LimitAlgorithm {
 public:
  AimdLimit(double backoff, double rtt_bound_ns) : backoff_(backoff), rtt_bound_ns_(rtt_bound_ns) {}
  double Update(double limit, const LimitSample& sample) override;

 private:
  double backoff_;
  double rtt_bound_ns_;
};

class Gradient2Limit final : public LimitAlgorithm {
 public:
  // `long_window`: samples in the long-term average; `queue`: requests allowed to queue.
  explicit Gradient2Limit(int long_window = 600, double tolerance = 1.5, double smoothing = 0.2,
                          double queue = 4)
      : long_window_(long_window), tolerance_(tolerance), smoothing_(smoothing), queue_(queue) {}
  double Update(double limit, const LimitSample& sample) override;
  double long_rtt_ns() const { return long_rtt_ns_; }

 private:
  int long_window_;
  double tolerance_;
  double smoothing_;
  double queue_;
  double long_rtt_ns_ = 0;
  int samples_ = 0;
};

class VegasLimit final : public LimitAlgorithm {
 public:
  // Every `probe_multiplier` x limit samples the no-load RTT is measured afresh, so that a
  // lasting change in the service's base latency is learned.
  explicit VegasLimit(int probe_multiplier = 30, double smoothing = 1.0)
      : probe_multiplier_(probe_multiplier), smoothing_(smoothing) {}
  double Update(double limit, const LimitSample& sample) override;
  double rtt_noload_ns() const { return rtt_noload_ns_; }

 private:
  int probe_multiplier_;
  double smoothing_;
  double rtt_noload_ns_ = 0;
  int64_t samples_since_probe_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_SHED_LIMIT_ALGORITHMS_H_
