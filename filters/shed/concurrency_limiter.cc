#include "filters/shed/concurrency_limiter.h"

#include <algorithm>
#include <cmath>

namespace sluice {
namespace {

std::unique_ptr<LimitAlgorithm> MakeAlgorithm(const ConcurrencyConfig& config) {
  switch (config.algorithm) {
    case ConcurrencyConfig::Algorithm::kGradient2:
      return std::make_unique<Gradient2Limit>();
    case ConcurrencyConfig::Algorithm::kVegas:
      return std::make_unique<VegasLimit>();
    case ConcurrencyConfig::Algorithm::kAimd:
      return std::make_unique<AimdLimit>(config.aimd_backoff,
                                         static_cast<double>(config.aimd_rtt_bound_ns));
    case ConcurrencyConfig::Algorithm::kFixed:
      return std::make_unique<FixedLimit>();
  }
  return std::make_unique<FixedLimit>();
}

double PerWorker(uint32_t node_value, int workers) {
  return std::max(1.0, std::ceil(static_cast<double>(node_value) / std::max(workers, 1)));
}

}  // namespace

ConcurrencyLimiter::ConcurrencyLimiter(const ConcurrencyConfig& config, int workers,
                                       const Clock& clock)
    : clock_(clock),
      algorithm_(MakeAlgorithm(config)),
      limit_(PerWorker(config.initial_limit, workers)),
      min_limit_(PerWorker(config.min_limit, workers)),
      max_limit_(PerWorker(config.max_limit, workers)),
      window_ns_(config.window_ns),
      min_window_samples_(config.min_window_samples) {
  if (config.partitions.empty()) {
    partitions_.push_back({"default", 1.0});
  } else {
    for (const ConcurrencyConfig::Partition& p : config.partitions) {
      partitions_.push_back({p.name, p.share});
    }
  }
  limit_ = std::clamp(limit_, min_limit_, max_limit_);
  window_start_ns_ = clock_.MonotonicNanos();
}

int ConcurrencyLimiter::PartitionIndex(std::string_view name) const {
  for (size_t i = 0; i < partitions_.size(); ++i) {
    if (partitions_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int ConcurrencyLimiter::partition_limit(int partition) const {
  return static_cast<int>(std::ceil(limit_ * partitions_[static_cast<size_t>(partition)].share));
}

bool ConcurrencyLimiter::TryAcquire(int partition) {
  PartitionState& p = partitions_[static_cast<size_t>(partition)];
  // Below the limit anyone may borrow; at the limit only a partition within its own share.
  if (inflight_ >= static_cast<int>(limit_) && p.inflight >= partition_limit(partition)) {
    ++p.rejected;
    return false;
  }
  ++p.inflight;
  ++p.admitted;
  ++inflight_;
  window_peak_inflight_ = std::max(window_peak_inflight_, inflight_);
  return true;
}

void ConcurrencyLimiter::Release(int partition, int64_t rtt_ns, bool dropped, bool sample) {
  PartitionState& p = partitions_[static_cast<size_t>(partition)];
  if (p.inflight > 0) --p.inflight;
  if (inflight_ > 0) --inflight_;
  if (!sample) return;
  window_rtt_sum_ += static_cast<double>(rtt_ns);
  ++window_samples_;
  window_dropped_ = window_dropped_ || dropped;
  int64_t now = clock_.MonotonicNanos();
  if (now - window_start_ns_ >= window_ns_ && window_samples_ >= min_window_samples_) {
    CloseWindow(now);
  }
}

void ConcurrencyLimiter::CloseWindow(int64_t now) {
  LimitSample sample;
  sample.rtt_ns = window_rtt_sum_ / window_samples_;
  // How much of the limit the window used: its peak, not what is left at its end.
  sample.inflight = window_peak_inflight_;
  window_peak_inflight_ = inflight_;
  sample.dropped = window_dropped_;
  limit_ = std::clamp(algorithm_->Update(limit_, sample), min_limit_, max_limit_);
  shared_limit_.store(limit_, std::memory_order_relaxed);
  shared_rtt_ns_.store(static_cast<int64_t>(sample.rtt_ns), std::memory_order_relaxed);
  window_start_ns_ = now;
  window_rtt_sum_ = 0;
  window_samples_ = 0;
  window_dropped_ = false;
}

}  // namespace sluice
