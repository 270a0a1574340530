// An adaptive concurrency limit for one cluster on one worker, split into priority
// partitions (for example critical 90%, bulk 10%).
//
// Admission: while fewer requests than the limit are in flight, any partition is admitted, so
// a partition may borrow capacity the others do not use. At the limit, a request is admitted
// only if its partition is below its own share (limit x share, rounded up): a partition that
// borrowed gives the capacity back as its requests finish, and the others are never starved.
//
// The limit itself moves with latency: completed requests are gathered into windows (at least
// `window` long and `min_window_samples` samples) and each window feeds the algorithm
// (Gradient2, Vegas, AIMD or fixed). Learned per worker; nothing is shared between threads.
#ifndef SLUICE_FILTERS_SHED_CONCURRENCY_LIMITER_H_
#define SLUICE_FILTERS_SHED_CONCURRENCY_LIMITER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "filters/shed/concurrency_config.h"
#include "filters/shed/limit_algorithms.h"

namespace sluice {

class ConcurrencyLimiter {
 public:
  ConcurrencyLimiter(const ConcurrencyConfig& config, int workers, const Clock& clock);

  // The partition with this name, or -1.
  int PartitionIndex(std::string_view name) const;
  size_t partition_count() const { return partitions_.size(); }
  const std::string& partition_name(int p) const {
    return partitions_[static_cast<size_t>(p)].name;
  }

  // True: admitted, and Release() must follow exactly once.
  bool TryAcquire(int partition);
  // A request of `partition` finished after `rtt_ns`; `dropped` when it failed in a way that
  // signals overload (upstream error, timeout, 503 or 429 from the origin). `sample` false for
  // requests whose latency says nothing (the client went away).
  void Release(int partition, int64_t rtt_ns, bool dropped, bool sample = true);

  int limit() const { return static_cast<int>(limit_); }
  // Any thread (the control thread's learned capacity): the limit and the mean latency of the
  // last closed window (0 before the first), published when a window closes.
  double shared_limit() const { return shared_limit_.load(std::memory_order_relaxed); }
  int64_t shared_rtt_ns() const { return shared_rtt_ns_.load(std::memory_order_relaxed); }
  int inflight() const { return inflight_; }
  int inflight(int partition) const { return partitions_[static_cast<size_t>(partition)].inflight; }
  int partition_limit(int partition) const;
  uint64_t rejected(int partition) const {
    return partitions_[static_cast<size_t>(partition)].rejected;
  }
  uint64_t admitted(int partition) const {
    return partitions_[static_cast<size_t>(partition)].admitted;
  }

 private:
  struct PartitionState {
    std::string name;
    double share;
    int inflight = 0;
    uint64_t admitted = 0;
    uint64_t rejected = 0;
  };

  void CloseWindow(int64_t now);

  const Clock& clock_;
  std::unique_ptr<LimitAlgorithm> algorithm_;
  std::vector<PartitionState> partitions_;
  double limit_;
  std::atomic<double> shared_limit_{0};
  std::atomic<int64_t> shared_rtt_ns_{0};
  double min_limit_;
  double max_limit_;
  int64_t window_ns_;
  uint32_t min_window_samples_;
  int inflight_ = 0;
  // The window being gathered.
  int window_peak_inflight_ = 0;
  int64_t window_start_ns_ = 0;
  double window_rtt_sum_ = 0;
  uint32_t window_samples_ = 0;
  bool window_dropped_ = false;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_SHED_CONCURRENCY_LIMITER_H_
