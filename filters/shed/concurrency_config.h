// clusters[].concurrency: the adaptive concurrency limit of a cluster, which `shed` filters
// admit requests into (filters/shed/concurrency_limiter.h). Parsed with the shed filter's
// configuration (filters/shed/config.cc).
#ifndef SLUICE_FILTERS_SHED_CONCURRENCY_CONFIG_H_
#define SLUICE_FILTERS_SHED_CONCURRENCY_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sluice {

class Field;  // common/yaml_field.h

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

absl::Status ParseConcurrency(const Field& f, ConcurrencyConfig* out);

}  // namespace sluice

#endif  // SLUICE_FILTERS_SHED_CONCURRENCY_CONFIG_H_
