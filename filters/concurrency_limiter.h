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
#ifndef SLUICE_FILTERS_CONCURRENCY_LIMITER_H_
#define SLUICE_FILTERS_CONCURRENCY_LIMITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "filters/limit_algorithms.h"

namespace sluice {

struct ConcurrencyConfig {
  enum class Algorithm { kGradient2, kVegas, kAimd, kFixed };
  struct Partition {
    std::string name;
    double share = 1.0;  // of the limit, 0..1
    bool operator==(const Partition&) const = default;
  };

  Algorithm algorithm = Algorithm::kGradient2;
  // Node-wide values; each worker gets its share (divided by the worker count, at least 1).
  uint32_t initial_limit = 100;
  uint32_t min_limit = 4;
  uint32_t max_limit = 2000;
  int64_t window_ns = 100000000;  // 100 ms
  uint32_t min_window_samples = 10;
  double aimd_backoff = 0.9;
  int64_t aimd_rtt_bound_ns = 0;      // 0: only drops back off
  std::vector<Partition> partitions;  // empty: one partition taking it all

  bool operator==(const ConcurrencyConfig&) const = default;
};

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

#endif  // SLUICE_FILTERS_CONCURRENCY_LIMITER_H_
