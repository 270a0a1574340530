#include "filters/shed/limit_algorithms.h"

#include <algorithm>
#include <cmath>

namespace sluice {

double AimdLimit::Update(double limit, const LimitSample& sample) {
  if (sample.dropped || (rtt_bound_ns_ > 0 && sample.rtt_ns > rtt_bound_ns_)) {
    return limit * backoff_;
  }
  // Grow only when the limit is actually in use.
  if (sample.inflight * 2 >= limit) return limit + 1;
  return limit;
}

double Gradient2Limit::Update(double limit, const LimitSample& sample) {
  const double short_rtt = std::max(sample.rtt_ns, 1.0);
  // Long-term average: a plain mean while warming up, then an exponential average.
  ++samples_;
  constexpr int kWarmup = 10;
  if (samples_ <= kWarmup) {
    long_rtt_ns_ += (short_rtt - long_rtt_ns_) / samples_;
  } else {
    double factor = 2.0 / (long_window_ + 1);
    long_rtt_ns_ = long_rtt_ns_ * (1 - factor) + short_rtt * factor;
  }
  // After a long overload the long-term average lags far behind a recovered short-term one;
  // pull it down so the limit can grow again without waiting out the whole window.
  if (long_rtt_ns_ / short_rtt > 2) long_rtt_ns_ *= 0.95;
  // Not using the limit: nothing learned about its size.
  if (sample.inflight < limit / 2 && !sample.dropped) return limit;
  double gradient = std::clamp(tolerance_ * long_rtt_ns_ / short_rtt, 0.5, 1.0);
  if (sample.dropped) gradient = 0.5;
  double target = limit * gradient + queue_;
  return limit * (1 - smoothing_) + target * smoothing_;
}

double VegasLimit::Update(double limit, const LimitSample& sample) {
  const double rtt = std::max(sample.rtt_ns, 1.0);
  const double log_limit = std::max(1.0, std::log10(std::max(limit, 1.0)));
  if (++samples_since_probe_ >= static_cast<int64_t>(probe_multiplier_ * std::max(limit, 1.0))) {
    samples_since_probe_ = 0;
    rtt_noload_ns_ = rtt;  // probe: measure the base latency afresh
    return limit;
  }
  if (rtt_noload_ns_ == 0 || rtt < rtt_noload_ns_) {
    rtt_noload_ns_ = rtt;
    return limit;
  }
  double next = limit;
  if (sample.dropped) {
    next = limit - log_limit;
  } else if (sample.inflight * 2 < limit) {
    return limit;  // not using the limit
  } else {
    double queue = std::ceil(limit * (1 - rtt_noload_ns_ / rtt));
    const double alpha = 3 * log_limit;
    const double beta = 6 * log_limit;
    if (queue <= log_limit) {
      next = limit + beta;
    } else if (queue < alpha) {
      next = limit + log_limit;
    } else if (queue > beta) {
      next = limit - log_limit;
    } else {
      return limit;
    }
  }
  next = std::max(1.0, next);
  return (1 - smoothing_) * limit + smoothing_ * next;
}

}  // namespace sluice
